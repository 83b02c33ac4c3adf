// The sampling chain on hand-computable distributions: greedy, temperature, top-k, top-p, min-p, the
// documented draw, and seeds.

import Foundation
import Sampling
import Testing

/// p = [0.1, 0.2, 0.3, 0.4] for tokens 0...3.
let tenths = logits(probabilities: [0.1, 0.2, 0.3, 0.4])
/// p = [0.5, 0.3, 0.15, 0.05] for tokens 0...3.
let skewed = logits(probabilities: [0.5, 0.3, 0.15, 0.05])

@Suite struct GreedyTests {
    @Test func argmaxTakesLowestIdAmongTies() {
        var sampler = Sampler(params: .greedy)
        #expect(sampler.sample([1, 3, 3, 2]) == 1)
        #expect(sampler.sample([5, 1, 5]) == 0)
        #expect(sampler.sample([-1, -2, -0.5]) == 2)
    }

    @Test func nanNeverWinsAndAllMaskedGivesZero() {
        var sampler = Sampler(params: .greedy)
        #expect(sampler.sample([.nan, 1, .nan, 2]) == 3)
        #expect(sampler.sample([-.infinity, -.infinity]) == 0)
    }

    @Test func greedyIgnoresFiltersAndDrawsNothing() {
        var sampler = Sampler(params: SamplingParams(temperature: 0, topK: 2, topP: 0.1, minP: 0.9, seed: 1))
        let big = randomLogits(count: 49_152, seed: 3)
        let expected = Int32(big.indices.max { big[$0] < big[$1] || (big[$0] == big[$1] && $0 > $1) }!)
        for _ in 0..<3 { #expect(sampler.sample(big) == expected) }
        #expect(sampler.candidates(tenths) == ([3], [1]))
    }
}

@Suite struct TemperatureTests {
    @Test func temperatureOneKeepsTheSoftmax() {
        var sampler = Sampler(params: SamplingParams(temperature: 1))
        let (ids, probs) = sampler.candidates(tenths)
        #expect(ids == [3, 2, 1, 0])
        #expect(isClose(probs, [0.4, 0.3, 0.2, 0.1]))
    }

    @Test func temperatureHalfSquaresTheWeights() {
        // p_i^(1/T) normalised: [16, 9, 4, 1] / 30.
        var sampler = Sampler(params: SamplingParams(temperature: 0.5))
        let (ids, probs) = sampler.candidates(tenths)
        #expect(ids == [3, 2, 1, 0])
        #expect(isClose(probs, [16, 9, 4, 1].map { $0 / 30.0 }))
    }

    @Test func temperatureTwoTakesSquareRoots() {
        var sampler = Sampler(params: SamplingParams(temperature: 2))
        let roots = [0.4, 0.3, 0.2, 0.1].map { $0.squareRoot() }
        let total = roots.reduce(0, +)
        #expect(isClose(sampler.candidates(tenths).probs, roots.map { $0 / total }))
    }

    @Test(arguments: [(Float(1), [0.1, 0.2, 0.3, 0.4]), (Float(0.5), [1, 4, 9, 16].map { $0 / 30.0 })])
    func empiricalFrequenciesMatch(temperature: Float, expected: [Double]) {
        var sampler = Sampler(params: SamplingParams(temperature: temperature, seed: 2024))
        var counts = [Int](repeating: 0, count: 4)
        let draws = 20_000
        for _ in 0..<draws { counts[Int(sampler.sample(tenths))] += 1 }
        // One standard deviation is at most sqrt(0.25 / 20000) = 0.0035; allow about 4.
        for token in 0..<4 {
            #expect(abs(Double(counts[token]) / Double(draws) - expected[token]) < 0.015, "token \(token): \(counts)")
        }
    }

    @Test func maskedTokensAreNeverDrawn() {
        var sampler = Sampler(params: SamplingParams(temperature: 2, seed: 5))
        for _ in 0..<2_000 {
            #expect(sampler.sample([0, -.infinity, 0, .nan]) != 1)
        }
    }
}

@Suite struct FilterTests {
    @Test func topKKeepsExactlyK() {
        var sampler = Sampler(params: SamplingParams(topK: 2))
        let (ids, probs) = sampler.candidates(tenths)
        #expect(ids == [3, 2])
        #expect(isClose(probs, [4.0 / 7, 3.0 / 7]))
    }

    @Test func topKBreaksTiesByLowerId() {
        var sampler = Sampler(params: SamplingParams(topK: 3))
        #expect(sampler.candidates([1, 2, 1, 1, 2, 0]).ids == [1, 4, 0])
    }

