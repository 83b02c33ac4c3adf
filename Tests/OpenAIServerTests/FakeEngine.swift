// A scripted InferenceEngine for the server tests: emits given tokens (optionally slowly, optionally
// forever), then `.finished` with given stats; records every request and how each stream terminated.

import Engine
import Foundation
import Synchronization
import GGUF
import OpenAIServer
import Tokenization

final class FakeEngine: InferenceEngine, Sendable {
    struct Script: Sendable {
        var tokens: [TokenID]
        var finishReason: FinishReason = .stop
        var cachedTokens = 0
        /// Pause before each token (nil: all at once).
        var delay: Duration?
        /// Repeat `tokens` until the consumer goes away (needs `delay`).
        var endless = false
    }

    let contextLength: Int
    private struct State {
        var script: Script
        var submitError: EngineError?
        var submitted: [EngineRequest] = []
        var terminations: [RequestID: String] = [:]
        var ended: [RequestID: FinishReason] = [:]
        var snapshot = EngineSnapshot()
    }
    private let state: Mutex<State>

    init(script: Script, contextLength: Int = 2048) {
        state = Mutex(State(script: script))
        self.contextLength = contextLength
    }

    var submitError: EngineError? {
        get { state.withLock { $0.submitError } }
        set { state.withLock { $0.submitError = newValue } }
    }
    var submitted: [EngineRequest] { state.withLock { $0.submitted } }
    /// "cancelled" when the consumer dropped the stream, "finished" when the engine ended it.
    var terminations: [RequestID: String] { state.withLock { $0.terminations } }
    var engineSnapshot: EngineSnapshot {
        get { state.withLock { $0.snapshot } }
        set { state.withLock { $0.snapshot = newValue } }
    }

    func snapshot() -> EngineSnapshot { engineSnapshot }

    /// Requests the server ended early (a stop string matched), with the reason it gave.
    var ended: [RequestID: FinishReason] { state.withLock { $0.ended } }

    func end(_ id: RequestID, reason: FinishReason) { state.withLock { $0.ended[id] = reason } }

    func submit(_ request: EngineRequest) throws(EngineError) -> AsyncThrowingStream<EngineEvent, any Error> {
        let (script, error): (Script, EngineError?) = state.withLock {
            $0.submitted.append(request)
            return ($0.script, $0.submitError)
        }
        if let error { throw error }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: EngineEvent.self)

        @Sendable func logprob(_ token: TokenID) -> TokenLogprob? {
            guard let top = request.topLogprobs else { return nil }
            return TokenLogprob(logprob: -0.5, top: (0..<top).map { (token: TokenID(100 + $0), logprob: -1 - Float($0)) })
        }
        @Sendable func stats(generated: Int) -> RequestStats {
            var stats = RequestStats()
            stats.promptTokens = request.promptTokens.count
            stats.cachedTokens = script.cachedTokens
            stats.generatedTokens = generated
            stats.queueMicros = 1_500
            stats.prefillMicros = 20_000
            stats.decodeMicros = 100_000
            stats.busyShareMicros = 90_000
            return stats
        }

        if let delay = script.delay {
            let task = Task {
                var generated = 0
                repeat {
                    for token in script.tokens {
                        try? await Task.sleep(for: delay)
                        if Task.isCancelled { return }
                        if let reason = self.ended[request.id] {
                            request.onFinish?(reason, stats(generated: generated))
                            continuation.yield(.finished(reason, stats(generated: generated)))
                            continuation.finish()
                            return
                        }
                        continuation.yield(.token(token, logprob(token)))
                        generated += 1
                    }
                } while script.endless && !Task.isCancelled
                request.onFinish?(script.finishReason, stats(generated: generated))
                continuation.yield(.finished(script.finishReason, stats(generated: generated)))
                continuation.finish()
            }
            continuation.onTermination = { [weak self] termination in
                task.cancel()
                // As the real engine does: an abandoned request still reports how it ended.
                if case .cancelled = termination { request.onFinish?(.abort, stats(generated: 0)) }
                self?.recordTermination(request.id, termination)
            }
        } else {
            continuation.onTermination = { [weak self] termination in self?.recordTermination(request.id, termination) }
            for token in script.tokens { continuation.yield(.token(token, logprob(token))) }
            request.onFinish?(script.finishReason, stats(generated: script.tokens.count))
            continuation.yield(.finished(script.finishReason, stats(generated: script.tokens.count)))
            continuation.finish()
        }
        return stream
    }

    private func recordTermination(_ id: RequestID, _ termination: AsyncThrowingStream<EngineEvent, any Error>.Continuation.Termination) {
        let text: String
        switch termination {
        case .cancelled: text = "cancelled"
        case .finished: text = "finished"
        @unknown default: text = "unknown"
        }
        state.withLock { $0.terminations[id] = text }
    }

    /// Waits (polling) until some request's stream terminated as `kind`; gives up after `limit`.
    func waitForTermination(_ kind: String, limit: Duration = .seconds(20)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if terminations.values.contains(kind) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
