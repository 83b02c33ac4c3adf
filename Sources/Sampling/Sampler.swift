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
///    prefix with p_i >= minP * p_max, i.e. logit >= maxLogit + ln(minP). At least one token survives.
/// 6. The kept tokens get weights w_i = exp((logit_i - maxLogit) / temperature). The answer is the first
///    kept token, in draw order, whose running sum of w exceeds u * sum(w): an inverse CDF.
///
/// Sorting the whole vocabulary is avoided: top-k is a heap selection; top-p and min-p without top-k
/// first drop tokens that provably cannot be kept (see `filter`); with no filter at all the draw sorts
/// only a head of tokens holding all but `tailMassBound` of the mass, and sorts the rest only in the
/// rare draw that lands there. Each shortcut gives the same token as a full sort would.
/// Reproducibility: same seed, same params, same logits -> same tokens, on any batch or thread count;
/// across machines as far as the C library's expf/logf agree (a 1-ulp difference changes a token only
/// when u lands within that ulp of a boundary).
package struct Sampler: Sendable {
    package let params: SamplingParams
    /// The seed in use: `params.seed`, or one drawn from the system RNG; report it so a run can be replayed.
    package let seed: UInt64
    private var rng: Xoshiro256StarStar
    private var penalties: PenaltyState
    /// Reusable candidate storage, so a call allocates only when it needs more room than any before.
    private var scratch: [Candidate] = []
    /// With no filter, the draw first sorts only tokens of weight >= sum(w) * tailMassBound / vocabSize;
    /// the others hold less than this fraction of the mass together. Tests raise it to reach the tail.
    package var tailMassBound: Double = 1.0 / 4096

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
        switch filter(logits) {
        case .single(let token):
            return token
        case .prefix(let count, let maxLogit):
            var walk = Walk(target: u * sumOfWeights(count, maxLogit))
            return walk.step(scratch, count, maxLogit, params.temperature) ?? walk.lastPositive ?? scratch[0].id
        case .all(let maxLogit):
            return drawFromAll(logits, maxLogit, u)
        }
    }

    /// The tokens the draw chooses among, in draw order, with their final probabilities. The same chain
    /// as `sample` without the draw (penalties are applied, no random number is consumed); for tests
    /// and diagnostics, as it sorts the whole vocabulary when no filter is set.
    package mutating func candidates(_ logits: UnsafeMutableBufferPointer<Float>) -> (ids: [Int32], probs: [Float]) {
        precondition(!logits.isEmpty, "candidates needs a row of logits")
        applyPenalties(logits)
        if params.temperature == 0 { return ([Self.argmax(UnsafeBufferPointer(logits))], [1]) }
        let count: Int
        let maxLogit: Float
        switch filter(logits) {
        case .single(let token):
            return ([token], [1])
        case .prefix(let kept, let m):
            (count, maxLogit) = (kept, m)
        case .all(let m):
            collect(logits, from: -.infinity, below: .nan)
            (count, maxLogit) = (scratch.count, m)
        }
        let total = sumOfWeights(count, maxLogit)
        let kept = scratch[0..<count]
        return (kept.map(\.id), kept.map { Float(weight($0.logit, maxLogit) / total) })
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

    private enum Kept {
        /// No finite maximum (all -inf, or a +inf logit): the argmax is the only meaningful answer.
        case single(Int32)
        /// `scratch[0..<count]`, in draw order.
        case prefix(count: Int, maxLogit: Float)
        /// Every token (no filter set); `scratch` is unused.
        case all(maxLogit: Float)
    }

    /// Steps 4-5: top-k, top-p, min-p. NaN logits become -inf here.
    private mutating func filter(_ logits: UnsafeMutableBufferPointer<Float>) -> Kept {
        let n = logits.count
        var maxLogit = -Float.infinity
        var maxIndex = 0
        for i in 0..<n {
            if logits[i].isNaN { logits[i] = -.infinity }
            if logits[i] > maxLogit { (maxLogit, maxIndex) = (logits[i], i) }
        }
        if !maxLogit.isFinite { return .single(Int32(truncatingIfNeeded: maxIndex)) }

        let useTopK = params.topK > 0 && params.topK < n
        let useTopP = params.topP < 1
        let useMinP = params.minP > 0
        if !useTopK && !useTopP && !useMinP { return .all(maxLogit: maxLogit) }

        // Sum of exp(logit - maxLogit) over the set top-k left: the softmax denominator of step 5.
        var total = 0.0
        if useTopK {
            Candidate.selectFirst(params.topK, of: UnsafeBufferPointer(logits), into: &scratch)
            if useTopP { for c in scratch { total += Double(exp(c.logit - maxLogit)) } }
        } else {
            var floor = -Float.infinity
            if useMinP { floor = maxLogit + log(params.minP) }
            if useTopP {
                for i in 0..<n { total += Double(exp(logits[i] - maxLogit)) }
                // Tokens of weight < total * (1 - topP) / (2n) hold under half the excluded mass 1 - topP
                // together, so the prefix reaching topP ends before any of them: skip them unsorted.
                let negligible = total * Double(1 - params.topP) / Double(2 * n)
                floor = max(floor, maxLogit + Float(log(negligible)))
            }
            collect(logits, from: floor, below: .nan)
        }

        var count = scratch.count
        if useTopP {
            let target = Double(params.topP) * total
            var running = 0.0
            for j in 0..<count {
                running += Double(exp(scratch[j].logit - maxLogit))
                if running >= target { count = j + 1; break }
            }
        }
        if useMinP {
            // p_i >= minP * p_max  <=>  logit_i >= maxLogit + ln(minP); a prefix, since scratch is sorted.
            let floor = maxLogit + log(params.minP)
            var j = 1
            while j < count && scratch[j].logit >= floor { j += 1 }
            count = j
        }
        return .prefix(count: count, maxLogit: maxLogit)
    }

    /// Step 6's weight: exp((logit - maxLogit) / temperature), in (0, 1] for finite logits.
    @inline(__always)
    private func weight(_ logit: Float, _ maxLogit: Float) -> Double {
        Double(exp((logit - maxLogit) / params.temperature))
    }

    private func sumOfWeights(_ count: Int, _ maxLogit: Float) -> Double {
        var total = 0.0
        for j in 0..<count { total += weight(scratch[j].logit, maxLogit) }
        return total
    }

    /// The inverse-CDF walk over candidates in draw order; it can continue over a second list.
    private struct Walk {
        let target: Double
        var running = 0.0
        var lastPositive: Int32?

        mutating func step(_ list: [Candidate], _ count: Int, _ maxLogit: Float, _ temperature: Float) -> Int32? {
            for j in 0..<count {
                let w = Double(exp((list[j].logit - maxLogit) / temperature))
                if w > 0 { lastPositive = list[j].id }
                running += w
                if running > target { return list[j].id }
            }
            return nil
        }
    }

    /// Step 6 with no filter: walk the head (sorted), and only if u lands past it, the tail (sorted).
    /// Head and tail split on one logit threshold, so head-then-tail is exactly the full draw order.
    private mutating func drawFromAll(_ logits: UnsafeMutableBufferPointer<Float>, _ maxLogit: Float, _ u: Double) -> Int32 {
        let n = logits.count
        var total = 0.0
        for i in 0..<n { total += weight(logits[i], maxLogit) }
        var walk = Walk(target: u * total)
        // weight >= total * tailMassBound / n  <=>  logit >= maxLogit + temperature * ln(total * tailMassBound / n)
        let split = maxLogit + params.temperature * Float(log(total * tailMassBound / Double(n)))
        collect(logits, from: split, below: .nan)
        if let token = walk.step(scratch, scratch.count, maxLogit, params.temperature) { return token }
        collect(logits, from: -.infinity, below: split)
        if let token = walk.step(scratch, scratch.count, maxLogit, params.temperature) { return token }
        // Only when rounding leaves the running sum at or below u * total: the last token with weight.
        return walk.lastPositive ?? Self.argmax(UnsafeBufferPointer(logits))
    }

    /// Fills `scratch` with the tokens whose logit is >= `from` and < `below` (NaN `below` = no upper
    /// bound), sorted in draw order.
    private mutating func collect(_ logits: UnsafeMutableBufferPointer<Float>, from lower: Float, below upper: Float) {
        scratch.removeAll(keepingCapacity: true)
        if upper.isNaN {
            for i in 0..<logits.count where logits[i] >= lower {
                scratch.append(Candidate(logit: logits[i], id: Int32(truncatingIfNeeded: i)))
            }
        } else {
            for i in 0..<logits.count where logits[i] >= lower && logits[i] < upper {
                scratch.append(Candidate(logit: logits[i], id: Int32(truncatingIfNeeded: i)))
            }
        }
        scratch.sort { $0.precedes($1) }
    }
}
