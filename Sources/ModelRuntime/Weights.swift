// The model's weights as views into the GGUF mapping, each matrix's shape checked at load.
// A matrix's GGML type is data: it selects the kernel at run time (Q8_0, F32 or F16).
// With the VNNI kernels, Q8_0 matrices are repacked once at load (16 rows interleaved, same size; see
// CKernels/q8_0_packed.c) and the mapping's pages they came from are dropped, so memory stays one copy.

import CKernels
import Foundation
import GGUF

/// A weight matrix W [rows, columns], row-major: row r holds `columns` values (GGUF dims [columns, rows]).
package struct WeightMatrix: @unchecked Sendable {
    package let name: String
    package let type: GGMLType
    package let rows: Int
    package let columns: Int
    package let data: UnsafeRawPointer
    /// `data` is packed Q8_0 (tally_q8p_pack), read by tally_gemm_q8p.
    package var packed = false

    /// Row r as f32 (the embedding lookup).
    package func row(_ r: Int, into out: UnsafeMutableBufferPointer<Float>) {
        if packed { tally_q8p_row(data, Int32(columns), Int32(r), out.baseAddress); return }
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
}

/// Owns the packed copies of the weight matrices.
final class PackedStorage: @unchecked Sendable {
    private var buffers: [UnsafeMutableRawPointer] = []

    /// A packed copy of `m` when it is Q8_0 with rows in groups of 16, else `m`. With `dropSource`, the
    /// mapping's pages under the source are released (read back from the page cache if touched again).
    func pack(_ m: WeightMatrix, dropSource: Bool) -> WeightMatrix {
        guard m.type == .q8_0, m.rows % 16 == 0, m.columns % 32 == 0 else { return m }
        let bytes = m.type.byteCount(elements: m.columns) * m.rows
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        buffers.append(p)
        tally_q8p_pack(m.data, Int32(m.rows), Int32(m.columns), p)
        if dropSource { Self.dropPages(m.data, bytes) }
        var packed = WeightMatrix(name: m.name, type: m.type, rows: m.rows, columns: m.columns, data: UnsafeRawPointer(p))
        packed.packed = true
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
    /// The LM head: `output.weight`, or the token embedding when the model ties them.
    package let output: WeightMatrix          // [vocabSize, embeddingLength]
    package var tiedEmbeddings: Bool { output.name == tokenEmbedding.name }

    /// `pack`: repack Q8_0 matrices for tally_gemm_q8p (worth it when the VNNI kernel runs).
    package init(file: GGUFFile, config c: ModelConfig, pack: Bool = false) throws {
        let storage = PackedStorage()
        self.storage = storage
        func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
            guard let t = file.tensor(named: name) else { throw RuntimeError.model(.missingTensor(name)) }
            guard t.dimensions == [columns, rows] else {
                throw RuntimeError.badTensorShape(tensor: name, expected: [columns, rows], found: t.dimensions)
            }
            guard [.q8_0, .f32, .f16].contains(t.type) else { throw RuntimeError.unsupportedWeightType(tensor: name, type: t.type.name) }
            let m = WeightMatrix(name: name, type: t.type, rows: rows, columns: columns, data: file.data(of: t).baseAddress!)
            return pack ? storage.pack(m, dropSource: true) : m
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            guard let t = file.tensor(named: name) else { throw RuntimeError.model(.missingTensor(name)) }
            guard t.dimensions == [count] else { throw RuntimeError.badTensorShape(tensor: name, expected: [count], found: t.dimensions) }
            return t.type.dequantize(file.data(of: t), count: count)
        }
        let e = c.embeddingLength
        guard let embedding = file.tensor(named: TensorName.tokenEmbedding) else { throw RuntimeError.model(.missingTensor(TensorName.tokenEmbedding)) }
        guard embedding.dimensions == [e, c.vocabSize] else {
            throw RuntimeError.badTensorShape(tensor: TensorName.tokenEmbedding, expected: [e, c.vocabSize], found: embedding.dimensions)
        }
        // Any readable type works for the lookup; as the tied LM head it must be a kernel type.
        tokenEmbedding = WeightMatrix(name: embedding.name, type: embedding.type, rows: c.vocabSize, columns: e, data: file.data(of: embedding).baseAddress!)
        layers = try (0..<c.layerCount).map { i in
            LayerWeights(
                attentionNorm: try vector(TensorName.attentionNorm(i), count: e),
                query: try matrix(TensorName.attentionQuery(i), rows: c.queryWidth, columns: e),
                key: try matrix(TensorName.attentionKey(i), rows: c.kvWidth, columns: e),
                value: try matrix(TensorName.attentionValue(i), rows: c.kvWidth, columns: e),
                output: try matrix(TensorName.attentionOutput(i), rows: e, columns: c.queryWidth),
                feedForwardNorm: try vector(TensorName.feedForwardNorm(i), count: e),
                gate: try matrix(TensorName.feedForwardGate(i), rows: c.feedForwardLength, columns: e),
                up: try matrix(TensorName.feedForwardUp(i), rows: c.feedForwardLength, columns: e),
                down: try matrix(TensorName.feedForwardDown(i), rows: e, columns: c.feedForwardLength))
        }
        outputNorm = try vector(TensorName.outputNorm, count: e)
        if file.tensor(named: TensorName.output) != nil {
            output = try matrix(TensorName.output, rows: c.vocabSize, columns: e)
        } else {
            guard [.q8_0, .f32, .f16].contains(embedding.type) else {
                throw RuntimeError.unsupportedWeightType(tensor: TensorName.tokenEmbedding, type: embedding.type.name)
            }
            // The lookup keeps reading the original rows (a few pages per token); the LM head gets a packed copy.
            output = pack ? storage.pack(tokenEmbedding, dropSource: true) : tokenEmbedding
        }
    }
}
