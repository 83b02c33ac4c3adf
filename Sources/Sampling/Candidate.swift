// A candidate token and the one order every sampling step uses (logit descending, ties by token id
// ascending), plus partial selection of the first k in that order without sorting the vocabulary.

/// One token under consideration: its logit (after penalties, before temperature) and its token id
/// (a `TokenID`; Sampling cannot import Tokenization, so it is spelled Int32 here).
package struct Candidate: Sendable, Equatable {
    package var logit: Float
    package var id: Int32

    package init(logit: Float, id: Int32) {
        self.logit = logit
        self.id = id
    }

    /// Draw order: higher logit (= higher probability) first; equal logits by lower token id first.
    @inline(__always)
    package func precedes(_ other: Candidate) -> Bool {
        logit > other.logit || (logit == other.logit && id < other.id)
    }
}

extension Candidate {
    /// Replaces `out` with the first `k` candidates of `logits` in draw order, sorted in that order.
    /// NaN logits count as -infinity. A heap whose root is the latest kept candidate: O(n log k), and in
    /// a peaked distribution almost every token is rejected by one comparison with the root.
    package static func selectFirst(_ k: Int, of logits: UnsafeBufferPointer<Float>, into out: inout [Candidate]) {
        out.removeAll(keepingCapacity: true)
        let n = logits.count
        let k = min(max(k, 0), n)
        guard k > 0 else { return }
        out.reserveCapacity(k)
        for i in 0..<n {
            let value = logits[i]
            let candidate = Candidate(logit: value.isNaN ? -.infinity : value, id: Int32(truncatingIfNeeded: i))
            if out.count < k {
                out.append(candidate)
                siftUp(&out, from: out.count - 1)
            } else if candidate.precedes(out[0]) {
                out[0] = candidate
                siftDown(&out, from: 0)
            }
        }
        out.sort { $0.precedes($1) }
    }

    /// Heap invariant: no parent precedes its children (the root comes last in draw order).
    private static func siftUp(_ heap: inout [Candidate], from start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[parent].precedes(heap[child]) else { return }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    private static func siftDown(_ heap: inout [Candidate], from start: Int) {
        var parent = start
        let count = heap.count
        while true {
            var latest = parent
            let left = 2 * parent + 1
            let right = left + 1
            if left < count && heap[latest].precedes(heap[left]) { latest = left }
            if right < count && heap[latest].precedes(heap[right]) { latest = right }
            if latest == parent { return }
            heap.swapAt(parent, latest)
            parent = latest
        }
    }
}
