// The Llama forward pass over one flat batch (see ForwardBatch), reading and writing the paged KV store.
// Top to bottom, per layer:  x += Wo · attention(rope(Wq·h), rope(Wk·h), Wv·h)  with h = rmsnorm(x)
//                            x += Wdown · (silu(Wgate·h) * Wup·h)               with h = rmsnorm(x)
// then logits = Wout · rmsnorm(x) for the rows that need them. Matrix products run on the compute pool;
// a Q8_0 weight takes int8-quantized activations, an F32/F16 weight takes f32 ones.

import CKernels
import Foundation
import GGUF
import Kernels

package final class LlamaModel: @unchecked Sendable {
    package let config: ModelConfig
    package let weights: ModelWeights
    package let pool: ComputePool
    /// Keeps the mapping alive while weights point into it.
    package let file: GGUFFile
    private var workspace = Workspace()

    package init(file: GGUFFile, pool: ComputePool) throws {
        self.file = file
        self.pool = pool
        config = try ModelConfig(metadata: file.metadata, vocabRows: file.tensor(named: TensorName.tokenEmbedding)?.dimensions.last)
        weights = try ModelWeights(file: file, config: config)
    }

    package convenience init(path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: path, populate: true) } catch let e as GGUFError { throw RuntimeError.model(e) }
        try self.init(file: file, pool: ComputePool(threads: threads))
    }

    /// Runs one step. Returns logits [batch.logitRows.count, vocabSize], row-major.
    package func forward(_ batch: ForwardBatch, kv: KVStore) throws -> [Float] {
        let c = config, n = batch.tokenCount
        guard n > 0 else { return [] }
        for p in batch.positions where p >= c.contextLength {
            throw RuntimeError.contextExceeded(position: p, contextLength: c.contextLength)
        }
        let w = workspace.prepare(config: c, tokens: n, logitRows: batch.logitRows.count, threads: pool.threadCount)
        let e = c.embeddingLength

        // x [n, e] = embedding rows of the tokens
        for t in 0..<n {
            weights.tokenEmbedding.row(Int(batch.tokens[t]), into: UnsafeMutableBufferPointer(start: w.x + t * e, count: e))
        }
        // Block tables as C pointers, one per token, and each token's context length (position + 1).
        let tables = batch.blockTables.map { table -> UnsafeMutablePointer<Int32> in
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, table.count))
            p.initialize(from: table, count: table.count)
            return p
        }
        defer { tables.forEach { $0.deallocate() } }
        let tokenTables: [UnsafePointer<Int32>?] = batch.sequenceIndex.map { UnsafePointer(tables[$0]) }
        let contextLengths = batch.positions.map { Int32($0 + 1) }

        for (l, layer) in weights.layers.enumerated() {
            // h = rmsnorm(x) * attn_norm                                   [n, e]
            rmsnorm(w.x, layer.attentionNorm, into: w.h, rows: n, width: e)
            // q [n, queryWidth], k and v [n, kvWidth]                      one dispatch for the three
            matmul([(layer.query, w.q), (layer.key, w.k), (layer.value, w.v)], input: w.h, rows: n, w: w)
            // RoPE on q and k at each token's position, then k and v into the KV store
            for t in 0..<n {
                tally_rope(w.q + t * c.queryWidth, Int32(c.headCount), Int32(c.headDim), Int32(c.ropeDimensionCount), Int32(batch.positions[t]), c.ropeFreqBase)
                tally_rope(w.k + t * c.kvWidth, Int32(c.kvHeadCount), Int32(c.headDim), Int32(c.ropeDimensionCount), Int32(batch.positions[t]), c.ropeFreqBase)
                let row = kv.row(table: tokenTables[t]!, position: batch.positions[t])
                (kv.keys[l] + row * c.kvWidth).update(from: w.k + t * c.kvWidth, count: c.kvWidth)
                (kv.values[l] + row * c.kvWidth).update(from: w.v + t * c.kvWidth, count: c.kvWidth)
            }
            // att [n, queryWidth] = softmax(q·kᵀ / sqrt(headDim)) · v, causal, per head (GQA)
            tokenTables.withUnsafeBufferPointer { tablesPointer in
                contextLengths.withUnsafeBufferPointer { lengths in
                    var args = tally_attention_args(
                        q: w.q, k_cache: kv.keys[l], v_cache: kv.values[l],
                        block_tables: tablesPointer.baseAddress, context_lengths: lengths.baseAddress,
                        tokens: Int32(n), head_count: Int32(c.headCount), kv_head_count: Int32(c.kvHeadCount),
                        head_dim: Int32(c.headDim), block_size: Int32(kv.blockSize),
                        scale: 1 / Float(c.headDim).squareRoot(), out: w.attention)
                    let items = n * c.headCount
                    withUnsafePointer(to: &args) { args in
                        pool.run { i, count in
                            let share = ComputePool.share(of: items, thread: i, of: count, granule: 1)
                            tally_attention(args, Int32(share.lowerBound), Int32(share.upperBound), w.scores + i * w.scoresPerThread)
                        }
                    }
                }
            }
            // x += Wo · att                                                [n, e]
            matmul([(layer.output, w.h)], input: w.attention, rows: n, w: w)
            add(w.h, into: w.x, count: n * e)
            // h = rmsnorm(x) * ffn_norm; x += Wdown · (silu(Wgate·h) * Wup·h)
            rmsnorm(w.x, layer.feedForwardNorm, into: w.h, rows: n, width: e)
            matmul([(layer.gate, w.gate), (layer.up, w.up)], input: w.h, rows: n, w: w)
            tally_swiglu(w.gate, w.up, w.gate, Int32(n * c.feedForwardLength))
            matmul([(layer.down, w.h)], input: w.gate, rows: n, w: w)
            add(w.h, into: w.x, count: n * e)
        }

        // logits [r, vocab] = Wout · rmsnorm(x) for the rows that need them
        let r = batch.logitRows.count
        guard r > 0 else { return [] }
        for (i, t) in batch.logitRows.enumerated() {
            tally_rmsnorm(w.x + t * e, weights.outputNorm, w.h + i * e, Int32(e), c.rmsNormEpsilon)
        }
        matmul([(weights.output, w.logits)], input: w.h, rows: r, w: w)
        return Array(UnsafeBufferPointer(start: w.logits, count: r * c.vocabSize))
    }

    // MARK: Steps

    private func rmsnorm(_ x: UnsafeMutablePointer<Float>, _ weight: [Float], into y: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        for t in 0..<rows { tally_rmsnorm(x + t * width, weight, y + t * width, Int32(width), config.rmsNormEpsilon) }
    }

    private func add(_ a: UnsafeMutablePointer<Float>, into x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += a[i] }
    }

    /// out_m [rows, W_m.rows] = input [rows, W_m.columns] · W_mᵀ for every (W_m, out_m), in one pool
    /// dispatch: each thread takes its share of every matrix's rows. All W_m have the same columns.
    private func matmul(_ products: [(WeightMatrix, UnsafeMutablePointer<Float>)], input: UnsafeMutablePointer<Float>, rows: Int, w: Workspace) {
        let k = products[0].0.columns
        if products.contains(where: { $0.0.type == .q8_0 }) {
            tally_quantize_rows_q8(input, Int32(rows), Int32(k), w.xd, w.xq)
        }
        pool.run { i, count in
            for (m, out) in products {
                let share = ComputePool.share(of: m.rows, thread: i, of: count)
                guard !share.isEmpty else { continue }
                switch m.type {
                case .q8_0:
                    tally_gemm_q8(m.data, Int32(k), Int32(share.lowerBound), Int32(share.upperBound), w.xd, w.xq, Int32(rows), out, Int32(m.rows))
                default:
                    tally_gemm_f32(m.data, m.type == .f16 ? 1 : 0, Int32(k), Int32(share.lowerBound), Int32(share.upperBound), input, Int32(rows), out, Int32(m.rows))
                }
            }
        }
    }
}

