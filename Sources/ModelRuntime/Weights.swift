// The model's weights as views into the GGUF mapping (no copy), each matrix's shape checked at load.
// A matrix's GGML type is data: it selects the kernel at run time (Q8_0, F32 or F16).

import GGUF

/// A weight matrix W [rows, columns], row-major: row r holds `columns` values (GGUF dims [columns, rows]).
package struct WeightMatrix: @unchecked Sendable {
    package let name: String
    package let type: GGMLType
    package let rows: Int
    package let columns: Int
    package let data: UnsafeRawPointer

    /// Row r as f32 (the embedding lookup).
    package func row(_ r: Int, into out: UnsafeMutableBufferPointer<Float>) {
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

package struct ModelWeights: Sendable {
    package let tokenEmbedding: WeightMatrix  // [vocabSize, embeddingLength]
    package let layers: [LayerWeights]
    package let outputNorm: [Float]           // [embeddingLength]
    /// The LM head: `output.weight`, or the token embedding when the model ties them.
    package let output: WeightMatrix          // [vocabSize, embeddingLength]
    package var tiedEmbeddings: Bool { output.name == tokenEmbedding.name }

    package init(file: GGUFFile, config c: ModelConfig) throws {
        func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
            guard let t = file.tensor(named: name) else { throw RuntimeError.model(.missingTensor(name)) }
            guard t.dimensions == [columns, rows] else {
                throw RuntimeError.badTensorShape(tensor: name, expected: [columns, rows], found: t.dimensions)
            }
            guard [.q8_0, .f32, .f16].contains(t.type) else { throw RuntimeError.unsupportedWeightType(tensor: name, type: t.type.name) }
            return WeightMatrix(name: name, type: t.type, rows: rows, columns: columns, data: file.data(of: t).baseAddress!)
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
            output = tokenEmbedding
        }
    }
}
