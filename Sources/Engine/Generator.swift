// One request, start to finish, on its own KV blocks through the engine's own scheduler and step: prefill
// in chunks, then decode token by token. `tally generate` and the real-model goldens use it.

import GGUF
import ModelRuntime
import Sampling

package struct GenerationParams: Sendable {
    package var maxTokens: Int = 128
    package var sampling = SamplingParams()
    package var stopTokenIDs: Set<TokenID> = []
    /// Generate past end-of-generation: the stop tokens are masked out (llama.cpp's --ignore-eos).
    package var ignoreEOS = false
    /// Prompt tokens per prefill step.
    package var prefillChunk = 512
    package var kvType = KVType.default
    /// Prompt-lookup speculative decoding (EngineConfig.draftTokens); 0 off.
    package var draftTokens = 0
    package var draftNgram = 3

    package init() {}
}

package struct GenerationResult: Sendable {
    package var promptTokens: [TokenID]
    package var generatedTokens: [TokenID]
    package var finishReason: FinishReason
    package var prefillSeconds: Double
    package var decodeSeconds: Double
    package var seed: UInt64
    /// Draft tokens proposed and kept (speculative decoding).
    package var draftTokens = 0
    package var acceptedDraftTokens = 0

    package var prefillTokensPerSecond: Double { Double(promptTokens.count) / max(prefillSeconds, 1e-9) }
    /// Tokens after the first (which prefill produces) over the decode time.
    package var decodeTokensPerSecond: Double { Double(max(generatedTokens.count - 1, 0)) / max(decodeSeconds, 1e-9) }
}

/// One request driven through an `EngineCore` of its own on the calling thread: the same scheduler, KV
/// blocks and sampling as the server, without the engine thread or an async stream.
package struct Generator {
    package let model: LlamaModel

    package init(model: LlamaModel) { self.model = model }

    /// Generates from `prompt`, calling `onToken` with each new token; returning false from it stops.
    package func generate(prompt: [TokenID], params: GenerationParams, onToken: (TokenID) -> Bool = { _ in true }) throws -> GenerationResult {
        let contextLength = model.config.contextLength
        guard prompt.count < contextLength else { throw RuntimeError.contextExceeded(position: prompt.count, contextLength: contextLength) }
        let maxTokens = min(params.maxTokens, contextLength - prompt.count)
        var options = EngineOptions()
        options.kvCapacity = .positions(prompt.count + maxTokens)
        options.kvType = params.kvType
        options.maxBatchTokens = params.prefillChunk
        options.maxSeqs = 1
        options.prefixCaching = false
        options.draftTokens = params.draftTokens
        options.draftNgram = params.draftNgram
        try params.kvType.check(for: model.config)
        let core = EngineFactory.core(model: model, options: options)

        let heard = Heard()
        var request = EngineRequest(id: "generate", promptTokens: prompt, sampling: params.sampling, maxTokens: maxTokens,
                                    stopTokenIDs: params.stopTokenIDs, ignoreEOS: params.ignoreEOS)
        // EngineCore calls these on this thread, during `step`.
        request.onToken = { heard.tokens.append($0) }
        request.onFinish = { heard.finish = ($0, $1) }
        do { try core.add(request, continuation: nil) } catch { throw error }
        var delivered = 0
        while core.hasWork {
            try core.step()
            while delivered < heard.tokens.count {
                delivered += 1
                if !onToken(heard.tokens[delivered - 1]) {
                    core.end(request.id, .stop)
                    break
                }
            }
        }
        guard let (reason, stats) = heard.finish else { throw EngineError.internalError("generate ended without finishing") }
        return GenerationResult(
            promptTokens: prompt, generatedTokens: Array(heard.tokens.prefix(delivered)), finishReason: reason,
            prefillSeconds: Double(stats.prefillMicros) / 1e6, decodeSeconds: Double(stats.decodeMicros) / 1e6, seed: stats.seed,
            draftTokens: stats.draftTokens, acceptedDraftTokens: stats.acceptedDraftTokens)
    }
}

/// What the engine told `Generator` (only ever touched on the generating thread).
private final class Heard: @unchecked Sendable {
    var tokens: [TokenID] = []
    var finish: (FinishReason, RequestStats)?
}
