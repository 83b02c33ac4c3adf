// Byte-level BPE (`tokenizer.ggml.model = gpt2`): each pre-token word starts as one token per byte and
// adjacent pairs merge by rank, lowest first, until no listed pair remains.
//
// Algorithm: the word is a doubly linked list of symbols (token ids). Every adjacent pair that has a
// merge goes into a min-heap keyed by (rank, left position), so ties go to the leftmost pair as in
// llama.cpp and HF tokenizers. Popping an entry re-checks the pair still exists (a neighbour may have
// merged away since it was pushed); a merge pushes only the two new pairs around the merged symbol.
// Each merge costs O(log n), so a long word costs O(n log n), never a rescan per merge.

import GGUF

/// Merge rank and result of a pair of token ids, in an open-addressing table keyed by the two ids
/// packed into one UInt64 (a Dictionary of tuples hashes several times slower in the hot loop).
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    private static let empty = UInt64.max

    init(capacityFor count: Int) {
        var capacity = 16
        while capacity < count * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: capacity)
        values = [UInt64](repeating: 0, count: capacity)
        mask = capacity - 1
    }

    @inline(__always) static func key(_ left: TokenID, _ right: TokenID) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always) static func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 20)
    }

    /// Keeps the first (lowest-rank) entry when a pair is listed twice.
    mutating func insert(left: TokenID, right: TokenID, rank: Int32, result: TokenID) {
        let key = Self.key(left, right)
        var slot = Self.slot(key) & mask
        while keys[slot] != Self.empty {
            if keys[slot] == key { return }
            slot = (slot + 1) & mask
        }
        keys[slot] = key
        values[slot] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: result))
    }

    /// (rank << 32 | result) of the pair, or nil.
    @inline(__always) func find(_ left: TokenID, _ right: TokenID) -> UInt64? {
        keys.withUnsafeBufferPointer { k in values.withUnsafeBufferPointer { v in View(keys: k, values: v, mask: mask).find(left, right) } }
    }

    /// Runs `body` with bounds-check-free lookups (the merge loop does millions of them).
    @inline(__always) func withView<R>(_ body: (View) -> R) -> R {
        keys.withUnsafeBufferPointer { k in values.withUnsafeBufferPointer { v in body(View(keys: k, values: v, mask: mask)) } }
    }

    struct View {
        let keys: UnsafeBufferPointer<UInt64>
        let values: UnsafeBufferPointer<UInt64>
        let mask: Int

        @inline(__always) func find(_ left: TokenID, _ right: TokenID) -> UInt64? {
            // A byte without a token (-1) never merges; the pair (-1, -1) would also pack to the
            // empty-slot key and "find" rank 0, result 0: two such bytes became <|endoftext|> (fuzzing).
            guard left >= 0, right >= 0 else { return nil }
            let key = MergeTable.key(left, right)
            var slot = MergeTable.slot(key) & mask
            while true {
                let k = keys[slot]
                if k == key { return values[slot] }
                if k == MergeTable.empty { return nil }
                slot = (slot + 1) & mask
            }
        }
    }
}

struct BytePairEncoder: Sendable {
    let merges: MergeTable
    /// Token of each single byte's byte-level character ("Ġ" for 0x20); -1 if the vocabulary lacks it.
    let byteTokens: [TokenID]

    init(vocabulary: Vocabulary, merges mergeList: [String]) throws(TokenizationError) {
        var byteTokens = [TokenID](repeating: -1, count: 256)
        for byte in 0..<256 {
            var text: [UInt8] = []
            ByteLevel.encode([UInt8(byte)], into: &text)
            byteTokens[byte] = vocabulary.id(of: text) ?? -1
        }
        self.byteTokens = byteTokens

        var table = MergeTable(capacityFor: mergeList.count)
        var joined: [UInt8] = []
        for (rank, merge) in mergeList.enumerated() {
            let bytes = Array(merge.utf8)
            // llama.cpp splits at the first space after position 0, so a merge may start with a space byte.
            guard bytes.count >= 3, let split = bytes[1...].firstIndex(of: 0x20) else { continue }
            let left = Array(bytes[..<split]), right = Array(bytes[(split + 1)...])
            joined.removeAll(keepingCapacity: true)
            joined.append(contentsOf: left)
            joined.append(contentsOf: right)
            // A merge whose parts or result are not tokens cannot be expressed on token ids and is
            // skipped. llama.cpp would apply it and then spell the non-token out byte by byte;
            // converted vocabularies list no such merge (all 48,900 of SmolLM2's are token pairs).
            guard let l = vocabulary.id(of: left), let r = vocabulary.id(of: right),
                  let result = vocabulary.id(of: joined) else { continue }
            table.insert(left: l, right: r, rank: Int32(rank), result: result)
        }
        self.merges = table
    }

