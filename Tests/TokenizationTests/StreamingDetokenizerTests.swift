// The streaming detokenizer never emits a broken character: byte tokens of emoji and CJK are held back
// until the character is complete, and the streamed text equals decoding everything at once.

import Testing
@testable import Tokenization

@Suite struct StreamingDetokenizerTests {
    static let texts = [
        "日本語のテキスト 😀 Ελληνικά Привет",
        "👨‍👩‍👧‍👦 family and 🏳️‍🌈 flag",
        "emoji😀in😀middle 🇺🇸🇯🇵",
        "plain ascii only",
        "<|im_start|>assistant\nDone.<|im_end|>",
    ]

    @Test(arguments: texts) func streamedTextEqualsDecodedText(text: String) throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        let ids = tokenizer.encode(text)
        var stream = StreamingDetokenizer(tokenizer: tokenizer, renderSpecial: true)
        var chunks: [String] = []
        for id in ids { chunks.append(stream.append(id)) }
        chunks.append(stream.flush())
        #expect(chunks.joined() == text)
        #expect(!chunks.contains { $0.unicodeScalars.contains("\u{FFFD}") })
    }

    @Test func emojiSpanningByteTokensIsHeldBackUntilComplete() throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        let ids = tokenizer.encode("😀")
        try #require(ids.count > 1, "😀 should be several byte tokens in SmolLM2")
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let outputs = ids.map { stream.append($0) }
        #expect(outputs.dropLast().allSatisfy { $0.isEmpty })
        #expect(outputs.last == "😀")
        #expect(stream.flush() == "")
    }

    @Test func controlTokensAreSkippedUnlessRendered() throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        let ids = tokenizer.encode("Hi<|im_end|>")
        var quiet = StreamingDetokenizer(tokenizer: tokenizer)
        #expect(ids.map { quiet.append($0) }.joined() == "Hi")
        #expect(tokenizer.decode(ids, renderSpecial: false) == "Hi")
    }

    @Test func unfinishedCharacterAtTheEndFlushesAsReplacement() throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        let ids = tokenizer.encode("a😀")
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        var text = ""
        for id in ids.dropLast() { text += stream.append(id) }
        #expect(text == "a")
        #expect(stream.flush() == "\u{FFFD}")
    }

    @Test func prefixSplitMatchesWholeBufferDecodingOnInvalidBytes() {
        let buffers: [[UInt8]] = [
            [0x61, 0xE2, 0x82], [0xE2, 0x82, 0x41], [0xFF, 0x61, 0xF0, 0x9F], [0xED, 0xA0, 0x80], [0xC0, 0xAF, 0xE6],
            [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x98, 0x80, 0xF0], [0x80, 0x80], [],
        ]
        for bytes in buffers {
            // Decoding in two parts at the split point gives the same text as decoding at once.
            let split = completePrefixLength(bytes)
            let whole = String(decoding: bytes, as: UTF8.self)
            let parts = String(decoding: bytes[..<split], as: UTF8.self) + String(decoding: bytes[split...], as: UTF8.self)
            #expect(parts == whole, "\(bytes)")
        }
        #expect(completePrefixLength([0x61, 0xE2, 0x82]) == 1)
        #expect(completePrefixLength([0xF0, 0x9F, 0x98]) == 0)
        #expect(completePrefixLength([0xF0, 0x9F, 0x98, 0x80]) == 4)
        #expect(completePrefixLength([0xE2, 0x82, 0x41]) == 3)
    }
}
