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

    /// `packing` defaults to a heap copy in the packed layout when the VNNI kernels run.
    package init(file: GGUFFile, pool: ComputePool, packing: WeightPacking? = nil) throws {
        self.file = file
        self.pool = pool
        config = try ModelConfig(metadata: file.metadata, vocabRows: file.tensor(named: TensorName.tokenEmbedding)?.dimensions.last)
        weights = try ModelWeights(file: file, config: config, packing: packing ?? (Self.packs ? .inMemory : .unpacked))
    }

    /// Loads the model at `path`. With the VNNI kernels its packed matrices are mapped from the packed
    /// file beside it (WeightPacking.filePath), written on the first load.
    package convenience init(path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount, packing: WeightPacking? = nil) throws {
        let packing = packing ?? (Self.packs ? .file(WeightPacking.filePath(forModel: path)) : .unpacked)
        // Pre-fault the GGUF's pages only when its matrices are read in place: with a packed file, most of
        // them are never touched and both copies would be resident at once.
        var populate = true
        if case .file = packing { populate = false }
        let file: GGUFFile
        do { file = try GGUFFile(path: path, populate: populate) } catch { throw RuntimeError.model(error) }
        try self.init(file: file, pool: ComputePool(threads: threads), packing: packing)
    }

    /// Whether the packed layout pays: the VNNI kernels read it.
    package static var packs: Bool { KernelISA.current == .avx512VNNI }

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

        // cos/sin of every token's position, once per step (the same for every layer)
        let rd = c.ropeDimensionCount
        for t in 0..<n { tally_rope_table(Int32(batch.positions[t]), Int32(rd), c.ropeFreqBase, w.rope + t * rd) }
        let kvRows = (0..<n).map { kv.row(table: tokenTables[$0]!, position: batch.positions[$0]) }
        let plan = AttentionPlan(batch: batch, config: c, threads: pool.threadCount)
        w.prepareScores(config: c, blockSize: kv.blockSize, threads: pool.threadCount)

        for (l, layer) in weights.layers.enumerated() {
            // h = rmsnorm(x) * attn_norm, quantized                       [n, e]
            prepareInput(w.x, norm: layer.attentionNorm, rows: n, width: e, w: w)
            // q [n, queryWidth], k and v [n, kvWidth] in one dispatch; each thread then applies RoPE to
            // its own rows of q and k and stores its rows of k and v into the KV store (no serial step).
            let keys = kv.keys[l], values = kv.values[l]
            matmul([(layer.query, w.q), (layer.key, w.k), (layer.value, w.v)], input: w.h, rows: n, w: w) { i, count in
                let qs = self.share(layer.query, i, count), ks = self.share(layer.key, i, count), vs = self.share(layer.value, i, count)
                for t in 0..<n {
                    let cs = w.rope + t * rd
                    tally_rope_apply(w.q + t * c.queryWidth, Int32(qs.lowerBound), Int32(qs.upperBound), Int32(c.headDim), Int32(rd), cs)
                    kv.roundQueries(w.q + t * c.queryWidth + qs.lowerBound, count: qs.count)
                    tally_rope_apply(w.k + t * c.kvWidth, Int32(ks.lowerBound), Int32(ks.upperBound), Int32(c.headDim), Int32(rd), cs)
                    kv.store(w.k + t * c.kvWidth + ks.lowerBound, into: keys, row: kvRows[t], offset: ks.lowerBound, count: ks.count)
                    kv.store(w.v + t * c.kvWidth + vs.lowerBound, into: values, row: kvRows[t], offset: vs.lowerBound, count: vs.count)
                }
            }
            // att [n, queryWidth] = softmax(q·kᵀ / sqrt(headDim)) · v, causal, per head (GQA), in tiles
            tokenTables.withUnsafeBufferPointer { tablesPointer in
                contextLengths.withUnsafeBufferPointer { lengths in
                    var args = tally_attention_args(
                        q: w.q, k_cache: keys, v_cache: values,
                        block_tables: tablesPointer.baseAddress, context_lengths: lengths.baseAddress,
                        tokens: Int32(n), head_count: Int32(c.headCount), kv_head_count: Int32(c.kvHeadCount),
                        head_dim: Int32(c.headDim), block_size: Int32(kv.blockSize), kv_f16: kv.type == .f16 ? 1 : 0,
                        scale: 1 / Float(c.headDim).squareRoot(), out: w.attention)
                    withUnsafePointer(to: &args) { args in
                        plan.tiles.withUnsafeBufferPointer { tiles in
                            pool.run { i, count in
                                let share = plan.share(thread: i, of: count)
                                tally_attention(args, tiles.baseAddress, Int32(share.lowerBound), Int32(share.upperBound), w.scores + i * w.scoresPerThread)
                            }
                        }
                    }
                }
            }
            // x += Wo · att                                                [n, e]  (each thread adds its rows)
            prepareInput(w.attention, norm: nil, rows: n, width: c.queryWidth, w: w)
            matmul([(layer.output, w.h)], input: w.attention, rows: n, w: w) { i, count in
                self.addRows(w.h, into: w.x, share: self.share(layer.output, i, count), tokens: n, width: e)
            }
            // h = rmsnorm(x) * ffn_norm; x += Wdown · (silu(Wgate·h) * Wup·h)
            prepareInput(w.x, norm: layer.feedForwardNorm, rows: n, width: e, w: w)
            let ff = c.feedForwardLength
            matmul([(layer.gate, w.gate), (layer.up, w.up)], input: w.h, rows: n, w: w) { i, count in
                // gate and up have the same rows, so the same share: this thread's SwiGLU needs only its own outputs
                let s = self.share(layer.gate, i, count)
                for t in 0..<n { tally_swiglu(w.gate + t * ff + s.lowerBound, w.up + t * ff + s.lowerBound, w.gate + t * ff + s.lowerBound, Int32(s.count)) }
            }
            prepareInput(w.gate, norm: nil, rows: n, width: ff, w: w)
            matmul([(layer.down, w.h)], input: w.gate, rows: n, w: w) { i, count in
                self.addRows(w.h, into: w.x, share: self.share(layer.down, i, count), tokens: n, width: e)
            }
        }

        // logits [r, vocab] = Wout · rmsnorm(x) for the rows that need them
        let r = batch.logitRows.count
        guard r > 0 else { return [] }
        for (i, t) in batch.logitRows.enumerated() {
            (w.x2 + i * e).update(from: w.x + t * e, count: e)
        }
        prepareInput(w.x2, norm: weights.outputNorm, rows: r, width: e, w: w)
        matmul([(weights.output, w.logits)], input: w.h, rows: r, w: w)
        return Array(UnsafeBufferPointer(start: w.logits, count: r * c.vocabSize))
    }

    // MARK: Steps

    /// Rows of `m` that thread i of count computes (multiples of 16 for packed weights, else of 4).
    private func share(_ m: WeightMatrix, _ i: Int, _ count: Int) -> Range<Int> {
        ComputePool.share(of: m.rows, thread: i, of: count, granule: m.packed ? 16 : 4)
    }

    /// The input of the next products: optionally h = rmsnorm(x) * norm (into w.h), then (for Q8_0 weights,
    /// which every model here has) its int8 quantization and block sums. Tokens are split between threads
    /// when there are several; each token's result does not depend on the split.
    private func prepareInput(_ x: UnsafeMutablePointer<Float>, norm: [Float]?, rows: Int, width: Int, w: Workspace) {
        let eps = config.rmsNormEpsilon
        let body = { (range: Range<Int>) in
            guard !range.isEmpty else { return }
            let input: UnsafeMutablePointer<Float>
            if let norm {
                for t in range { tally_rmsnorm(x + t * width, norm, w.h + t * width, Int32(width), eps) }
                input = w.h
            } else {
                input = x
            }
            let b = range.lowerBound
            guard width % 32 == 0 else { return }  // F32/F16 weights read `input` as it is
            tally_quantize_rows_q8(input + b * width, Int32(range.count), Int32(width), w.xd + b * width / 32, w.xq + b * width)
            tally_q8_block_sums(w.xq + b * width, Int32(range.count), Int32(width), w.xs + b * width / 4)
        }
        if rows < 2 * pool.threadCount {
            body(0..<rows)
        } else {
            pool.run { i, count in body(ComputePool.share(of: rows, thread: i, of: count, granule: 1)) }
        }
    }

    /// x[t, share] += a[t, share] for every token t: a thread's part of a residual connection.
    private func addRows(_ a: UnsafeMutablePointer<Float>, into x: UnsafeMutablePointer<Float>, share: Range<Int>, tokens: Int, width: Int) {
        for t in 0..<tokens {
            for j in share { x[t * width + j] += a[t * width + j] }
        }
    }

    /// out_m [rows, W_m.rows] = input [rows, W_m.columns] · W_mᵀ for every (W_m, out_m), in one pool
    /// dispatch: each thread takes its share of every matrix's rows, then runs `epilogue(i, count)`, which
    /// may touch only that thread's rows of the outputs. The input was prepared by prepareInput (Q8_0) or is
    /// `input` itself (F32/F16). All W_m have the same columns.
    private func matmul(_ products: [(WeightMatrix, UnsafeMutablePointer<Float>)], input: UnsafeMutablePointer<Float>, rows: Int, w: Workspace,
                        epilogue: ((Int, Int) -> Void)? = nil) {
        let k = products[0].0.columns
        pool.run { i, count in
            for (m, out) in products {
                let share = self.share(m, i, count)
                guard !share.isEmpty else { continue }
                switch m.type {
                case .q8_0 where m.packed:
                    tally_gemm_q8p(m.data, Int32(k), Int32(share.lowerBound), Int32(share.upperBound), w.xd, w.xq, w.xs, Int32(rows), out, Int32(m.rows))
                case .q8_0:
                    tally_gemm_q8(m.data, Int32(k), Int32(share.lowerBound), Int32(share.upperBound), w.xd, w.xq, Int32(rows), out, Int32(m.rows))
                default:
                    tally_gemm_f32(m.data, m.type == .f16 ? 1 : 0, Int32(k), Int32(share.lowerBound), Int32(share.upperBound), input, Int32(rows), out, Int32(m.rows))
                }
            }
            epilogue?(i, count)
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
    var xs: UnsafeMutablePointer<Int32>!         // [n, widest / 4] activation sums per 4 (packed weights)
    var logits: UnsafeMutablePointer<Float>!     // [logitRows, vocabSize]
    var x2: UnsafeMutablePointer<Float>!         // [logitRows, embeddingLength] residual rows that need logits
    var rope: UnsafeMutablePointer<Float>!       // [n, ropeDimensionCount] cos/sin pairs per token
    var scores: UnsafeMutablePointer<Float>!     // [threads, scoresPerThread] attention scratch
    var scoresPerThread = 0
    private var scoresBuffer: UnsafeMutableRawPointer?

    deinit {
        buffers.forEach { $0.deallocate() }
        scoresBuffer?.deallocate()
    }

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
        let rawS = UnsafeMutableRawPointer.allocate(byteCount: cap * widest / 4 * 4, alignment: 64)
        buffers.append(rawS)
        xs = rawS.bindMemory(to: Int32.self, capacity: cap * widest / 4)
        logits = floats(logitCapacity * c.vocabSize)
        x2 = floats(logitCapacity * c.embeddingLength)
        rope = floats(cap * c.ropeDimensionCount)
        return self
    }

    /// Attention scratch for the largest tile (AttentionPlan) over the whole context, once. Pages are
    /// touched only as far as contexts reach.
    func prepareScores(config c: ModelConfig, blockSize: Int, threads: Int) {
        guard scores == nil else { return }
        scoresPerThread = tally_attention_scratch_floats(Int32(AttentionPlan.tileTokens), Int32(c.headCount / c.kvHeadCount),
                                                         Int32(c.headDim), Int32(blockSize), Int32(c.contextLength))
        scoresPerThread = (scoresPerThread + 15) / 16 * 16  // each thread's part on its own cache lines
        let p = UnsafeMutableRawPointer.allocate(byteCount: threads * scoresPerThread * 4, alignment: 64)
        scoresBuffer = p
        scores = p.bindMemory(to: Float.self, capacity: threads * scoresPerThread)
    }
}