    /// Scratch reused across the words of one encode call: for a word of n bytes, `links` holds the
    /// symbols' token ids, previous and next indices ([3, n], row-major), `heap` up to 3n pair entries
    /// (n - 1 initial pairs plus at most 2 per merge).
    struct Scratch {
        var links: [Int32] = []
        var heap: [UInt64] = []
    }

    /// Appends the tokens of one word (raw bytes) to `output`.
    func encode(word: UnsafeBufferPointer<UInt8>, scratch: inout Scratch, into output: inout [TokenID]) {
        let count = word.count
        if count == 0 { return }
        if count == 1 {
            let id = byteTokens[Int(word[0])]
            if id >= 0 { output.append(id) }
            return
        }
        if scratch.links.count < 3 * count { scratch.links = [Int32](repeating: 0, count: 3 * count) }
        if scratch.heap.count < 3 * count { scratch.heap = [UInt64](repeating: 0, count: 3 * count) }
        merges.withView { table in
            byteTokens.withUnsafeBufferPointer { byteTokens in
                scratch.links.withUnsafeMutableBufferPointer { links in
                    scratch.heap.withUnsafeMutableBufferPointer { heapStorage in
                        let symbols = links.baseAddress!
                        let previous = symbols + count
                        let next = previous + count
                        var heap = MinHeap(storage: heapStorage.baseAddress!)
                        for i in 0..<count {
                            symbols[i] = byteTokens[Int(word[i])]
                            previous[i] = Int32(i - 1)
                            next[i] = Int32(i + 1)
                        }
                        next[count - 1] = -1

                        @inline(__always) func pushPair(at left: Int) {
                            let right = Int(next[left])
                            guard right >= 0, let found = table.find(symbols[left], symbols[right]) else { return }
                            heap.push((found & 0xFFFF_FFFF_0000_0000) | UInt64(left))
                        }

                        for i in 0..<(count - 1) { pushPair(at: i) }
                        while let top = heap.pop() {
                            let rank = top >> 32
                            let left = Int(UInt32(truncatingIfNeeded: top))
                            let right = Int(next[left])
                            // Stale if the left symbol was absorbed (-2), is now last, or the pair changed.
                            guard symbols[left] != -2, right >= 0,
                                  let found = table.find(symbols[left], symbols[right]), found >> 32 == rank else { continue }
                            symbols[left] = TokenID(truncatingIfNeeded: UInt32(truncatingIfNeeded: found))
                            symbols[right] = -2
                            let after = next[right]
                            next[left] = after
                            if after >= 0 { previous[Int(after)] = Int32(left) }
                            let before = Int(previous[left])
                            if before >= 0 { pushPair(at: before) }
                            if after >= 0 { pushPair(at: left) }
                        }

                        // A negative id left here is a byte without a token (malformed vocabulary): dropped, as llama.cpp does.
                        var i = 0
                        while i >= 0 {
                            let id = symbols[i]
                            if id >= 0 { output.append(id) }
                            i = Int(next[i])
                        }
                    }
                }
            }
        }
    }
}

/// A binary min-heap over UInt64 (rank in the high half, position in the low half) in caller storage.
private struct MinHeap {
    let storage: UnsafeMutablePointer<UInt64>
    var count = 0

    @inline(__always) mutating func push(_ value: UInt64) {
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) >> 1
            if storage[parent] <= value { break }
            storage[child] = storage[parent]
            child = parent
        }
        storage[child] = value
    }

    @inline(__always) mutating func pop() -> UInt64? {
        if count == 0 { return nil }
        count -= 1
        let top = storage[0]
        if count == 0 { return top }
        let last = storage[count]
        var parent = 0
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && storage[child + 1] < storage[child] { child += 1 }
            if last <= storage[child] { break }
            storage[parent] = storage[child]
            parent = child
        }
        storage[parent] = last
        return top
    }
}