/// Activation buffers of a step, grown to the largest batch seen and then reused (no allocation per step).
final class Workspace: @unchecked Sendable {
    private(set) var tokenCapacity = 0
    private(set) var logitCapacity = 0
    private var buffers: [UnsafeMutableRawPointer] = []
    var x: UnsafeMutablePointer<Float>!          // [n, embeddingLength] the residual stream
    var h: UnsafeMutablePointer<Float>!          // [n, max(embeddingLength, ...)] normed input / product out
    var q: UnsafeMutablePointer<Float>!          // [n, queryWidth]
    var k: UnsafeMutablePointer<Float>!          // [n, kvWidth]
    var v: UnsafeMutablePointer<Float>!          // [n, kvWidth]
    var attention: UnsafeMutablePointer<Float>!  // [n, queryWidth]
    var gate: UnsafeMutablePointer<Float>!       // [n, feedForwardLength]
    var up: UnsafeMutablePointer<Float>!         // [n, feedForwardLength]
    var xd: UnsafeMutablePointer<Float>!         // [n, widest / 32] activation scales
    var xq: UnsafeMutablePointer<Int8>!          // [n, widest] activation quants
    var logits: UnsafeMutablePointer<Float>!     // [logitRows, vocabSize]
    var scores: UnsafeMutablePointer<Float>!     // [threads, contextLength] attention scratch
    var scoresPerThread = 0

    deinit { buffers.forEach { $0.deallocate() } }

    func prepare(config c: ModelConfig, tokens n: Int, logitRows r: Int, threads: Int) -> Workspace {
        guard n > tokenCapacity || r > logitCapacity else { return self }
        buffers.forEach { $0.deallocate() }
        buffers = []
        tokenCapacity = max(n, tokenCapacity)
        logitCapacity = max(r, logitCapacity, 1)
        let widest = max(c.embeddingLength, c.queryWidth, c.feedForwardLength)
        func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
            buffers.append(p)
            return p.bindMemory(to: Float.self, capacity: count)
        }
        let cap = tokenCapacity
        x = floats(cap * c.embeddingLength)
        h = floats(cap * widest)
        q = floats(cap * c.queryWidth)
        k = floats(cap * c.kvWidth)
        v = floats(cap * c.kvWidth)
        attention = floats(cap * c.queryWidth)
        gate = floats(cap * c.feedForwardLength)
        up = floats(cap * c.feedForwardLength)
        xd = floats(cap * widest / 32)
        let rawQ = UnsafeMutableRawPointer.allocate(byteCount: cap * widest, alignment: 64)
        buffers.append(rawQ)
        xq = rawQ.bindMemory(to: Int8.self, capacity: cap * widest)
        logits = floats(logitCapacity * c.vocabSize)
        scoresPerThread = c.contextLength
        scores = floats(threads * c.contextLength)
        return self
    }
}
