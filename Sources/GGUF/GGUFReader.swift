// Reads a GGUF v3 file through a read-only mmap: header, metadata, tensor infos, data offset.
// Every length and count is checked against the bytes that remain before anything is allocated,
// with explicit `throw`s (never `precondition`, which `-Ounchecked` deletes).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package struct GGUFTensorInfo: Equatable, Sendable {
    package let name: String
    /// ggml order: dimensions[0] is the row length (fastest varying), then rows, ...
    package let dimensions: [Int]
    package let type: GGMLType
    /// Offset of the tensor's data from the start of the data section.
    package let offset: Int
    package let elementCount: Int
    package let byteCount: Int

    package init(name: String, dimensions: [Int], type: GGMLType, offset: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.elementCount = dimensions.reduce(1, *)
        self.byteCount = type.byteCount(elements: elementCount)
    }
}

/// A GGUF file mapped into memory. Tensor data are views into the mapping: no copy.
package final class GGUFFile: @unchecked Sendable {
    package static let magic: [UInt8] = Array("GGUF".utf8)
    package static let supportedVersion: UInt32 = 3
    package static let defaultAlignment = 32
    static let maxArrayNesting = 8

    package let path: String
    package let version: UInt32
    package let metadata: GGUFMetadata
    package let tensors: [GGUFTensorInfo]
    package let alignment: Int
    /// Byte offset of the data section (tensor offsets are relative to it).
    package let dataOffset: Int
    package let fileSize: Int
    private let tensorIndex: [String: Int]
    private let mapping: UnsafeRawPointer?

    /// Maps `path` read-only. `populate` pre-faults the pages (MAP_POPULATE on Linux) so the first
    /// forward pass does not pay for page faults.
    package init(path: String, populate: Bool = false) throws(GGUFError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        var base: UnsafeRawPointer? = nil
        if size > 0 {
            var flags = MAP_PRIVATE
            #if os(Linux)
            if populate { flags |= MAP_POPULATE }
            #endif
            let p = mmap(nil, size, PROT_READ, flags, fd, 0)
            guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
            }
            base = UnsafeRawPointer(p)
        }
        do {
            let parsed = try GGUFParser.parse(UnsafeRawBufferPointer(start: base, count: size))
            self.mapping = base
            self.fileSize = size
            self.version = parsed.version
            self.metadata = parsed.metadata
            self.tensors = parsed.tensors
            self.alignment = parsed.alignment
            self.dataOffset = parsed.dataOffset
            self.tensorIndex = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
        } catch {
            if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
            throw error
        }
    }

    deinit {
        if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping), fileSize) }
    }

    package func tensor(named name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    package func requireTensor(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let t = tensor(named: name) else { throw .missingTensor(name) }
        return t
    }

    /// The tensor's bytes inside the mapping, valid while this GGUFFile lives.
    package func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping! + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// The whole file's bytes.
    package var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: mapping, count: fileSize) }
}

