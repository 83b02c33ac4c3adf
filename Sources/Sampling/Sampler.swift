// Logits -> token for one request: penalties, top-k, top-p, min-p, temperature, then one seeded draw.
// The engine keeps one Sampler per request and calls it once per generated token.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The chain, in llama.cpp's default order (common/sampling.cpp: penalties -> top-k -> top-p -> min-p ->
/// temperature -> dist), on one row of logits over the vocabulary:
///
/// 1. Penalties rewrite the logits of tokens accepted in the window (see `PenaltyState.apply`).
/// 2. temperature == 0: return the argmax (ties to the lowest id). No random number is drawn.
/// 3. Otherwise draw u, one uniform Double in [0, 1) (`Xoshiro256StarStar.nextUnitDouble`), always
///    exactly one per sampled token, so the stream position is the number of sampled tokens.
/// 4. top-k keeps the k first tokens in draw order (logit descending, ties by id ascending).
/// 5. top-p and min-p use p_i = softmax over the tokens top-k kept, of the penalised logits *before*
///    temperature, as llama.cpp does (OpenAI and vLLM divide by temperature first; we do not).
///    top-p keeps the shortest prefix in draw order whose sum of p_i reaches topP; min-p then keeps the
///    tokens with p_i >= minP * p_max, i.e. logit >= maxLogit + ln(minP). At least one token survives.
/// 6. The kept tokens get weights w_i = exp((logit_i - maxLogit) / temperature). The answer is the first
///    kept token, in draw order, whose running sum of w exceeds u * sum(w): an inverse CDF.
///
/// Nothing sorts the vocabulary: top-k is a heap selection, and the prefix searches of steps 5 and 6 are
/// quickselects that carry each side's mass (`PrefixSearch`), expected O(vocabSize).
/// Reproducibility: same seed, same params, same logits -> same tokens, on any batch or thread count;
/// across machines as far as the C library's expf/logf agree (a 1-ulp difference changes a token only
/// when u lands within that ulp of a boundary).
package struct Sampler: Sendable {
    package let params: SamplingParams
    /// The seed in use: `params.seed`, or one drawn from the system RNG; report it so a run can be replayed.
    package let seed: UInt64
    private var rng: Xoshiro256StarStar
    private var penalties: PenaltyState
    /// Reusable storage, so a call allocates only when it needs more room than any call before.
    private var topK: [Candidate] = []
    private var kept: [WeightedCandidate] = []

    package init(params: SamplingParams) {
        self.params = params
        var system = SystemRandomNumberGenerator()
        seed = params.seed ?? system.next()
        rng = Xoshiro256StarStar(seed: seed)
        penalties = PenaltyState(window: params.penaltyWindow)
    }

    private var penaltiesActive: Bool {
        params.repetitionPenalty != 1 || params.presencePenalty != 0 || params.frequencyPenalty != 0
    }

    /// Records a token for the penalties: call it with every generated token (and, if the prompt should
    /// count, with the prompt's tokens first).
    package mutating func accept(_ token: Int32) {
        if penaltiesActive { penalties.accept(token) }
    }

    /// Picks the next token id from one row of logits (`[vocabSize]`). Overwrites `logits` as scratch.
    package mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>) -> Int32 {
        precondition(!logits.isEmpty, "sample needs a row of logits")
        applyPenalties(logits)
        if params.temperature == 0 { return Self.argmax(UnsafeBufferPointer(logits)) }
        let u = rng.nextUnitDouble()
        guard let (count, maxLogit) = filter(logits) else { return Self.argmax(UnsafeBufferPointer(logits)) }
        let temperature = params.temperature
        let total = weigh(count) { exp(($0 - maxLogit) / temperature) }
        if let index = PrefixSearch.crossing(&kept, count: count, target: u * total, inclusive: false) {
            return kept[index].candidate.id
        }
        // Only when rounding leaves the whole sum at or below u * total: the last token with weight.
        var last: Candidate?
        for entry in kept[0..<count] where entry.weight > 0 {
            if last.map({ $0.precedes(entry.candidate) }) ?? true { last = entry.candidate }
        }
        return last?.id ?? kept[0].candidate.id
    }

    /// The tokens the draw chooses among, in draw order, with their final probabilities: the chain of
    /// `sample` without the draw (penalties are applied; no random number is consumed). For tests and
    /// diagnostics: it sorts what it returns.
    package mutating func candidates(_ logits: UnsafeMutableBufferPointer<Float>) -> (ids: [Int32], probs: [Float]) {
        precondition(!logits.isEmpty, "candidates needs a row of logits")
        applyPenalties(logits)
        if params.temperature == 0 { return ([Self.argmax(UnsafeBufferPointer(logits))], [1]) }
        guard let (count, maxLogit) = filter(logits) else { return ([Self.argmax(UnsafeBufferPointer(logits))], [1]) }
        let temperature = params.temperature
        let total = weigh(count) { exp(($0 - maxLogit) / temperature) }
        let sorted = kept[0..<count].sorted { $0.candidate.precedes($1.candidate) }
        return (sorted.map(\.candidate.id), sorted.map { Float($0.weight / total) })
    }

    /// Index of the largest logit, the lowest index among equal ones; NaN never wins; 0 if none is > -inf.
    package static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = -Float.infinity
        var bestIndex = 0
        for i in 0..<logits.count where logits[i] > best {
            best = logits[i]
            bestIndex = i
        }
        return Int32(truncatingIfNeeded: bestIndex)
    }

    // MARK: - The chain

    private mutating func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>) {
        guard penaltiesActive else { return }
        penalties.apply(to: logits, repetition: params.repetitionPenalty,
                        presence: params.presencePenalty, frequency: params.frequencyPenalty)
    }

    /// Steps 4-5: leaves the kept tokens in `kept[0..<count]` (in no particular order) and returns count
    /// and the maximum logit. nil when there is no finite maximum (every logit -inf or NaN, or a +inf
    /// logit): then the argmax is the only meaningful answer. NaN logits become -inf here.
    private mutating func filter(_ logits: UnsafeMutableBufferPointer<Float>) -> (count: Int, maxLogit: Float)? {
        let n = logits.count
        var maxLogit = -Float.infinity
        for i in 0..<n {
            if logits[i].isNaN { logits[i] = -.infinity }
            if logits[i] > maxLogit { maxLogit = logits[i] }
        }
        guard maxLogit.isFinite else { return nil }

        // Masked (-inf) tokens have weight 0 at every step and are left out from the start.
        kept.removeAll(keepingCapacity: true)
        if params.topK > 0 && params.topK < n {
            Candidate.selectFirst(params.topK, of: UnsafeBufferPointer(logits), into: &topK)
            for c in topK where c.logit > -.infinity { kept.append(WeightedCandidate(candidate: c, weight: 0)) }
        } else {
            let unset = WeightedCandidate(candidate: Candidate(logit: 0, id: 0), weight: 0)
            kept.append(contentsOf: repeatElement(unset, count: n))
            var written = 0
            kept.withUnsafeMutableBufferPointer { out in
                for i in 0..<n where logits[i] > -.infinity {
                    out[written] = WeightedCandidate(candidate: Candidate(logit: logits[i], id: Int32(truncatingIfNeeded: i)), weight: 0)
                    written += 1
                }
            }
            kept.removeLast(n - written)
        }
        var count = kept.count

        if params.topP < 1 {
            let total = weigh(count) { exp($0 - maxLogit) }
            if let last = PrefixSearch.crossing(&kept, count: count, target: Double(params.topP) * total, inclusive: true) {
                count = last + 1
            }
        }
        if params.minP > 0 {
            // p_i >= minP * p_max  <=>  logit_i >= maxLogit + ln(minP); the top token always passes.
            let floor = maxLogit + log(params.minP)
            var write = 0
            for read in 0..<count where kept[read].candidate.logit >= floor {
                kept[write] = kept[read]
                write += 1
            }
            count = write
        }
        return (count, maxLogit)
    }

    /// Sets each kept entry's weight to `weight(logit)` and returns their sum.
    private mutating func weigh(_ count: Int, _ weight: (Float) -> Float) -> Double {
        kept.withUnsafeMutableBufferPointer { entries in
            var total = 0.0
            for i in 0..<count {
                let w = Double(weight(entries[i].candidate.logit))
                entries[i].weight = w
                total += w
            }
            return total
        }
    }
}
