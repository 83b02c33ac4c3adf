// Errors of the GGUF module: every malformed file maps to one case that says what is wrong, where
// (byte offset, key or tensor) and what to do next. Reading never crashes on untrusted input.

package enum GGUFError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case badMagic(found: [UInt8])
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int, needed: Int, available: Int)
    case countTooLarge(what: String, count: UInt64, offset: Int, fileSize: Int)
    case duplicateKey(key: String, offset: Int)
    case duplicateTensor(name: String, offset: Int)
    case unknownValueType(raw: UInt32, key: String, offset: Int)
    case arrayNestingTooDeep(key: String, offset: Int)
    case wrongValueType(key: String, expected: String, found: String)
    case badAlignment(value: UInt32)
    case badDimensionCount(tensor: String, count: UInt32, offset: Int)
    case dimensionOverflow(tensor: String, dimensions: [UInt64])
    case rowNotBlockMultiple(tensor: String, rowLength: Int, type: String, blockSize: Int)
    case unsupportedTensorType(tensor: String, raw: UInt32, typeName: String?)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfBounds(tensor: String, offset: UInt64, byteCount: Int, dataSize: Int)
    case missingKey(String)
    case missingTensor(String)
    case tensorDataSize(tensor: String, expected: Int, got: Int)
    case writeFailed(path: String, reason: String)

    package var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open GGUF file '\(path)': \(reason); check the path and permissions"
        case .badMagic(let found):
            let hex = found.map { String($0, radix: 16) }.joined(separator: " ")
            return "not a GGUF file: magic at offset 0 is [\(hex)], expected 'GGUF' (47 47 55 46); pass a .gguf model file"
        case .unsupportedVersion(let version) where version < 3:
            return "GGUF version \(version) at offset 4 is too old (only v3 is read); re-convert the model with a current llama.cpp or gguf-py"
        case .unsupportedVersion(let version):
            return "GGUF version \(version) at offset 4 is newer than this reader (v3); upgrade tally or write the file as v3"
        case .truncated(let what, let offset, let needed, let available):
            return "file truncated: \(what) at offset \(offset) needs \(needed) bytes but only \(available) remain; the download or copy is incomplete, fetch the file again"
        case .countTooLarge(let what, let count, let offset, let fileSize):
            return "\(what) \(count) at offset \(offset) is more than a \(fileSize)-byte file can hold; the header is corrupt, fetch the file again"
        case .duplicateKey(let key, let offset):
            return "metadata key '\(key)' appears twice (second at offset \(offset)); the file is malformed, re-export it"
        case .duplicateTensor(let name, let offset):
            return "tensor '\(name)' appears twice (second at offset \(offset)); the file is malformed, re-export it"
        case .unknownValueType(let raw, let key, let offset):
            return "metadata key '\(key)' has unknown value type \(raw) at offset \(offset); the file is corrupt or from a newer writer"
        case .arrayNestingTooDeep(let key, let offset):
            return "metadata key '\(key)' nests arrays too deeply at offset \(offset); the file is corrupt"
        case .wrongValueType(let key, let expected, let found):
            return "metadata key '\(key)' has type \(found), expected \(expected); the file was written by a non-conforming tool, re-convert it"
        case .badAlignment(let value):
            return "general.alignment = \(value) is not a non-zero power of two; the file is corrupt"
        case .badDimensionCount(let tensor, let count, let offset):
            return "tensor '\(tensor)' has \(count) dimensions at offset \(offset), expected 1 to 4; the file is corrupt"
        case .dimensionOverflow(let tensor, let dimensions):
            return "tensor '\(tensor)' dimensions \(dimensions) overflow when multiplied; the file is corrupt"
        case .rowNotBlockMultiple(let tensor, let rowLength, let type, let blockSize):
            return "tensor '\(tensor)' has row length \(rowLength), not a multiple of \(type)'s block of \(blockSize); the file is corrupt"
        case .unsupportedTensorType(let tensor, let raw, let typeName):
            let name = typeName.map { "\($0) (\(raw))" } ?? "unknown type \(raw)"
            return "tensor '\(tensor)' has type \(name), which tally does not read (\(GGMLType.allCases.map(\.name).joined(separator: ", "))); download the model in one of these types (Q8_0 serves best), or convert an F16 file with `tally quantize`"
        case .misalignedTensor(let tensor, let offset, let alignment):
            return "tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment); the file is corrupt"
        case .tensorOutOfBounds(let tensor, let offset, let byteCount, let dataSize):
            return "tensor '\(tensor)' data [\(offset), +\(byteCount)) runs past the end of the \(dataSize)-byte data section; the file is truncated, fetch it again"
        case .missingKey(let key):
            return "metadata key '\(key)' is missing; the model file does not describe this, re-convert it with a current tool"
        case .missingTensor(let name):
            return "tensor '\(name)' is missing; the model file is incomplete or of another architecture"
        case .tensorDataSize(let tensor, let expected, let got):
            return "tensor '\(tensor)' was given \(got) bytes of data, its type and shape need \(expected); this is a bug in the caller"
        case .writeFailed(let path, let reason):
            return "cannot write '\(path)': \(reason); check free disk space and permissions"
        }
    }
}
