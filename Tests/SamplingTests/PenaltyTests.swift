// Repetition (llama.cpp), presence and frequency (OpenAI) penalties on hand-computed logits, and the window.

import Sampling
import Testing

@Suite struct PenaltyTests {
    let base: [Float] = [2, -1, 0.5, 3]

    /// A greedy sampler with these penalties that has accepted `history`.
    func sampler(repetition: Float = 1, presence: Float = 0, frequency: Float = 0, window: Int = 64,
                 history: [Int32] = [0, 1, 0]) -> Sampler {
        var sampler = Sampler(params: SamplingParams(temperature: 0, repetitionPenalty: repetition,
                                                     presencePenalty: presence, frequencyPenalty: frequency,
                                                     penaltyWindow: window))
        for token in history { sampler.accept(token) }
        return sampler
    }

    @Test func repetitionDividesPositiveAndMultipliesNegativeLogits() {
        var s = sampler(repetition: 2)
        #expect(s.penalised(base) == [1, -2, 0.5, 3])
    }

    @Test func frequencyScalesWithCount() {
        // token 0 seen twice, token 1 once.
        var s = sampler(frequency: 0.5)
        #expect(s.penalised(base) == [1, -1.5, 0.5, 3])
    }

    @Test func presenceIsOncePerToken() {
        var s = sampler(presence: 0.5)
        #expect(s.penalised(base) == [1.5, -1.5, 0.5, 3])
    }

    @Test func negativePenaltiesEncourage() {
        var s = sampler(presence: -1, frequency: -0.25)
        #expect(s.penalised(base) == [3.5, 0.25, 0.5, 3])
    }

    @Test func repetitionThenFrequencyThenPresence() {
        // token 0: 2 / 2 - 2 * 0.5 - 0.25 = -0.25; token 1: -1 * 2 - 1 * 0.5 - 0.25 = -2.75.
        var s = sampler(repetition: 2, presence: 0.25, frequency: 0.5)
        #expect(s.penalised(base) == [-0.25, -2.75, 0.5, 3])
    }

    @Test func windowCountsOnlyTheMostRecentTokens() {
        // Window 2 over [0, 1, 0, 3, 3]: only token 3, twice.
        var recent = sampler(frequency: 1, window: 2, history: [0, 1, 0, 3, 3])
        #expect(recent.penalised(base) == [2, -1, 0.5, 1])
        // Window 3 over the same: [0, 3, 3].
        var three = sampler(frequency: 1, window: 3, history: [0, 1, 0, 3, 3])
        #expect(three.penalised(base) == [1, -1, 0.5, 1])
        var all = sampler(frequency: 1, window: -1, history: [0, 1, 0, 3, 3])
        #expect(all.penalised(base) == [0, -2, 0.5, 1])
        var none = sampler(frequency: 1, window: 0, history: [0, 1, 0, 3, 3])
        #expect(none.penalised(base) == base)
    }

    @Test func penaltiesApplyOncePerCall() {
        var s = sampler(presence: 1)
        #expect(s.penalised(base) == [1, -2, 0.5, 3])
        #expect(s.penalised(base) == [1, -2, 0.5, 3])
    }

    @Test func penaltyChangesTheGreedyChoice() {
        var s = sampler(repetition: 2, history: [3])
        #expect(s.sample(base) == 0)
        var plain = sampler(history: [3])
        #expect(plain.sample(base) == 3)
    }

    @Test func tokensOutsideTheVocabularyAreIgnored() {
        var s = sampler(presence: 1, history: [100, -1, 2])
        #expect(s.penalised(base) == [2, -1, -0.5, 3])
    }
}
