// One request, start to finish, on its own KV blocks: prefill the prompt in chunks, then decode token by
// token. `tally generate` uses it; the batching Engine (issue 6) schedules many of these at once.

import Foundation
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

    package init() {}
}



package struct GenerationResult: Sendable {
    package var promptTokens: [TokenID]
    package var generatedTokens: [TokenID]
    package var finishReason: FinishReason
    package var prefillSeconds: Double
    package var decodeSeconds: Double
    package var seed: UInt64

    package var prefillTokensPerSecond: Double { Double(promptTokens.count) / max(prefillSeconds, 1e-9) }
    /// Tokens after the first (which prefill produces) over the decode time.
    package var decodeTokensPerSecond: Double { Double(max(generatedTokens.count - 1, 0)) / max(decodeSeconds, 1e-9) }
}

package struct Generator {
    package let model: LlamaModel
    package let blockSize = 16

    package init(model: LlamaModel) { self.model = model }

    /// Generates from `prompt`, calling `onToken` with each new token; returning false from it stops.
    package func generate(prompt: [TokenID], params: GenerationParams, onToken: (TokenID) -> Bool = { _ in true }) throws -> GenerationResult {
        let c = model.config
        let total = min(prompt.count + params.maxTokens, c.contextLength)
        guard prompt.count < c.contextLength else { throw RuntimeError.contextExceeded(position: prompt.count, contextLength: c.contextLength) }
        let blocks = (total + blockSize - 1) / blockSize
        let kv = KVStore(config: c, blockCount: blocks, blockSize: blockSize)
        let table = (0..<blocks).map { BlockID($0) }
        var sampler = Sampler(params: params.sampling)
        var logits: [Float] = []

        let prefillStart = DispatchTime.now()
        var done = 0
        while done < prompt.count {
            let chunk = Array(prompt[done..<min(done + params.prefillChunk, prompt.count)])
            var batch = ForwardBatch()
            batch.append(sequence: chunk, from: done, blockTable: table, wantLogits: done + chunk.count == prompt.count)
            logits = try model.forward(batch, kv: kv)
            done += chunk.count
        }
        let prefillSeconds = seconds(since: prefillStart)

        var generated: [TokenID] = []
        var finish = FinishReason.length
        let decodeStart = DispatchTime.now()
        while generated.count < params.maxTokens && prompt.count + generated.count < c.contextLength {
            // As llama.cpp's --ignore-eos: end-of-generation tokens cannot be chosen, not merely not stop.
            if params.ignoreEOS { for id in params.stopTokenIDs where Int(id) < logits.count { logits[Int(id)] = -.infinity } }
            let token = logits.withUnsafeMutableBufferPointer { sampler.sample($0) }
            sampler.accept(token)
            generated.append(token)
            if !onToken(token) { finish = .stop; break }
            if params.stopTokenIDs.contains(token) { finish = .stop; break }
            if generated.count == params.maxTokens { break }
            var batch = ForwardBatch()
            batch.append(sequence: [token], from: prompt.count + generated.count - 1, blockTable: table, wantLogits: true)
            logits = try model.forward(batch, kv: kv)
        }
        return GenerationResult(
            promptTokens: prompt, generatedTokens: generated, finishReason: finish,
            prefillSeconds: prefillSeconds, decodeSeconds: seconds(since: decodeStart), seed: sampler.seed)
    }
}

func seconds(since start: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
