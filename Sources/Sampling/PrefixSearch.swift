// Finds where a running sum of weights, taken in draw order, crosses a target, without sorting:
// quickselect on the draw order, keeping the mass of each side. top-p and the final draw use it.

/// A candidate with a weight for the current step (exp of its scaled logit).
struct WeightedCandidate {
    var candidate: Candidate
    var weight: Double
}

enum PrefixSearch {
    /// Rearranges `entries[0..<count]` and returns the index of the crossing entry, the first one in
    /// draw order at which the running sum of weights exceeds `target` (`inclusive`: reaches it). On
    /// return every entry before that index precedes it in draw order and every entry after it follows
    /// it (like C++ nth_element), so `entries[0...index]` is the prefix up to the crossing.
    /// nil when the whole sum does not cross (only by rounding, when target is about the total).
    ///
    /// The mass of the part that precedes a pivot decides which side holds the crossing; expected O(n).
    /// Sums are taken in a different order than a sorted walk, so the answer is the sorted walk's up to
    /// Double rounding; it is still a deterministic function of the weights and the target.
    static func crossing(_ entries: inout [WeightedCandidate], count: Int, target: Double, inclusive: Bool) -> Int? {
        precondition(count <= entries.count)
        return entries.withUnsafeMutableBufferPointer { crossing($0, count: count, target: target, inclusive: inclusive) }
    }

    private static func crossing(
        _ entries: UnsafeMutableBufferPointer<WeightedCandidate>, count: Int, target: Double, inclusive: Bool
    ) -> Int? {
        @inline(__always) func crosses(_ sum: Double, _ target: Double) -> Bool {
            inclusive ? sum >= target : sum > target
        }
        var lo = 0
        var hi = count
        var remaining = target
        // Median-of-three pivots make quadratic behaviour unlikely; past this many rounds, sort the rest.
        var rounds = 2 * (Int.bitWidth - count.leadingZeroBitCount) + 8
        while hi - lo > 32 && rounds > 0 {
            rounds -= 1
            let pivotIndex = medianOfThree(entries, lo, (lo + hi) / 2, hi - 1)
            entries.swapAt(pivotIndex, hi - 1)
            let pivot = entries[hi - 1].candidate
            var store = lo
            var before = 0.0
            for i in lo..<(hi - 1) where entries[i].candidate.precedes(pivot) {
                before += entries[i].weight
                entries.swapAt(i, store)
                store += 1
            }
            entries.swapAt(store, hi - 1)
            if crosses(before, remaining) {
                hi = store
                continue
            }
            remaining -= before
            if crosses(entries[store].weight, remaining) { return store }
            remaining -= entries[store].weight
            lo = store + 1
        }
        var tail = UnsafeMutableBufferPointer(rebasing: entries[lo..<hi])
        tail.sort { $0.candidate.precedes($1.candidate) }
        var running = 0.0
        for i in lo..<hi {
            running += entries[i].weight
            if crosses(running, remaining) { return i }
        }
        return nil
    }

    private static func medianOfThree(_ e: UnsafeMutableBufferPointer<WeightedCandidate>, _ a: Int, _ b: Int, _ c: Int) -> Int {
        let (x, y, z) = (e[a].candidate, e[b].candidate, e[c].candidate)
        if x.precedes(y) {
            if y.precedes(z) { return b }
            return x.precedes(z) ? c : a
        }
        if x.precedes(z) { return a }
        return y.precedes(z) ? c : b
    }
}
