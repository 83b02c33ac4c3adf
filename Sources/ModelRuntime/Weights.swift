// The model's weights as views into the GGUF mapping, each matrix's shape checked at load.
// A matrix's GGML type is data: it selects the kernel at run time (Q8_0, F32 or F16).
// With the VNNI kernels, Q8_0 matrices are read in a packed layout (16 rows interleaved, same size; see
// CKernels/q8_0_packed.c): views into a packed file beside the model (PackedWeightsFile), or a heap copy
// when that file cannot be written. Either way the GGUF pages they came from are dropped, so memory holds
// one copy.

import Foundation
import GGUF
import Kernels

/// A weight matrix W [rows, columns], row-major: row r holds `columns` values (GGUF dims [columns, rows]).
package struct WeightMatrix: @unchecked Sendable {
    package let name: String
    package let type: GGMLType
    package let rows: Int
    package let columns: Int
    package let data: UnsafeRawPointer
    /// `data` is packed Q8_0 (Kernels' packQ8), read by the packed product.
    package var packed = false
    /// Rows a thread's share must not split: a head of q or k when their epilogue works on whole heads
    /// (RoPE on halves, a norm per head); 1 otherwise.
    package var rowGroup = 1

    /// How the product kernel reads `data`.
    package var layout: WeightLayout {
        switch type {
        case .q8_0: packed ? .q8_0Packed : .q8_0
        case .f16: .f16
        default: .f32
        }
    }

    /// Row r as f32 (the embedding lookup).
    package func row(_ r: Int, into out: UnsafeMutableBufferPointer<Float>) {
        if packed { packedQ8Row(data, columns: columns, row: r, into: out.baseAddress!); return }
        let rowBytes = type.byteCount(elements: columns)
        type.dequantize(UnsafeRawBufferPointer(start: data + r * rowBytes, count: rowBytes), into: out)
    }
}

package struct LayerWeights: Sendable {
    package let attentionNorm: [Float]   // [embeddingLength]
    package let query: WeightMatrix      // [queryWidth, embeddingLength]
    package let key: WeightMatrix        // [kvWidth, embeddingLength]
    package let value: WeightMatrix      // [kvWidth, embeddingLength]
    package let output: WeightMatrix     // [embeddingLength, queryWidth]
    package let feedForwardNorm: [Float] // [embeddingLength]
    package let gate: WeightMatrix       // [feedForwardLength, embeddingLength]
    package let up: WeightMatrix         // [feedForwardLength, embeddingLength]
    package let down: WeightMatrix       // [embeddingLength, feedForwardLength]
    /// Qwen2: added to the q, k and v products ([queryWidth], [kvWidth], [kvWidth]).
    package var queryBias: [Float]? = nil
    package var keyBias: [Float]? = nil
    package var valueBias: [Float]? = nil
    /// Qwen3: RMS norm weights applied to each head of q and of k before RoPE ([headDim]).
    package var queryNorm: [Float]? = nil
    package var keyNorm: [Float]? = nil

    var matrices: [WeightMatrix] { [query, key, value, output, gate, up, down] }

    /// The same layer with every matrix replaced by `transform(matrix)`.
    func mapMatrices(_ transform: (WeightMatrix) -> WeightMatrix) -> LayerWeights {
        LayerWeights(attentionNorm: attentionNorm, query: transform(query), key: transform(key), value: transform(value),
                     output: transform(output), feedForwardNorm: feedForwardNorm, gate: transform(gate), up: transform(up),
                     down: transform(down), queryBias: queryBias, keyBias: keyBias, valueBias: valueBias,
                     queryNorm: queryNorm, keyNorm: keyNorm)
    }
}

/// Owns what packed matrices point into: heap copies, or the packed file's mapping.
final class PackedStorage: @unchecked Sendable {
    private var buffers: [UnsafeMutableRawPointer] = []
    var file: GGUFFile?

