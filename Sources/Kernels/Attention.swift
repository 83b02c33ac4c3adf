// The Swift face of attention over the paged KV store (CKernels/attention.c): the tile type, the per-step
// block tables and scratch it reads, and `attention(...)`, which owns the C call's pointer plumbing and
// runs the tiles on the compute pool.

import CKernels

/// A unit of attention work: tokens `tokens` of one sequence (they share a block table) and query heads
/// `heads` of one KV head's group. Every query's result is the same bits whatever tile it is in.
package typealias AttentionTile = tally_attention_tile

extension AttentionTile {
    /// Most tokens in one tile.
    package static let maxTokens = Int(TALLY_ATTENTION_TILE_TOKENS)

    package init(tokens: Range<Int>, heads: Range<Int>) {
        self.init(token_begin: Int32(tokens.lowerBound), token_count: Int32(tokens.count),
                  head_begin: Int32(heads.lowerBound), head_count: Int32(heads.count))
    }
}

/// How a KV cache holds its values, as the attention kernel reads them (TALLY_KV_* in CKernels.h).
package enum CacheValues: Int32, Sendable {
    case f32 = 0, f16 = 1, q8_0 = 2
}

/// The shape attention reads: heads, head width, the KV store's block size and value type.
package struct AttentionShape: Sendable {
    package var headCount: Int
    package var kvHeadCount: Int
    package var headDim: Int
    package var blockSize: Int
    package var values: CacheValues
    /// Scores are scaled by 1 / sqrt(headDim).
    package var scale: Float { 1 / Float(headDim).squareRoot() }

    package init(headCount: Int, kvHeadCount: Int, headDim: Int, blockSize: Int, values: CacheValues) {
        (self.headCount, self.kvHeadCount, self.headDim) = (headCount, kvHeadCount, headDim)
        (self.blockSize, self.values) = (blockSize, values)
    }
}

/// One step's block tables as the attention kernel reads them: per token, its sequence's table and its
/// context length (position + 1). Built once per step, shared by every layer.
package final class StepBlockTables: @unchecked Sendable {
    private let tables: [UnsafeMutablePointer<Int32>]
    /// [tokens] each token's sequence's block table
    private let perToken: UnsafeMutablePointer<UnsafePointer<Int32>?>
    /// [tokens] each token attends to positions 0..<contextLength
    private let contextLengths: UnsafeMutablePointer<Int32>
    package let tokenCount: Int

    /// `tables[s]` is sequence s's block table; token t belongs to sequence `sequenceIndex[t]` at `positions[t]`.
    package init(tables: [[Int32]], sequenceIndex: [Int], positions: [Int]) {
        self.tables = tables.map { table in
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, table.count))
            p.initialize(from: table, count: table.count)
            return p
        }
        tokenCount = sequenceIndex.count
        perToken = .allocate(capacity: max(1, tokenCount))
        contextLengths = .allocate(capacity: max(1, tokenCount))
        for t in 0..<tokenCount {
            perToken[t] = UnsafePointer(self.tables[sequenceIndex[t]])
            contextLengths[t] = Int32(positions[t] + 1)
        }
    }

    deinit {
        tables.forEach { $0.deallocate() }
        perToken.deallocate()
        contextLengths.deallocate()
    }

    /// Token t's block table.
    package func table(ofToken t: Int) -> UnsafePointer<Int32> { perToken[t]! }

    fileprivate var tablePointers: UnsafePointer<UnsafePointer<Int32>?> { UnsafePointer(perToken) }
    fileprivate var lengths: UnsafePointer<Int32> { UnsafePointer(contextLengths) }
}

/// Per-thread scratch for attention tiles (scores, sums), sized once for the longest context.
/// Pages are touched only as far as contexts reach.
package final class AttentionScratch: @unchecked Sendable {
    private let buffer: UnsafeMutableRawPointer
    /// Floats per thread, rounded up so each thread's part starts on its own cache line.
    private let floatsPerThread: Int
    package let threads: Int

    package init(threads: Int, tileTokens: Int, tileHeads: Int, headDim: Int, blockSize: Int, maxContext: Int) {
        let floats = tally_attention_scratch_floats(Int32(tileTokens), Int32(tileHeads), Int32(headDim), Int32(blockSize), Int32(maxContext))
        floatsPerThread = (floats + 15) / 16 * 16
        self.threads = threads
        buffer = .allocate(byteCount: threads * floatsPerThread * 4, alignment: 64)
    }

    deinit { buffer.deallocate() }

    fileprivate func part(_ thread: Int) -> UnsafeMutablePointer<Float> {
        (buffer + thread * floatsPerThread * 4).assumingMemoryBound(to: Float.self)
    }
}

/// att [tokens, headCount * headDim] = softmax(q·kᵀ · scale) · v for every token and query head, causal
/// through each token's block table, over one layer's keys and values [blocks * blockSize, kvHeadCount * headDim].
/// Thread i of the pool runs tiles `share(i, count)`; the bits do not depend on the cut.
package func attention(queries q: UnsafePointer<Float>, keys: UnsafeRawPointer, values: UnsafeRawPointer,
                       shape: AttentionShape, tables: StepBlockTables, tiles: [AttentionTile],
                       share: (_ thread: Int, _ threads: Int) -> Range<Int>,
                       pool: ComputePool, scratch: AttentionScratch, into out: UnsafeMutablePointer<Float>) {
    precondition(scratch.threads >= pool.threadCount, "attention scratch is sized for fewer threads than the pool has")
    var args = tally_attention_args(
        q: q, k_cache: keys, v_cache: values, block_tables: tables.tablePointers, context_lengths: tables.lengths,
        tokens: Int32(tables.tokenCount), head_count: Int32(shape.headCount), kv_head_count: Int32(shape.kvHeadCount),
        head_dim: Int32(shape.headDim), block_size: Int32(shape.blockSize), kv_type: shape.values.rawValue,
        scale: shape.scale, out: out)
    withUnsafePointer(to: &args) { args in
        tiles.withUnsafeBufferPointer { tiles in
            pool.run { i, count in
                let mine = share(i, count)
                tally_attention(args, tiles.baseAddress, Int32(mine.lowerBound), Int32(mine.upperBound), scratch.part(i))
            }
        }
    }
}
