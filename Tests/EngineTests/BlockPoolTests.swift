// The block pool alone: allocation order, reference counts, the LRU free list, prefix registration.

import Engine
import ModelRuntime
import Testing

@Suite struct BlockPoolTests {
    func hash(_ n: Int32) -> BlockHash { BlockHash(parent: nil, tokens: [n, n, n, n][...]) }

    @Test func allocatesInOrderAndCountsReferences() {
        let pool = BlockPool(blockCount: 4)
        let first: BlockID? = pool.allocate(), second: BlockID? = pool.allocate()
        #expect(first == 0)
        #expect(second == 1)
        #expect(pool.freeCount == 2)
        #expect(pool.usedCount == 2)
        pool.retain(1)
        #expect(pool.refCount(1) == 2)
        pool.release([1])
        #expect(pool.refCount(1) == 1)
        #expect(pool.freeList == [2, 3])
        pool.release([1, 0])
        #expect(pool.freeList == [2, 3, 1, 0])
        var order: [BlockID] = []
        while let b = pool.allocate() { order.append(b) }
        #expect(order == [2, 3, 1, 0])
    }

    @Test func freeCachedBlocksAreFoundThenEvictedLeastRecentlyFreedFirst() {
        let pool = BlockPool(blockCount: 3)
        let a = pool.allocate()!, b = pool.allocate()!, c = pool.allocate()!
        pool.register(a, hash: hash(1), parent: nil, tokens: [1, 1, 1, 1][...])
        pool.register(b, hash: hash(2), parent: nil, tokens: [2, 2, 2, 2][...])
        pool.register(c, hash: hash(3), parent: nil, tokens: [3, 3, 3, 3][...])
        pool.release([c, b, a])          // freed c first: c is least recently freed
        #expect(pool.freeList == [c, b, a])
        #expect(pool.cachedBlock(hash(2)) == b)
        // A prefix hit on b takes it off the free list without forgetting it.
        pool.retain(b)
        #expect(pool.freeList == [c, a])
        #expect(pool.refCount(b) == 1)
        #expect(pool.cachedBlock(hash(2)) == b)
        // Allocation evicts c (least recently freed) and forgets its prefix.
        #expect(pool.allocate() == c)
        #expect(pool.cachedBlock(hash(3)) == nil)
        #expect(pool.hash(of: c) == nil)
        #expect(pool.cachedBlock(hash(1)) == a)
    }

    @Test func aHashKeepsItsFirstBlock() {
        let pool = BlockPool(blockCount: 2)
        let a = pool.allocate()!, b = pool.allocate()!
        pool.register(a, hash: hash(7), parent: nil, tokens: [7, 7, 7, 7][...])
        pool.register(b, hash: hash(7), parent: nil, tokens: [7, 7, 7, 7][...])
        #expect(pool.cachedBlock(hash(7)) == a)
        #expect(pool.hash(of: b) == nil)
    }

    @Test func aPartialMatchIsTheLongestRunAfterTheSamePrefixAndForgetsEvictedBlocks() {
        let pool = BlockPool(blockCount: 4)
        let root = BlockHash(parent: nil, tokens: [1, 2, 3, 4][...])
        let a = pool.allocate()!, b = pool.allocate()!, c = pool.allocate()!
        pool.register(a, hash: BlockHash(parent: root, tokens: [5, 6, 7, 8][...]), parent: root, tokens: [5, 6, 7, 8][...])
        pool.register(b, hash: BlockHash(parent: root, tokens: [5, 6, 9, 9][...]), parent: root, tokens: [5, 6, 9, 9][...])
        // The same tokens after another prefix must not match.
        pool.register(c, hash: BlockHash(parent: nil, tokens: [5, 6, 7, 0][...]), parent: nil, tokens: [5, 6, 7, 0][...])
        #expect(pool.longestPartialMatch(parent: root, tokens: [5, 6, 7, 1][...])! == (a, 3))
        #expect(pool.longestPartialMatch(parent: root, tokens: [5, 6, 9][...])! == (b, 3))
        #expect(pool.longestPartialMatch(parent: root, tokens: [5, 0][...])! == (a, 1), "a tie goes to the older block")
        #expect(pool.longestPartialMatch(parent: root, tokens: [7, 6, 7][...]) == nil, "no common first token")
        #expect(pool.longestPartialMatch(parent: nil, tokens: [5, 6, 7, 8][...])! == (c, 3))
        // Once a is evicted (freed, then handed out again), only b remains after root.
        pool.release([a])
        #expect(pool.allocate() == 3)
        #expect(pool.allocate() == a)
        #expect(pool.longestPartialMatch(parent: root, tokens: [5, 6, 7, 1][...])! == (b, 2))
    }

    @Test func chainedHashesDependOnTheWholePrefix() {
        let x = BlockHash.chain([1, 2, 3, 4, 5, 6, 7, 8, 9], blockSize: 4)
        let y = BlockHash.chain([0, 2, 3, 4, 5, 6, 7, 8], blockSize: 4)
        #expect(x.count == 2)
        #expect(y.count == 2)
        #expect(x[1] != y[1], "same second block, different first block: different hash")
        #expect(BlockHash.chain([1, 2, 3, 4, 5, 6, 7, 8], blockSize: 4) == x)
    }
}
