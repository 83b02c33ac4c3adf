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

/// `tally perplexity`'s windows: every token from context/2 on is scored exactly once, from its window's
/// own prefill, and the sum of negative log-likelihoods is the one its logits give.
@Suite struct PerplexityTests {
    @Test func windowsOverlapByHalfAndScoreEachTokenOnce() {
        let w = PerplexityWindows(context: 8, tokenCount: 21)
        #expect(w.count == 4 && w.stride == 4 && w.scoredPositions == 3..<7)
        let targets = (0..<w.count).flatMap { i in w.scoredPositions.map { w.range(i).lowerBound + $0 + 1 } }
        #expect(targets == Array(4..<20))  // token 20 would need a fifth window, past the stream's end
        #expect(PerplexityWindows(context: 8, tokenCount: 7).count == 0)
    }

    @Test func theNegativeLogLikelihoodIsTheLogitsOwn() throws {
        let reference = try ArchitectureTests.reference("qwen2")
        let model = try LlamaModel(file: GGUFFile(path: ArchitectureTests.fixture("qwen2")), pool: ComputePool(threads: 2))
        var windows = 0, nll = 0.0
        let result = try Perplexity.run(model: model, tokens: reference.tokens, context: 32, kvType: .f32) { w, targets, logits in
            // The window's rows equal one prefill of its tokens, as logitsOfAllPositions computes them.
            let range = PerplexityWindows(context: 32, tokenCount: reference.tokens.count).range(w)
            let all = try logitsOfAllPositions(model, Array(reference.tokens[range]), kvType: .f32)
            #expect(Array(logits) == Array(all[15..<31].joined()))
            #expect(Array(targets) == Array(reference.tokens[range.lowerBound + 16..<range.upperBound]))
            for (row, target) in zip(all[15..<31], targets) {
                let m = Double(row.max()!)
                nll -= Double(row[Int(target)]) - m - log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
            }
            windows += 1
        }
        #expect(windows == 7 && result.scoredTokens == 7 * 16)
        #expect(abs(result.negativeLogLikelihood - nll) < 1e-9 * nll && abs(result.perplexity - exp(nll / Double(7 * 16))) < 1e-9 * result.perplexity)
    }
}