    /// A packed copy of `m` when the packed kernel takes it, else `m`. The mapping's pages under the source
    /// are released (read back from the page cache if touched again).
    func pack(_ m: WeightMatrix) -> WeightMatrix {
        guard PackedWeightsFile.packable(m) else { return m }
        let bytes = m.type.byteCount(elements: m.columns) * m.rows
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        buffers.append(p)
        packQ8(m.data, rows: m.rows, columns: m.columns, into: p)
        Self.dropPages(m.data, bytes)
        return Self.packedView(of: m, at: UnsafeRawPointer(p))
    }

    /// `m` read from the packed file's tensor of the same name, when the packed kernel takes it.
    func view(_ m: WeightMatrix) -> WeightMatrix {
        guard PackedWeightsFile.packable(m), let file, let t = file.tensor(named: m.name) else { return m }
        Self.dropPages(m.data, m.type.byteCount(elements: m.columns) * m.rows)
        return Self.packedView(of: m, at: file.data(of: t).baseAddress!)
    }

    private static func packedView(of m: WeightMatrix, at data: UnsafeRawPointer) -> WeightMatrix {
        var packed = WeightMatrix(name: m.name, type: m.type, rows: m.rows, columns: m.columns, data: data)
        packed.packed = true
        packed.rowGroup = m.rowGroup
        return packed
    }

    /// MADV_DONTNEED on the whole pages inside [start, start + count) of the read-only file mapping.
    static func dropPages(_ start: UnsafeRawPointer, _ count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let begin = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + count) / page * page
        guard end > begin else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: begin), end - begin, MADV_DONTNEED)
    }

    deinit { buffers.forEach { $0.deallocate() } }
}

