// The cost model's view of a GGUF model, read from its header: `tally serve` and `tally bench` both use
// this, so they price the same model alike. Widths come from the attention tensors' shapes, so no
// architecture's metadata keys are needed.

import GGUF

extension ModelShape {
    /// Matmul weights per token, the file's bytes and the attention widths of `file`; `.unknown` when it has
    /// no attention tensors. The token embedding is a lookup, not a matmul, unless it is tied and also
    /// serves as the output head.
    package init(file: GGUFFile) {
        guard let query = file.tensor(named: TensorName.attentionQuery(0)), query.dimensions.count == 2,
              let key = file.tensor(named: TensorName.attentionKey(0)), key.dimensions.count == 2 else {
            self = .unknown
            return
        }
        var layers = 0
        while file.tensor(named: TensorName.attentionQuery(layers)) != nil { layers += 1 }
        let hasOutput = file.tensor(named: TensorName.output) != nil
        var parameters: Int64 = 0
        for tensor in file.tensors where tensor.dimensions.count >= 2 {
            if tensor.name == TensorName.tokenEmbedding && hasOutput { continue }
            parameters += Int64(tensor.elementCount)
        }
        // GGUF dimensions are [columns, rows]: a projection's rows are its output width.
        self.init(parameterCount: parameters, weightBytes: Int64(file.fileSize), layerCount: layers,
                  attentionWidth: query.dimensions[1], kvWidth: key.dimensions[1])
    }
}
