// Log-softmax of raw logits for OpenAI logprobs, on a hand-computable example.

import Foundation
import Sampling
import Testing

@Suite struct LogProbabilitiesTests {
    func logprobs(_ logits: [Float], chosen: Int32, top n: Int) -> (chosen: Float, top: [(token: Int32, logprob: Float)]) {
        logits.withUnsafeBufferPointer { Sampler.logProbabilities($0, chosen: chosen, top: n) }
    }

    @Test func handComputedExample() {
        // softmax([0, ln 2, ln 3]) = [1/6, 2/6, 3/6].
        let result = logprobs([0, Float(log(2.0)), Float(log(3.0))], chosen: 1, top: 2)
        #expect(abs(Double(result.chosen) - log(2.0 / 6)) < 1e-6)
        #expect(result.top.map(\.token) == [2, 1])
        #expect(abs(Double(result.top[0].logprob) - log(0.5)) < 1e-6)
        #expect(abs(Double(result.top[1].logprob) - log(1.0 / 3)) < 1e-6)
    }

    @Test func stableForLargeLogits() {
        // Shifting every logit leaves log-softmax unchanged; a naive exp(1000) would overflow.
        let result = logprobs([1000, 1000 + Float(log(3.0))], chosen: 0, top: 1)
        #expect(abs(Double(result.chosen) - log(0.25)) < 1e-4)
        #expect(result.top.map(\.token) == [1])
        #expect(abs(Double(result.top[0].logprob) - log(0.75)) < 1e-4)
    }

    @Test func topCountIsClampedAndTiesGoToLowerIds() {
        let uniform = logprobs([0, 0, 0, 0], chosen: 3, top: 10)
        #expect(uniform.top.map(\.token) == [0, 1, 2, 3])
        #expect(uniform.top.allSatisfy { abs(Double($0.logprob) - log(0.25)) < 1e-6 })
        #expect(logprobs([0, 1], chosen: 0, top: 0).top.isEmpty)
    }

    @Test func maskedAndNaNLogitsHaveZeroProbability() {
        let result = logprobs([0, -.infinity, .nan, 0], chosen: 1, top: 4)
        #expect(result.chosen == -.infinity)
        #expect(result.top.map(\.token) == [0, 3, 1, 2])
        #expect(abs(Double(result.top[0].logprob) - log(0.5)) < 1e-6)
        #expect(result.top[2].logprob == -.infinity && result.top[3].logprob == -.infinity)
    }

    @Test func probabilitiesSumToOneOnALargeVocabulary() {
        let big = randomLogits(count: 49_152, seed: 21)
        let result = logprobs(big, chosen: 0, top: 49_152)
        let total = result.top.reduce(0.0) { $0 + exp(Double($1.logprob)) }
        #expect(abs(total - 1) < 1e-4)
        #expect(result.top.first?.token == big.withUnsafeBufferPointer { Sampler.argmax($0) })
    }
}
