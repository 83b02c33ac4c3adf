// The Llama forward pass over one flat batch (see ForwardBatch), reading and writing the paged KV store.
// Top to bottom, per layer:  x += Wo · attention(rope(Wq·h), rope(Wk·h), Wv·h)  with h = rmsnorm(x)
//                            x += Wdown · (silu(Wgate·h) * Wup·h)               with h = rmsnorm(x)
// then logits = Wout · rmsnorm(x) for the rows that need them. Matrix products run on the compute pool;
// a Q8_0 weight takes int8-quantized activations, an F32/F16 weight takes f32 ones.

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
        readsPackedWeights = ([weights.output] + weights.layers.flatMap { [$0.query, $0.key, $0.value, $0.output, $0.gate, $0.up, $0.down] })
            .contains { $0.packed }
    }

    /// Whether any product reads packed weights (and so the activations' block sums).
    private let readsPackedWeights: Bool

    /// Loads the model at `path`. With the VNNI kernels its packed matrices are mapped from the packed
    /// file beside it (WeightPacking.filePath), written on the first load; `verify` checks all of that
    /// file's checksums rather than a sample.
    package convenience init(path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount, packing: WeightPacking? = nil,
                             verify: Bool = false) throws {
        let packing = packing ?? (Self.packs ? .file(WeightPacking.filePath(forModel: path), fullCheck: verify) : .unpacked)
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
        try forwardStep(batch, kv: kv).logits
    }

    /// Runs one step. Returns logits [batch.logitRows.count, vocabSize] and hidden states
    /// [batch.hiddenRows.count, embeddingLength] (rmsnorm(x) * output_norm), both row-major.
    package func forwardStep(_ batch: ForwardBatch, kv: KVStore) throws -> (logits: [Float], hidden: [Float]) {
        let c = config, n = batch.tokenCount
        guard n > 0 else { return ([], []) }
        for p in batch.positions where p >= c.contextLength {
            throw RuntimeError.contextExceeded(position: p, contextLength: c.contextLength)
        }
        let w = workspace.prepare(config: c, tokens: n, logitRows: batch.logitRows.count, blockSize: kv.blockSize, threads: pool.threadCount)
        let step = Step(batch: batch, config: c, kv: kv, threads: pool.threadCount)
        let e = c.embeddingLength, ff = c.feedForwardLength

        // x [n, e] = embedding rows of the tokens
        for t in 0..<n {
            weights.tokenEmbedding.row(Int(batch.tokens[t]), into: UnsafeMutableBufferPointer(start: w.x + t * e, count: e))
        }
        // rope [n, ropeDimensionCount] = cos/sin pairs of each token's position, once per step for every layer
        for t in 0..<n {
            ropeTable(position: batch.positions[t], dimensions: c.ropeDimensionCount, base: c.ropeFreqBase,
                      factors: weights.ropeFrequencies, into: w.rope + t * c.ropeDimensionCount)
        }

        for (l, layer) in weights.layers.enumerated() {
            // h [n, e] = rmsnorm(x) * attn_norm, quantized
            prepareInput(w.x, norm: layer.attentionNorm, tokens: n, width: e)
            // q [n, queryWidth], k and v [n, kvWidth] = h · Wq, Wk, Wv (+ biases); each piece of rows is then
            // normed (Qwen3), roped and stored
            matmul([(0, layer.query, w.q), (1, layer.key, w.k), (2, layer.value, w.v)], input: w.h, tokens: n) { part, rows in
                self.ropeAndStoreKV(layer: l, step: step, part: part, rows: rows)
            }
            // att [n, queryWidth] = softmax(q·kᵀ / sqrt(headDim)) · v, causal, per head (GQA), in tiles
            attention(queries: w.q, keys: kv.keys[l], values: kv.values[l], shape: step.attentionShape, tables: step.tables,
                      tiles: step.plan.tiles, share: step.plan.share, pool: pool, scratch: w.scratch, into: w.attention)
            // x [n, e] += Wo · att  (each piece of rows added as it is done)
            prepareInput(w.attention, norm: nil, tokens: n, width: c.queryWidth)
            matmul([(0, layer.output, w.h)], input: w.attention, tokens: n) { _, rows in
                self.addResidual(w.h, rows: rows, tokens: n)
            }
            // h [n, e] = rmsnorm(x) * ffn_norm, quantized
            prepareInput(w.x, norm: layer.feedForwardNorm, tokens: n, width: e)
            // gate, up [n, ff] = h · Wgate, Wup; gate = silu(gate) * up (each piece of rows as it is done)
            matmul([(0, layer.gate, w.gate), (0, layer.up, w.up)], input: w.h, tokens: n) { _, s in
                // gate and up rows come in the same pieces: a piece's SwiGLU needs only its own outputs
                for t in 0..<n { swiglu(gate: w.gate + t * ff + s.lowerBound, up: w.up + t * ff + s.lowerBound, into: w.gate + t * ff + s.lowerBound, count: s.count) }
            }
            // x [n, e] += Wdown · gate
            prepareInput(w.gate, norm: nil, tokens: n, width: ff)
            matmul([(0, layer.down, w.h)], input: w.gate, tokens: n) { _, rows in
                self.addResidual(w.h, rows: rows, tokens: n)
            }
        }

        // hidden [rows, e] = rmsnorm(x) * output_norm for the rows an embedding pools
        var hidden = [Float](repeating: 0, count: batch.hiddenRows.count * e)
        hidden.withUnsafeMutableBufferPointer { out in
            for (i, t) in batch.hiddenRows.enumerated() {
                rmsNorm(w.x + t * e, weight: weights.outputNorm, into: out.baseAddress! + i * e, count: e, epsilon: c.rmsNormEpsilon)
            }
        }
        // logits [r, vocab] = Wout · rmsnorm(x) * output_norm, for the r rows that need them
        let r = batch.logitRows.count
        guard r > 0 else { return ([], hidden) }
        for (i, t) in batch.logitRows.enumerated() {
            (w.x2 + i * e).update(from: w.x + t * e, count: e)
        }
        prepareInput(w.x2, norm: weights.outputNorm, tokens: r, width: e)
        matmul([(0, weights.output, w.logits)], input: w.h, tokens: r)
        return (Array(UnsafeBufferPointer(start: w.logits, count: r * c.vocabSize)), hidden)
    }

    // MARK: Steps

    /// What every layer of one step shares: the tokens' block tables and KV rows, and the attention plan.
    struct Step {
        let tables: StepBlockTables
        /// [n] the row of each token's position in a layer's keys and values
        let kvRows: [Int]
        let plan: AttentionPlan
        let attentionShape: AttentionShape
        let kvStore: KVStore

        init(batch: ForwardBatch, config c: ModelConfig, kv: KVStore, threads: Int) {
            kvStore = kv
            let tables = StepBlockTables(tables: batch.blockTables, sequenceIndex: batch.sequenceIndex, positions: batch.positions)
            self.tables = tables
            kvRows = (0..<batch.tokenCount).map { t in kv.row(table: tables.table(ofToken: t), position: batch.positions[t]) }
            plan = AttentionPlan(batch: batch, config: c, threads: threads)
            attentionShape = AttentionShape(headCount: c.headCount, kvHeadCount: c.kvHeadCount, headDim: c.headDim,
                                            blockSize: kv.blockSize, values: kv.type.cacheValues)
        }
    }

    /// Pieces of `m`'s rows come in multiples of this: 16 for packed weights, else 4, and of m.rowGroup
    /// (whole heads of q and k where the epilogue needs them, whole blocks of a Q8_0 KV cache for k and v).
    private func granule(_ m: WeightMatrix) -> Int {
        let granule = m.packed ? 16 : 4
        return m.rowGroup % granule == 0 ? m.rowGroup : m.rowGroup * granule
    }

    /// The input of the next products: optionally h = rmsnorm(x) * norm (into workspace.h), then its int8
    /// quantization (for Q8_0 weights; F32/F16 weights read the f32 rows). Tokens are split between threads
    /// when there are several; each token's result does not depend on the split.
    private func prepareInput(_ x: UnsafeMutablePointer<Float>, norm: [Float]?, tokens: Int, width: Int) {
        let w = workspace, eps = config.rmsNormEpsilon
        let body = { (range: Range<Int>) in
            guard !range.isEmpty else { return }
            var input = x
            if let norm {
                for t in range { rmsNorm(x + t * width, weight: norm, into: w.h + t * width, count: width, epsilon: eps) }
                input = w.h
            }
            quantizeRows(input, rows: range, width: width, into: w.quantized!, blockSums: self.readsPackedWeights)
        }
        if tokens < 2 * pool.threadCount {
            body(0..<tokens)
        } else {
            pool.run { i, count in body(ComputePool.share(of: tokens, thread: i, of: count, granule: 1)) }
        }
    }

    /// out_m [tokens, W_m.rows] = input [tokens, W_m.columns] · W_mᵀ for every (part, W_m, out_m), in one
    /// pool dispatch. A part (0, 1, ...) is matrices with the same rows: the threads take pieces of each
    /// part's rows as they go (ComputePool.claim), compute every matrix of the part on them, then run
    /// `then(part, rows)`, which may touch only those rows of that part's outputs. Q8_0 weights read the
    /// input prepareInput quantized, F32/F16 weights read `input` itself. All W_m have the same columns. A
    /// row's result does not depend on the piece it falls in. (One flat list: no array per part per step.)
    private func matmul(_ products: [(part: Int, matrix: WeightMatrix, out: UnsafeMutablePointer<Float>)], input: UnsafeMutablePointer<Float>,
                        tokens: Int, then: ((Int, Range<Int>) -> Void)? = nil) {
        let quantized = workspace.quantized!
        let parts = products.reduce(0) { max($0, $1.part + 1) }
        pool.run { _, _ in
            for part in 0..<parts {
                guard let first = products.first(where: { $0.part == part })?.matrix else { continue }
                // The many-column Q8_0 product (more than 8 tokens) widens the activations on each call:
                // pieces of 64 rows or more keep that to a few percent. A few tokens' products take
                // microseconds, where a call per small piece costs more than waiting would: at most
                // about 2 pieces per thread.
                let minimum = tokens > 8 ? 64 : first.rows / (2 * self.pool.threadCount)
                while let rows = self.pool.claim(list: part, of: first.rows, granule: self.granule(first), minimum: minimum) {
                    for (p, m, out) in products where p == part {
                        Kernels.matmul(m.data, layout: m.layout, columns: m.columns, rows: rows, x: input,
                                       quantized: quantized, tokens: tokens, into: out, outputStride: m.rows)
                    }
                    then?(part, rows)
                }
            }
        }
    }

    /// The epilogue of rows `rows` of layer l's q (part 0), k (1) or v (2) product: biases (Qwen2), a norm
    /// per head of q and k (Qwen3), RoPE on q and k (none on SmolLM3's every 4th layer), q rounded to the
    /// KV type (KVStore.roundQueries), k and v stored at each token's KV row.
    private func ropeAndStoreKV(layer l: Int, step: Step, part: Int, rows: Range<Int>) {
        let c = config, w = workspace, kv = step.kvStore
        let layer = weights.layers[l]
        let rd = c.ropeDimensionCount, hd = c.headDim, rotates = c.usesRope(layer: l)
        /// The epilogue of one of q, k: bias, norm per head, RoPE, over `values` of one token's row `x`.
        func finish(_ x: UnsafeMutablePointer<Float>, values: Range<Int>, bias: [Float]?, norm: [Float]?, table: UnsafePointer<Float>) {
            if let bias { for j in values { x[j] += bias[j] } }
            let heads = values.lowerBound / hd..<values.upperBound / hd  // whole heads when a norm or halves need them
            if let norm {
                for h in heads { rmsNorm(x + h * hd, weight: norm, into: x + h * hd, count: hd, epsilon: c.rmsNormEpsilon) }
            }
            guard rotates else { return }
            switch c.ropeStyle {
            case .adjacentPairs: applyRope(x, values: values, headDim: hd, ropeDimensions: rd, table: table)
            case .halves: applyRopeHalves(x, heads: heads, headDim: hd, ropeDimensions: rd, table: table)
            }
        }
        for t in 0..<step.kvRows.count {
            let table = w.rope + t * rd
            switch part {
            case 0:
                let q = w.q + t * c.queryWidth
                finish(q, values: rows, bias: layer.queryBias, norm: layer.queryNorm, table: table)
                kv.roundQueries(q + rows.lowerBound, count: rows.count)
            case 1:
                let k = w.k + t * c.kvWidth
                finish(k, values: rows, bias: layer.keyBias, norm: layer.keyNorm, table: table)
                kv.store(k + rows.lowerBound, into: kv.keys[l], row: step.kvRows[t], offset: rows.lowerBound, count: rows.count)
            default:
                let v = w.v + t * c.kvWidth
                if let bias = layer.valueBias { for j in rows { v[j] += bias[j] } }
                kv.store(v + rows.lowerBound, into: kv.values[l], row: step.kvRows[t], offset: rows.lowerBound, count: rows.count)
            }
        }
    }

    /// x[t, rows] += a[t, rows] for every token t: one piece of a residual connection.
    private func addResidual(_ a: UnsafeMutablePointer<Float>, rows: Range<Int>, tokens: Int) {
        let x = workspace.x!, width = config.embeddingLength
        for t in 0..<tokens {
            for j in rows { x[t * width + j] += a[t * width + j] }
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
    var quantized: QuantizedRows!                // [n, widest] activations as int8, with scales and sums
    var logits: UnsafeMutablePointer<Float>!     // [logitRows, vocabSize]
    var x2: UnsafeMutablePointer<Float>!         // [logitRows, embeddingLength] residual rows that need logits
    var rope: UnsafeMutablePointer<Float>!       // [n, ropeDimensionCount] cos/sin pairs per token
    /// Attention scratch for the largest tile (AttentionPlan) over the whole context, made once.
    var scratch: AttentionScratch!

    deinit { buffers.forEach { $0.deallocate() } }

    func prepare(config c: ModelConfig, tokens n: Int, logitRows r: Int, blockSize: Int, threads: Int) -> Workspace {
        if scratch == nil {
            scratch = AttentionScratch(threads: threads, tileTokens: AttentionPlan.tileTokens, tileHeads: c.headCount / c.kvHeadCount,
                                       headDim: c.headDim, blockSize: blockSize, maxContext: c.contextLength)
        }
        guard n > tokenCapacity || r > logitCapacity else { return self }
        buffers.forEach { $0.deallocate() }
        buffers = []
        tokenCapacity = max(n, tokenCapacity)
        logitCapacity = max(r, logitCapacity, 1)
        let widest = max(c.embeddingLength, c.queryWidth, c.feedForwardLength)
        func buffer<T>(_ count: Int, of: T.Type) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
            buffers.append(p)
            return p.bindMemory(to: T.self, capacity: count)
        }
        func floats(_ count: Int) -> UnsafeMutablePointer<Float> { buffer(count, of: Float.self) }
        let cap = tokenCapacity
        x = floats(cap * c.embeddingLength)
        h = floats(cap * widest)
        q = floats(cap * c.queryWidth)
        k = floats(cap * c.kvWidth)
        v = floats(cap * c.kvWidth)
        attention = floats(cap * c.queryWidth)
        gate = floats(cap * c.feedForwardLength)
        up = floats(cap * c.feedForwardLength)
        quantized = QuantizedRows(scales: floats(cap * widest / 32), quants: buffer(cap * widest, of: Int8.self),
                                  sums: buffer(cap * widest / 4, of: Int32.self))
        logits = floats(logitCapacity * c.vocabSize)
        x2 = floats(logitCapacity * c.embeddingLength)
        rope = floats(cap * c.ropeDimensionCount)
        return self
    }
}
