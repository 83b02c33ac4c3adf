// One handcrafted file per kind of corruption, each read through the real mmap path; every one must
// give its own named error (never a crash, a hang or a huge allocation) that says where it is.

import GGUF
import Testing
import TestSupport

@Suite struct CorruptFileTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    /// Opens `bytes` as a file and returns the GGUFError it raises.
    func error(of bytes: [UInt8], _ name: String = #function) throws -> GGUFError {
        let path = try directory.write(name + ".gguf", bytes)
        do {
            _ = try GGUFFile(path: path)
        } catch {
            return error
        }
        Issue.record("reading \(name) did not fail")
        return .missingKey("<no error>")
    }

    /// A valid one-tensor file: the base that each test breaks in one place.
    func validFile(tensorType: UInt32 = 0, dimensions: [UInt64] = [32, 2], tensorOffset: UInt64 = 0, dataBytes: Int = 256) -> [UInt8] {
        var b = GGUFBytes()
        b.header(tensorCount: 1, kvCount: 2)
        b.kv(GGUFKey.architecture, .string("llama"))
        b.kv(GGUFKey.blockCount("llama"), .uint32(1))
        b.tensorInfo("w", dimensions: dimensions, type: tensorType, offset: tensorOffset)
        b.pad(to: 32)
        b.raw([UInt8](repeating: 0, count: dataBytes))
        return b.bytes
    }

    @Test func theValidBaseFileReads() throws {
        let path = try directory.write("valid.gguf", validFile())
        let file = try GGUFFile(path: path)
        #expect(file.tensors.map(\.name) == ["w"])
        #expect(file.tensors[0].byteCount == 256)
        #expect(try file.metadata.integer(GGUFKey.blockCount("llama")) == 1)
    }

    @Test func badMagic() throws {
        var bytes = validFile()
        bytes[0...3] = [0x47, 0x47, 0x4A, 0x54]  // "GGJT", an older format
        let e = try error(of: bytes)
        #expect(e == .badMagic(found: [0x47, 0x47, 0x4A, 0x54]))
        #expect(e.description.contains("offset 0"))
    }

    @Test(arguments: [UInt32(1), 2, 4])
    func unsupportedVersions(version: UInt32) throws {
        var b = GGUFBytes()
        b.header(version: version, tensorCount: 0, kvCount: 0)
        let e = try error(of: b.bytes, "version\(version)")
        #expect(e == .unsupportedVersion(version))
        #expect(e.description.contains(version < 3 ? "too old" : "newer"))
    }

    @Test func emptyFile() throws {
        #expect(try error(of: []) == .truncated(what: "magic", offset: 0, needed: 4, available: 0))
    }

    @Test func truncatedHeader() throws {
        let bytes = Array(validFile().prefix(14))  // magic, version and half the tensor count
        #expect(try error(of: bytes) == .truncated(what: "tensor count", offset: 8, needed: 8, available: 6))
    }

    @Test func tensorCountLargerThanTheFileCanHold() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 1 << 40, kvCount: 0)
        b.raw([UInt8](repeating: 0, count: 64))
        #expect(try error(of: b.bytes) == .countTooLarge(what: "tensor count", count: 1 << 40, offset: 8, fileSize: 88))
    }

    @Test func keyValueCountLargerThanTheFileCanHold() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: UInt64.max)
        #expect(try error(of: b.bytes) == .countTooLarge(what: "metadata key/value count", count: .max, offset: 16, fileSize: 24))
    }

    @Test func stringLengthPastTheEnd() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 1)
        b.u64(1 << 50)  // key length
        b.raw(Array(GGUFKey.name.utf8))
        let e = try error(of: b.bytes)
        #expect(e == .truncated(what: "metadata key of length \(1 << 50)", offset: 24, needed: 1 << 50, available: 12))
    }

    @Test func stringValuePastTheEnd() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 1)
        b.sink.string(GGUFKey.name)
        b.u32(8)  // STRING
        b.u64(1000)
        b.raw(Array("short".utf8))
        let e = try error(of: b.bytes)
        guard case .truncated(let what, _, 1000, 5) = e else { Issue.record("got \(e)"); return }
        #expect(what.contains(GGUFKey.name))
    }

    @Test func arrayLengthLargerThanTheFileCanHold() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 1)
        b.sink.string(GGUFKey.tokens)
        b.u32(9)  // ARRAY
        b.u32(8)  // of STRING
        b.u64(1 << 60)
        b.raw([UInt8](repeating: 0, count: 16))
        let e = try error(of: b.bytes)
        guard case .countTooLarge(let what, 1 << 60, _, _) = e else { Issue.record("got \(e)"); return }
        #expect(what.contains(GGUFKey.tokens))
    }

    @Test func arraysNestedTooDeeply() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 1)
        b.sink.string("deep")
        b.u32(9)
        for _ in 0..<20 { b.u32(9); b.u64(1) }  // array of array of ... 20 deep
        b.raw([UInt8](repeating: 0, count: 64))
        let e = try error(of: b.bytes)
        guard case .arrayNestingTooDeep(key: "deep", _) = e else { Issue.record("got \(e)"); return }
    }

    @Test func duplicateKey() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 2)
        b.kv(GGUFKey.name, .string("a"))
        let second = b.count
        b.kv(GGUFKey.name, .string("b"))
        #expect(try error(of: b.bytes) == .duplicateKey(key: GGUFKey.name, offset: second))
    }

    @Test func unknownValueType() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 1)
        b.sink.string(GGUFKey.name)
        let typeOffset = b.count
        b.u32(13)
        b.u64(0)
        #expect(try error(of: b.bytes) == .unknownValueType(raw: 13, key: GGUFKey.name, offset: typeOffset))
    }

    @Test func wrongValueTypeForKnownKeys() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 2)
        b.kv(GGUFKey.architecture, .string("llama"))
        b.kv(GGUFKey.blockCount("llama"), .float32(30))
        #expect(try error(of: b.bytes) == .wrongValueType(key: GGUFKey.blockCount("llama"), expected: "UINT32", found: "FLOAT32"))

        var c = GGUFBytes()
        c.header(tensorCount: 0, kvCount: 1)
        c.kv(GGUFKey.tokens, .array(elementType: .int32, [.int32(1)]))
        #expect(try error(of: c.bytes, "tokens") == .wrongValueType(key: GGUFKey.tokens, expected: "[STRING]", found: "[INT32]"))
    }

    @Test func alignmentNotAPowerOfTwo() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 0, kvCount: 1)
        b.kv(GGUFKey.alignment, .uint32(24))
        #expect(try error(of: b.bytes) == .badAlignment(value: 24))
    }

    @Test func tensorOffsetPastTheEnd() throws {
        let e = try error(of: validFile(tensorOffset: 1 << 20))
        #expect(e == .tensorOutOfBounds(tensor: "w", offset: 1 << 20, byteCount: 256, dataSize: 256))
        #expect(e.description.contains("'w'"))
    }

    @Test func tensorSizePastTheEnd() throws {
        let e = try error(of: validFile(dataBytes: 100))
        #expect(e == .tensorOutOfBounds(tensor: "w", offset: 0, byteCount: 256, dataSize: 100))
    }

    @Test func misalignedTensorDataOffset() throws {
        #expect(try error(of: validFile(tensorOffset: 7)) == .misalignedTensor(tensor: "w", offset: 7, alignment: 32))
    }

    @Test func unknownTensorTypes() throws {
        let k = try error(of: validFile(tensorType: 23), "iq4xs")
        #expect(k == .unsupportedTensorType(tensor: "w", raw: 23, typeName: "IQ4_XS"))
        #expect(k.description.contains("IQ4_XS"))
        #expect(try error(of: validFile(tensorType: 999), "t999") == .unsupportedTensorType(tensor: "w", raw: 999, typeName: nil))
    }

    @Test func dimensionsWhoseProductOverflows() throws {
        let dims: [UInt64] = [1 << 32, 1 << 32]
        #expect(try error(of: validFile(dimensions: dims)) == .dimensionOverflow(tensor: "w", dimensions: dims))
        let huge: [UInt64] = [UInt64.max]
        #expect(try error(of: validFile(dimensions: huge), "huge") == .dimensionOverflow(tensor: "w", dimensions: huge))
    }

    @Test func tooManyDimensions() throws {
        let e = try error(of: validFile(dimensions: [32, 1, 1, 1, 1]))
        guard case .badDimensionCount(tensor: "w", count: 5, _) = e else { Issue.record("got \(e)"); return }
    }

    @Test func rowNotAWholeNumberOfBlocks() throws {
        #expect(try error(of: validFile(tensorType: 8, dimensions: [40, 2])) == .rowNotBlockMultiple(tensor: "w", rowLength: 40, type: "Q8_0", blockSize: 32))
    }

    @Test func duplicateTensorName() throws {
        var b = GGUFBytes()
        b.header(tensorCount: 2, kvCount: 0)
        b.tensorInfo("w", dimensions: [32], type: 0, offset: 0)
        let second = b.count
        b.tensorInfo("w", dimensions: [32], type: 0, offset: 128)
        b.pad(to: 32)
        b.raw([UInt8](repeating: 0, count: 256))
        #expect(try error(of: b.bytes) == .duplicateTensor(name: "w", offset: second))
    }

    @Test func missingFile() throws {
        #expect(throws: GGUFError.self) { try GGUFFile(path: directory.file("absent.gguf")) }
    }
}
