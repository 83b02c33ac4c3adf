// What a benchmark drives: something that takes one prompt and reports how that request went, timed from
// the client's side. Two kinds: an OpenAI-compatible server over HTTP (HTTPTarget) or the engine in this
// process (InProcessTarget), which leaves HTTP and JSON out of the figures.

import Engine
import Foundation

package protocol BenchTarget: Sendable {
    /// Sends one request and waits for its end. Never throws: a failure is an outcome to count.
    func send(_ prompt: BenchPrompt, maxTokens: Int, ignoreEOS: Bool) async -> RequestOutcome
    /// What the results say was benchmarked ("http://127.0.0.1:8080", "in-process SmolLM2...").
    var label: String { get }
}

/// How one request went. Times are microseconds from the moment it was sent.
package struct RequestOutcome: Sendable, Equatable, Codable {
    package enum Status: String, Sendable, Codable { case completed, failed, cancelled }

    package var status: Status
    package var error: String?
    /// When it was sent, from the start of the run (set by the runner).
    package var startMicros: Int64 = 0
    /// To the first chunk with output text (HTTP) or the first token (in-process).
    package var ttftMicros: Int64?
    /// To the end of the response.
    package var e2eMicros: Int64 = 0
    /// Gaps between consecutive output chunks (inter-token latency; a chunk may carry more than one token).
    package var interChunkMicros: [Int64] = []
    package var promptTokens = 0
    /// Prompt tokens served from the server's prefix cache; nil when the server did not say.
    package var cachedTokens: Int?
    package var outputTokens = 0

    package init(status: Status, error: String? = nil) {
        self.status = status
        self.error = error
    }

    /// Time per output token after the first: `(e2e - ttft) / (output - 1)`; nil with fewer than 2 tokens.
    package var tpotMicros: Int64? {
        guard let ttftMicros, outputTokens > 1 else { return nil }
        return (e2eMicros - ttftMicros) / Int64(outputTokens - 1)
    }
}

/// Times one request: microseconds since it started, and the gaps between output chunks.
struct RequestTimer {
    let start = ContinuousClock.now
    private(set) var firstChunk: Int64?
    private(set) var lastChunk: Int64?
    private(set) var gaps: [Int64] = []
    private(set) var chunks = 0

    func elapsed() -> Int64 { (ContinuousClock.now - start).inMicros }

    mutating func chunk() {
        let now = elapsed()
        if let lastChunk { gaps.append(now - lastChunk) } else { firstChunk = now }
        lastChunk = now
        chunks += 1
    }
}