package struct ModelWeights: Sendable {
    let storage: PackedStorage
    package let tokenEmbedding: WeightMatrix  // [vocabSize, embeddingLength]
    package let layers: [LayerWeights]
    package let outputNorm: [Float]           // [embeddingLength]
    /// Llama 3.x: divisors of each RoPE pair's angle ([ropeDimensionCount / 2]), nil when absent.
    package let ropeFrequencies: [Float]?
    /// The LM head: `output.weight`, or the token embedding when the model ties them.
    package let output: WeightMatrix          // [vocabSize, embeddingLength]
    package var tiedEmbeddings: Bool { output.name == tokenEmbedding.name }
    package let source: WeightSource

    /// `packing`: where the packed layout for the packed product comes from (worth it when the VNNI kernel runs).
    package init(file: GGUFFile, config c: ModelConfig, packing: WeightPacking = .unpacked) throws {
        let storage = PackedStorage()
        self.storage = storage
        func matrix(_ name: String, rows: Int, columns: Int, rowGroup: Int = 1) throws -> WeightMatrix {
            guard let t = file.tensor(named: name) else { throw RuntimeError.model(.missingTensor(name)) }
            guard t.dimensions == [columns, rows] else {
                throw RuntimeError.badTensorShape(tensor: name, expected: [columns, rows], found: t.dimensions)
            }
            guard [.q8_0, .f32, .f16].contains(t.type) else { throw RuntimeError.unsupportedWeightType(tensor: name, type: t.type.name) }
            var m = WeightMatrix(name: name, type: t.type, rows: rows, columns: columns, data: file.data(of: t).baseAddress!)
            m.rowGroup = rowGroup
            return m
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            guard let t = file.tensor(named: name) else { throw RuntimeError.model(.missingTensor(name)) }
            guard t.dimensions == [count] else { throw RuntimeError.badTensorShape(tensor: name, expected: [count], found: t.dimensions) }
            return t.type.dequantize(file.data(of: t), count: count)
        }
        func optionalVector(_ name: String, count: Int) throws -> [Float]? {
            file.tensor(named: name) == nil ? nil : try vector(name, count: count)
        }
        let e = c.embeddingLength
        guard let embedding = file.tensor(named: TensorName.tokenEmbedding) else { throw RuntimeError.model(.missingTensor(TensorName.tokenEmbedding)) }
        guard embedding.dimensions == [e, c.vocabSize] else {
            throw RuntimeError.badTensorShape(tensor: TensorName.tokenEmbedding, expected: [e, c.vocabSize], found: embedding.dimensions)
        }
        // Any readable type works for the lookup; as the tied LM head it must be a kernel type.
        tokenEmbedding = WeightMatrix(name: embedding.name, type: embedding.type, rows: c.vocabSize, columns: e, data: file.data(of: embedding).baseAddress!)
        // RoPE on halves and a norm per head both work on whole heads of q and k.
        let wholeHeads = c.ropeStyle == .halves || file.tensor(named: TensorName.attentionQueryNorm(0)) != nil
        let headRows = wholeHeads ? c.headDim : 1
        // k and v rows are cut into pieces of whole 32-value blocks, which a Q8_0 KV cache stores.
        func lcm(_ a: Int, _ b: Int) -> Int { var (x, y) = (a, b); while y != 0 { (x, y) = (y, x % y) }; return a / x * b }
        var layers = try (0..<c.layerCount).map { i in
            LayerWeights(
                attentionNorm: try vector(TensorName.attentionNorm(i), count: e),
                query: try matrix(TensorName.attentionQuery(i), rows: c.queryWidth, columns: e, rowGroup: headRows),
                key: try matrix(TensorName.attentionKey(i), rows: c.kvWidth, columns: e, rowGroup: lcm(headRows, 32)),
                value: try matrix(TensorName.attentionValue(i), rows: c.kvWidth, columns: e, rowGroup: 32),
                output: try matrix(TensorName.attentionOutput(i), rows: e, columns: c.queryWidth),
                feedForwardNorm: try vector(TensorName.feedForwardNorm(i), count: e),
                gate: try matrix(TensorName.feedForwardGate(i), rows: c.feedForwardLength, columns: e),
                up: try matrix(TensorName.feedForwardUp(i), rows: c.feedForwardLength, columns: e),
                down: try matrix(TensorName.feedForwardDown(i), rows: e, columns: c.feedForwardLength),
                queryBias: try optionalVector(TensorName.attentionQueryBias(i), count: c.queryWidth),
                keyBias: try optionalVector(TensorName.attentionKeyBias(i), count: c.kvWidth),
                valueBias: try optionalVector(TensorName.attentionValueBias(i), count: c.kvWidth),
                queryNorm: try optionalVector(TensorName.attentionQueryNorm(i), count: c.headDim),
                keyNorm: try optionalVector(TensorName.attentionKeyNorm(i), count: c.headDim))
        }
        outputNorm = try vector(TensorName.outputNorm, count: e)
        ropeFrequencies = try optionalVector(TensorName.ropeFrequencies, count: c.ropeDimensionCount / 2)
        var output: WeightMatrix
        if file.tensor(named: TensorName.output) != nil {
            output = try matrix(TensorName.output, rows: c.vocabSize, columns: e)
        } else {
            guard [.q8_0, .f32, .f16].contains(embedding.type) else {
                throw RuntimeError.unsupportedWeightType(tensor: TensorName.tokenEmbedding, type: embedding.type.name)
            }
            // The lookup keeps reading the original rows (a few pages per token); the LM head gets the packed layout.
            output = tokenEmbedding
        }

        var source = WeightSource.gguf
        let toPack = (layers.flatMap(\.matrices) + [output]).filter(PackedWeightsFile.packable)
        if case .file(let path, let fullCheck) = packing, !toPack.isEmpty,
           let (packedFile, written) = PackedWeightsFile.open(path: path, source: file, matrices: toPack, fullCheck: fullCheck) {
            storage.file = packedFile
            layers = layers.map { $0.mapMatrices(storage.view) }
            output = storage.view(output)
            source = .packedFile(path: path, written: written)
        } else if packing != .unpacked, !toPack.isEmpty {
            layers = layers.map { $0.mapMatrices(storage.pack) }
            output = storage.pack(output)
            source = .packedInMemory
        }
        self.layers = layers
        self.output = output
        self.source = source
    }
}