    @Test func topKOnAFullVocabularyEqualsAFullSort() {
        let big = randomLogits(count: 49_152, seed: 11)
        let order = big.indices.sorted { big[$0] > big[$1] || (big[$0] == big[$1] && $0 < $1) }
        for k in [1, 40, 1000] {
            var sampler = Sampler(params: SamplingParams(topK: k))
            #expect(sampler.candidates(big).ids == order.prefix(k).map(Int32.init))
        }
    }

    @Test func topPKeepsTheSmallestPrefixReachingP() {
        // Cumulative in draw order: 0.5, 0.8, 0.95, 1.
        func kept(_ p: Float) -> [Int32] {
            var sampler = Sampler(params: SamplingParams(topP: p))
            return sampler.candidates(skewed).ids
        }
        #expect(kept(0.4) == [0])
        #expect(kept(0.75) == [0, 1])
        #expect(kept(0.82) == [0, 1, 2])
        #expect(kept(0.99) == [0, 1, 2, 3])
        var sampler = Sampler(params: SamplingParams(topP: 0.75))
        #expect(isClose(sampler.candidates(skewed).probs, [0.625, 0.375]))
    }

    @Test func topPNormalisesOverWhatTopKKept() {
        // After top-k 3 the probabilities are [0.5, 0.3, 0.15] / 0.95, cumulative 0.526, 0.842: 0.82 is
        // reached by two tokens, whereas over all four it takes three (previous test).
        var sampler = Sampler(params: SamplingParams(topK: 3, topP: 0.82))
        #expect(sampler.candidates(skewed).ids == [0, 1])
    }

    @Test func topPComesBeforeTemperature() {
        // At T = 2 the tempered probabilities are [0.379, 0.293, 0.207, 0.120]; top-p 0.75 over those would
        // keep three tokens. llama.cpp's order applies top-p to the untempered [0.5, 0.3, ...]: two tokens.
        var sampler = Sampler(params: SamplingParams(temperature: 2, topP: 0.75))
        let (ids, probs) = sampler.candidates(skewed)
        #expect(ids == [0, 1])
        let a = 0.5.squareRoot(), b = 0.3.squareRoot()
        #expect(isClose(probs, [a / (a + b), b / (a + b)]))
    }

    @Test func topPOnAFullVocabularyEqualsAFullSort() {
        let big = randomLogits(count: 49_152, seed: 12, spread: 30)
        let order = big.indices.sorted { big[$0] > big[$1] || (big[$0] == big[$1] && $0 < $1) }
        let m = big.max()!
        let weights = order.map { Double(exp(big[$0] - m)) }
        let total = weights.reduce(0, +)
        for p in [Float(0.5), 0.9, 0.99] {
            var running = 0.0
            let count = weights.firstIndex { running += $0; return running >= Double(p) * total }! + 1
            var sampler = Sampler(params: SamplingParams(topP: p))
            #expect(sampler.candidates(big).ids == order.prefix(count).map(Int32.init), "top_p \(p)")
        }
    }

    @Test func minPKeepsTokensAboveAFractionOfTheTop() {
        // p_max = 0.5: min_p 0.2 keeps p >= 0.1 (three tokens), 0.35 keeps p >= 0.175 (two), 1 keeps one.
        func kept(_ minP: Float, topP: Float = 1) -> [Int32] {
            var sampler = Sampler(params: SamplingParams(topP: topP, minP: minP))
            return sampler.candidates(skewed).ids
        }
        #expect(kept(0.2) == [0, 1, 2])
        #expect(kept(0.35) == [0, 1])
        #expect(kept(1) == [0])
        #expect(kept(0.05) == [0, 1, 2, 3])
        #expect(kept(0.2, topP: 0.75) == [0, 1])
        var sampler = Sampler(params: SamplingParams(minP: 0.2))
        #expect(isClose(sampler.candidates(skewed).probs, [0.5, 0.3, 0.15].map { $0 / 0.95 }))
    }

    @Test func minPOneKeepsEveryTiedTop() {
        var sampler = Sampler(params: SamplingParams(minP: 1))
        #expect(sampler.candidates([2, 1, 2, 2]).ids == [0, 2, 3])
    }
}

@Suite struct DrawTests {
    /// The documented draw, re-implemented: u from the same stream, inverse CDF over `candidates`.
    func reference(_ params: SamplingParams, _ logits: [Float], draws: Int) -> [Int32] {
        var rng = Xoshiro256StarStar(seed: params.seed!)
        var lister = Sampler(params: params)
        let (ids, probs) = lister.candidates(logits)
        return (0..<draws).map { _ in
            let u = rng.nextUnitDouble()
            var running = 0.0
            for (id, p) in zip(ids, probs) {
                running += Double(p)
                if running > u { return id }
            }
            return ids.last!
        }
    }

