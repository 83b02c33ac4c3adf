// `echo` with `logprobs` scores a prompt: each prompt token's log-probability given the tokens before it,
// computed by the engine as the server runs it (prefill in chunks, the prefix cache on). Checked against
// the float32 transformers reference of each architecture fixture (ArchitectureTests): the largest logit
// error there is under 1e-3 with an f32 KV cache, so a log-probability may move by at most twice that
// (measured: at most 1.5e-5, llama3).

import Engine
import Foundation
import GGUF
import Kernels
import ModelRuntime
import Testing

@Suite struct PromptScoringAgainstTheReferenceTests {
    @Test(arguments: ArchitectureTests.names)
    func promptLogprobsMatchTheFloatReference(name: String) async throws {
        let reference = try ArchitectureTests.reference(name)
        let model = try LlamaModel(file: GGUFFile(path: ArchitectureTests.fixture(name)), pool: ComputePool(threads: 2))
        var options = EngineOptions()
        options.kvType = .f32
        options.maxBatchTokens = 32
        options.kvCapacity = .positions(reference.tokens.count + 16)
        let core = EngineFactory.core(model: model, options: options)
        var request = EngineRequest(id: "echo", promptTokens: reference.tokens, maxTokens: 0)
        request.promptLogprobs = 2
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: EngineEvent.self)
        try core.add(request, continuation: continuation)
        while core.hasWork { try core.step() }
        var scored: [TokenLogprob] = []
        for try await event in stream { if case .promptLogprobs(let s) = event { scored = s } }
        #expect(scored.count == reference.tokens.count - 1)

        var worst = 0.0
        for (i, entry) in scored.enumerated() {
            let row = reference.logits[i], m = Double(row.max()!)
            let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
            worst = max(worst, abs(Double(entry.logprob) - (Double(row[Int(reference.tokens[i + 1])]) - lse)))
            #expect(entry.top.count == 2 && entry.top[0].logprob >= entry.top[1].logprob && entry.top[0].logprob >= entry.logprob)
        }
        #expect(worst < 2e-3, "\(name): largest log-probability error \(worst)")
    }
}