/// The parse itself, over any byte buffer (tests parse in-memory bytes the same way).
package enum GGUFParser {
    package struct Parsed {
        package var version: UInt32
        package var metadata: GGUFMetadata
        package var tensors: [GGUFTensorInfo]
        package var alignment: Int
        package var dataOffset: Int
    }

    package static func parse(_ buffer: UnsafeRawBufferPointer) throws(GGUFError) -> Parsed {
        var r = Cursor(buffer: buffer)
        let magic = try r.bytes(4, what: "magic")
        guard magic == GGUFFile.magic else { throw .badMagic(found: magic) }
        let version = try r.u32(what: "version")
        guard version == GGUFFile.supportedVersion else { throw .unsupportedVersion(version) }
        let tensorCountOffset = r.offset
        let tensorCount = try r.u64(what: "tensor count")
        let kvCountOffset = r.offset
        let kvCount = try r.u64(what: "metadata key/value count")
        // A key/value needs at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least
        // 8 (name length) + 4 (dims) + 8 (one dim) + 4 (type) + 8 (offset).
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw .countTooLarge(what: "metadata key/value count", count: kvCount, offset: kvCountOffset, fileSize: buffer.count)
        }
        guard tensorCount <= UInt64(r.remaining / 32) else {
            throw .countTooLarge(what: "tensor count", count: tensorCount, offset: tensorCountOffset, fileSize: buffer.count)
        }

        var metadata = GGUFMetadata()
        for _ in 0..<Int(kvCount) {
            let keyOffset = r.offset
            let key = try r.string(what: "metadata key")
            guard !metadata.contains(key) else { throw .duplicateKey(key: key, offset: keyOffset) }
            let typeOffset = r.offset
            let rawType = try r.u32(what: "value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(raw: rawType, key: key, offset: typeOffset)
            }
            metadata.set(key, try r.value(of: type, key: key, depth: 0))
        }
        try metadata.validateKnownTypes()

        var alignment = GGUFFile.defaultAlignment
        if case .uint32(let a)? = metadata[GGUFKey.alignment] {
            guard a != 0, a & (a - 1) == 0 else { throw .badAlignment(value: a) }
            alignment = Int(a)
        }

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        var pending: [(String, [Int], GGMLType, UInt64)] = []
        for _ in 0..<Int(tensorCount) {
            let infoOffset = r.offset
            let name = try r.string(what: "tensor name")
            guard names.insert(name).inserted else { throw .duplicateTensor(name: name, offset: infoOffset) }
            let dimsOffset = r.offset
            let dimCount = try r.u32(what: "dimension count of '\(name)'")
            guard (1...4).contains(dimCount) else { throw .badDimensionCount(tensor: name, count: dimCount, offset: dimsOffset) }
            var raw: [UInt64] = []
            for _ in 0..<dimCount { raw.append(try r.u64(what: "dimensions of '\(name)'")) }
            let rawType = try r.u32(what: "type of '\(name)'")
            let tensorOffset = try r.u64(what: "data offset of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw .unsupportedTensorType(tensor: name, raw: rawType, typeName: GGMLType.knownName(raw: rawType))
            }
            // Element and byte counts must fit in Int without overflow.
            var elements = 1
            for d in raw {
                guard let dim = Int(exactly: d) else { throw .dimensionOverflow(tensor: name, dimensions: raw) }
                let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw .dimensionOverflow(tensor: name, dimensions: raw) }
                elements = product
            }
            let dims = raw.map { Int($0) }
            guard dims[0] % type.blockSize == 0 else {
                throw .rowNotBlockMultiple(tensor: name, rowLength: dims[0], type: type.name, blockSize: type.blockSize)
            }
            guard !(elements / type.blockSize).multipliedReportingOverflow(by: type.blockBytes).overflow else {
                throw .dimensionOverflow(tensor: name, dimensions: raw)
            }
            guard tensorOffset % UInt64(alignment) == 0 else {
                throw .misalignedTensor(tensor: name, offset: tensorOffset, alignment: alignment)
            }
            pending.append((name, dims, type, tensorOffset))
        }

        // Bounds need the data section's start, known only after the last tensor info.
        let dataOffset = alignUp(r.offset, alignment)
        let dataSize = max(0, buffer.count - dataOffset)
        for (name, dims, type, tensorOffset) in pending {
            let byteCount = type.byteCount(elements: dims.reduce(1, *))
            guard tensorOffset <= UInt64(dataSize), byteCount <= dataSize - Int(tensorOffset) else {
                throw .tensorOutOfBounds(tensor: name, offset: tensorOffset, byteCount: byteCount, dataSize: dataSize)
            }
            tensors.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: Int(tensorOffset)))
        }
        return Parsed(version: version, metadata: metadata, tensors: tensors, alignment: alignment, dataOffset: dataOffset)
    }
}

package func alignUp(_ value: Int, _ alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }

/// A bounds-checked little-endian reader over the file's bytes.
private struct Cursor {
    let buffer: UnsafeRawBufferPointer
    var offset = 0

    var remaining: Int { buffer.count - offset }

    mutating func need(_ n: Int, what: String) throws(GGUFError) {
        guard n <= remaining else { throw .truncated(what: what, offset: offset, needed: n, available: remaining) }
    }

    mutating func bytes(_ n: Int, what: String) throws(GGUFError) -> [UInt8] {
        try need(n, what: what)
        defer { offset += n }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + n]))
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, what: String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what: what)
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func u32(what: String) throws(GGUFError) -> UInt32 { try load(UInt32.self, what: what) }
    mutating func u64(what: String) throws(GGUFError) -> UInt64 { try load(UInt64.self, what: what) }

    mutating func string(what: String) throws(GGUFError) -> String {
        let lengthOffset = offset
        let length = try u64(what: "length of \(what)")
        guard length <= UInt64(remaining) else {
            throw .truncated(what: "\(what) of length \(length)", offset: lengthOffset, needed: Int(clamping: length), available: remaining)
        }
        let n = Int(length)
        defer { offset += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + n]), as: UTF8.self)
    }

    mutating func value(of type: GGUFValueType, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what: what))
        case .int8: return .int8(try load(Int8.self, what: what))
        case .uint16: return .uint16(try load(UInt16.self, what: what))
        case .int16: return .int16(try load(Int16.self, what: what))
        case .uint32: return .uint32(try load(UInt32.self, what: what))
        case .int32: return .int32(try load(Int32.self, what: what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what: what)))
        case .bool: return .bool(try load(UInt8.self, what: what) != 0)
        case .string: return .string(try string(what: what))
        case .uint64: return .uint64(try load(UInt64.self, what: what))
        case .int64: return .int64(try load(Int64.self, what: what))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what: what)))
        case .array:
            let headerOffset = offset
            guard depth < GGUFFile.maxArrayNesting else { throw .arrayNestingTooDeep(key: key, offset: headerOffset) }
            let rawElementType = try u32(what: "array element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawElementType) else {
                throw .unknownValueType(raw: rawElementType, key: key, offset: headerOffset)
            }
            let countOffset = offset
            let count = try u64(what: "array length of '\(key)'")
            guard count <= UInt64(remaining / elementType.minimumEncodedSize) else {
                throw .countTooLarge(what: "array length of '\(key)'", count: count, offset: countOffset, fileSize: buffer.count)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { items.append(try value(of: elementType, key: key, depth: depth + 1)) }
            return .array(elementType: elementType, items)
        }
    }
}
