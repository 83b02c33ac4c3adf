// The SSE parser on known byte streams, fed whole and split at every byte.

@testable import BenchKit
import Testing

@Suite struct SSEParserTests {
    static let stream = ": a comment\n\ndata: {\"a\":1}\n\ndata:{\"b\":\"é\"}\r\n\r\nevent: x\nid: 7\ndata: line1\ndata: line2\n\n: another\ndata: [DONE]\n\n"
    static let expected = ["{\"a\":1}", "{\"b\":\"é\"}", "line1\nline2", "[DONE]"]

    @Test func wholeStream() {
        var parser = SSEParser()
        #expect(parser.feed(Array(Self.stream.utf8)) == Self.expected)
    }

    @Test func everySplitPointGivesTheSameEvents() {
        let bytes = Array(Self.stream.utf8)
        for cut in 0...bytes.count {
            var parser = SSEParser()
            let events = parser.feed(bytes[..<cut]) + parser.feed(bytes[cut...])
            #expect(events == Self.expected, "split at byte \(cut)")
        }
    }

    @Test func byteByByte() {
        var parser = SSEParser()
        let events = Self.stream.utf8.flatMap { parser.feed([$0]) }
        #expect(events == Self.expected)
    }

    @Test func anUnfinishedEventIsNotEmitted() {
        var parser = SSEParser()
        #expect(parser.feed(Array("data: {\"a\":1}\n".utf8)).isEmpty)
        #expect(parser.feed(Array("\n".utf8)) == ["{\"a\":1}"])
    }

    @Test func chunkStateReadsTextUsageAndDone() throws {
        var state = StreamState()
        var timer = RequestTimer()
        try state.take(#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#, timer: &timer)
        #expect(timer.chunks == 0)
        try state.take(#"{"choices":[{"delta":{"content":"Hi"}}]}"#, timer: &timer)
        try state.take(#"{"choices":[{"text":" there"}]}"#, timer: &timer)
        #expect(timer.chunks == 2)
        try state.take(#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":8}}}"#, timer: &timer)
        #expect(state.promptTokens == 12 && state.completionTokens == 2 && state.cachedTokens == 8)
        #expect(!state.done)
        try state.take("[DONE]", timer: &timer)
        #expect(state.done)
        // llama-server's reuse count when usage has no prompt_tokens_details.
        var llama = StreamState()
        try llama.take(#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1},"timings":{"cache_n":3}}"#, timer: &timer)
        #expect(llama.cachedTokens == 3)
        #expect(throws: (any Error).self) { try llama.take(#"{"error":{"message":"boom"}}"#, timer: &timer) }
    }
}
