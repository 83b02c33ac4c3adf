// The KV block pool: reference counts, and a free list in least-recently-freed order whose blocks may
// still hold a cached prefix (their hash stays registered until the block is handed out again).
// A prefix hit on a free cached block takes it off the free list; allocation takes the head of the
// list and evicts whatever prefix it held. That makes eviction LRU over free cached blocks.
// A cached block also keeps its tokens and its parent's hash, so a prompt that shares only part of a
// block with a cached one can still reuse those positions (longestPartialMatch).

import GGUF
import ModelRuntime

package final class BlockPool {
    package let blockCount: Int
    private var refCounts: [Int]
    // Doubly linked free list over block ids; -1 ends it.
    private var next: [Int32]
    private var prev: [Int32]
    private var head: Int32 = -1
    private var tail: Int32 = -1
    private var isFree: [Bool]
    package private(set) var freeCount = 0
    /// Hash of the full block a block holds, and the block that holds each hash.
    private var hashOfBlock: [BlockHash?]
    private var blockOfHash: [BlockHash: BlockID] = [:]
    /// A cached block's tokens and the hash of the prefix before it (nil: the first block of a sequence),
    /// and the cached blocks that follow each prefix.
    private var contentOfBlock: [(parent: BlockHash?, tokens: [TokenID])?]
    private var blocksAfter: [BlockHash?: [BlockID]] = [:]

    package init(blockCount: Int) {
        self.blockCount = blockCount
        refCounts = Array(repeating: 0, count: blockCount)
        next = Array(repeating: -1, count: blockCount)
        prev = Array(repeating: -1, count: blockCount)
        isFree = Array(repeating: false, count: blockCount)
        hashOfBlock = Array(repeating: nil, count: blockCount)
        contentOfBlock = Array(repeating: nil, count: blockCount)
        for b in 0..<blockCount { pushBack(Int32(b)) }
    }

    package var usedCount: Int { blockCount - freeCount }
    package func refCount(_ block: BlockID) -> Int { refCounts[Int(block)] }
    package func hash(of block: BlockID) -> BlockHash? { hashOfBlock[Int(block)] }
    /// Free blocks from least to most recently freed (the order allocation takes them).
    package var freeList: [BlockID] {
        var out: [BlockID] = []
        var b = head
        while b >= 0 { out.append(b); b = next[Int(b)] }
        return out
    }

    /// Takes the least recently freed block; a prefix it held is forgotten. Nil when none is free.
    package func allocate() -> BlockID? {
        guard head >= 0 else { return nil }
        let b = head
        unlink(b)
        forget(b)
        refCounts[Int(b)] = 1
        return b
    }

    /// Free blocks that hold no cached prefix: their KV is worth nothing (idle memory release).
    package var freeUncachedBlocks: [BlockID] { freeList.filter { hashOfBlock[Int($0)] == nil } }

    /// Free blocks that hold a cached prefix.
    package var freeCachedCount: Int { freeList.count { hashOfBlock[Int($0)] != nil } }

    /// Forgets the prefixes of the least recently freed cached blocks until at most `limit` free blocks hold
    /// one; the blocks stay free. Returns how many were forgotten.
    @discardableResult
    package func trimFreeCached(to limit: Int) -> Int {
        var excess = freeCachedCount - max(0, limit), forgotten = 0
        var b = head
        while b >= 0 && excess > 0 {
            if hashOfBlock[Int(b)] != nil {
                forget(b)
                excess -= 1
                forgotten += 1
            }
            b = next[Int(b)]
        }
        return forgotten
    }

    /// Drops whatever prefix block `b` held from the cache's maps.
    private func forget(_ b: Int32) {
        if let h = hashOfBlock[Int(b)] {
            blockOfHash[h] = nil
            hashOfBlock[Int(b)] = nil
        }
        if let content = contentOfBlock[Int(b)] {
            blocksAfter[content.parent]?.removeAll { $0 == b }
            if blocksAfter[content.parent]?.isEmpty == true { blocksAfter[content.parent] = nil }
            contentOfBlock[Int(b)] = nil
        }
    }

    /// The block holding this prefix hash, if any (free or in use).
    package func cachedBlock(_ hash: BlockHash) -> BlockID? { blockOfHash[hash] }

    /// One more user of a block (a prefix hit); a free block leaves the free list.
    package func retain(_ block: BlockID) {
        if isFree[Int(block)] { unlink(block) }
        refCounts[Int(block)] += 1
    }

    /// Drops one user of each block, in the order given; blocks that reach zero join the free list's
    /// tail in that order (callers pass a sequence's blocks last-first, so its shared prefix is evicted last).
    package func release(_ blocks: [BlockID]) {
        for b in blocks {
            refCounts[Int(b)] -= 1
            if refCounts[Int(b)] == 0 { pushBack(b) }
        }
    }

    /// Records that `block` now holds the full block with `hash`: `tokens` after the prefix whose hash is
    /// `parent`. If another block already holds it, the existing mapping is kept (both hold the same
    /// values; the older one is the one found). Returns whether the block is new in the cache (false: that
    /// content or that block was there already).
    @discardableResult
    package func register(_ block: BlockID, hash: BlockHash, parent: BlockHash?, tokens: ArraySlice<TokenID>) -> Bool {
        guard blockOfHash[hash] == nil, hashOfBlock[Int(block)] == nil else { return false }
        blockOfHash[hash] = block
        hashOfBlock[Int(block)] = hash
        contentOfBlock[Int(block)] = (parent, Array(tokens))
        blocksAfter[parent, default: []].append(block)
        return true
    }

    /// The cached block after the prefix `parent` whose tokens start with the longest run of `tokens`
    /// (at least one), and that run's length; the oldest such block on a tie. Its first `count` positions
    /// hold the keys and values those tokens would get after that prefix.
    package func longestPartialMatch(parent: BlockHash?, tokens: ArraySlice<TokenID>) -> (block: BlockID, count: Int)? {
        var best: (block: BlockID, count: Int)? = nil
        for b in blocksAfter[parent] ?? [] {
            guard let cached = contentOfBlock[Int(b)]?.tokens else { continue }
            var n = 0
            for (x, y) in zip(cached, tokens) {
                if x != y { break }
                n += 1
            }
            if n > (best?.count ?? 0) { best = (b, n) }
        }
        return best
    }

    private func pushBack(_ b: Int32) {
        isFree[Int(b)] = true
        freeCount += 1
        prev[Int(b)] = tail
        next[Int(b)] = -1
        if tail >= 0 { next[Int(tail)] = b } else { head = b }
        tail = b
    }

    private func unlink(_ b: Int32) {
        isFree[Int(b)] = false
        freeCount -= 1
        let p = prev[Int(b)], n = next[Int(b)]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { prev[Int(n)] = p } else { tail = p }
        prev[Int(b)] = -1
        next[Int(b)] = -1
    }
}
