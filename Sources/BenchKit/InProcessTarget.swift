// Drives the engine in this process: the same requests as over HTTP, minus HTTP, JSON, the chat template
// and detokenization, so the difference between the two runs is the server's overhead.

import Engine
import Foundation
import GGUF
import Metering
import ModelRuntime
import Sampling
import Tokenization

package final class InProcessTarget: BenchTarget {
    let engine: any InferenceEngine
    let stopTokenIDs: Set<TokenID>
    package let label: String
    private let counter = RequestCounter()

    package init(engine: any InferenceEngine, stopTokenIDs: Set<TokenID>, label: String) {
        self.engine = engine
        self.stopTokenIDs = stopTokenIDs
        self.label = label
    }

    package func send(_ prompt: BenchPrompt, maxTokens: Int, ignoreEOS: Bool) async -> RequestOutcome {
        var timer = RequestTimer()
        guard let tokens = prompt.tokens else { return RequestOutcome(status: .failed, error: BenchError.needsTokens.description) }
        let request = EngineRequest(id: "bench-\(counter.next())", promptTokens: tokens, sampling: SamplingParams(temperature: 0),
                                    maxTokens: maxTokens, stopTokenIDs: stopTokenIDs, ignoreEOS: ignoreEOS)
        var outcome = RequestOutcome(status: .failed)
        outcome.promptTokens = tokens.count
        let stream: AsyncThrowingStream<EngineEvent, Error>
        do {
            stream = try engine.submit(request)
        } catch {
            outcome.error = "\(error)"
            return outcome
        }
        do {
            for try await event in stream {
                switch event {
                case .promptLogprobs, .embedding:
                    break
                case .token:
                    timer.chunk()
                case .finished(let reason, let stats):
                    outcome.status = reason == .abort ? .cancelled : .completed
                    outcome.promptTokens = stats.promptTokens
                    outcome.cachedTokens = stats.cachedTokens
                    outcome.outputTokens = stats.generatedTokens
                }
            }
        } catch {
            outcome.status = .failed
            outcome.error = "\(error)"
        }
        // The stream ended without `.finished`: this task was cancelled at the time limit.
        if outcome.status == .failed && outcome.error == nil {
            outcome.status = .cancelled
            outcome.error = "cancelled at the time limit"
        }
        if outcome.status == .cancelled { outcome.outputTokens = timer.chunks }
        outcome.e2eMicros = timer.elapsed()
        outcome.ttftMicros = timer.firstChunk
        outcome.interChunkMicros = timer.gaps
        return outcome
    }
}

private final class RequestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

/// A model loaded for benchmarking: the engine as `tally serve` builds it (EngineFactory), its tokenizer
/// and its cost shape.
package struct LoadedModel: Sendable {
    package var engine: BatchingEngine
    package var tokenizer: Tokenizer
    package var shape: ModelShape
    package var name: String

    package init(path: String, threads: Int, kvMemoryMiB: Int = 512, kvType: KVType = .default, maxSeqs: Int = 16) throws {
        let llama = try LlamaModel(path: path, threads: threads)
        tokenizer = try Tokenizer(metadata: llama.file.metadata)
        shape = ModelShape(file: llama.file)
        var options = EngineOptions()
        options.kvCapacity = .memoryMiB(kvMemoryMiB)
        options.kvType = kvType
        options.maxSeqs = maxSeqs
        // Closed-loop clients never queue more than their count; open-loop arrivals may, up to the run's size.
        options.maxQueue = RunGuard.maxRequests
        try kvType.check(for: llama.config)
        engine = EngineFactory.engine(model: llama, options: options)
        name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }
}