    static let cases: [SamplingParams] = [
        SamplingParams(temperature: 1, seed: 1),
        SamplingParams(temperature: 0.7, topK: 3, seed: 2),
        SamplingParams(temperature: 1.3, topP: 0.9, seed: 3),
        SamplingParams(temperature: 1, minP: 0.1, seed: 4),
        SamplingParams(temperature: 0.5, topK: 5, topP: 0.95, minP: 0.05, seed: 5),
    ]

    @Test(arguments: cases)
    func drawIsTheDocumentedInverseCDF(params: SamplingParams) {
        let logits = randomLogits(count: 12, seed: 99, spread: 4)
        var sampler = Sampler(params: params)
        let drawn = (0..<500).map { _ in sampler.sample(logits) }
        // Float probabilities in the reference can move a boundary by ~1e-7; allow a rare disagreement.
        let disagreements = zip(drawn, reference(params, logits, draws: 500)).filter { $0 != $1 }.count
        #expect(disagreements <= 2, "\(disagreements) of 500 draws differ")
    }

    @Test func equalLogitsDrawFloorOfUTimesN() {
        // 1000 tied tokens: draw order is by id and every weight is 1, so the token is floor(u * 1000).
        let flat = [Float](repeating: 0.25, count: 1000)
        var sampler = Sampler(params: SamplingParams(temperature: 0.7, seed: 404))
        var rng = Xoshiro256StarStar(seed: 404)
        for _ in 0..<300 {
            #expect(sampler.sample(flat) == Int32(rng.nextUnitDouble() * 1000))
        }
    }

    @Test func largeVocabularyDrawMatchesASortedWalk() {
        // The quickselect over 5000 tokens must pick what a walk over the fully sorted list picks.
        let logits = randomLogits(count: 5000, seed: 8, spread: 12)
        let temperature: Float = 0.9
        let m = logits.max()!
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let weights = order.map { Double(exp((logits[$0] - m) / temperature)) }
        let total = weights.reduce(0, +)
        var sampler = Sampler(params: SamplingParams(temperature: temperature, seed: 77))
        var rng = Xoshiro256StarStar(seed: 77)
        var disagreements = 0
        for _ in 0..<300 {
            let target = rng.nextUnitDouble() * total
            var running = 0.0
            let expected = order[weights.firstIndex { running += $0; return running > target } ?? order.count - 1]
            if sampler.sample(logits) != Int32(expected) { disagreements += 1 }
        }
        // Sums in a different order can move a boundary by an ulp of Double; that should not show here.
        #expect(disagreements <= 1)
    }
}

@Suite struct SeedTests {
    /// `steps` tokens, each accepted, from changing logits: what a generation loop does.
    func generate(_ params: SamplingParams, steps: Int = 200) -> [Int32] {
        var sampler = Sampler(params: params)
        return (0..<steps).map { step in
            let token = sampler.sample(randomLogits(count: 64, seed: UInt64(step), spread: 3))
            sampler.accept(token)
            return token
        }
    }

    @Test func sameSeedSameSequence() {
        let params = SamplingParams(temperature: 0.8, topK: 20, topP: 0.95, repetitionPenalty: 1.2, seed: 1234)
        #expect(generate(params) == generate(params))
    }

    @Test func differentSeedsDiffer() {
        let a = generate(SamplingParams(seed: 1))
        let b = generate(SamplingParams(seed: 2))
        #expect(a != b)
        #expect(zip(a, b).filter { $0 == $1 }.count < 50)
    }

    @Test func reportedSeedReplaysAnUnseededRequest() {
        var unseeded = Sampler(params: SamplingParams(temperature: 1))
        let first = (0..<100).map { _ in unseeded.sample(tenths) }
        var replay = Sampler(params: SamplingParams(temperature: 1, seed: unseeded.seed))
        #expect((0..<100).map { _ in replay.sample(tenths) } == first)
    }

    @Test func oneDrawPerSampledTokenEvenWithOneCandidate() {
        // A one-token vocabulary and a row with one unmasked token still consume their draw, so what
        // follows is the same as after an ordinary draw.
        let firstRows: [[Float]] = [[0], [-.infinity, 5, -.infinity], tenths]
        let sequences = firstRows.map { row in
            var sampler = Sampler(params: SamplingParams(seed: 9))
            _ = sampler.sample(row)
            return (0..<50).map { _ in sampler.sample(skewed) }
        }
        #expect(sequences[0] == sequences[2])
        #expect(sequences[1] == sequences[2])
    }
}
