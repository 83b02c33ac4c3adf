// Writes a GGUF v3 file: header, metadata in order, tensor infos with aligned offsets, then each
// tensor's data padded to the alignment (ggml's layout, so a read-then-write round trip is exact).
// Writes go to a temporary file beside the target that is renamed into place only when complete.

import Foundation

package struct GGUFTensorPlan: Equatable, Sendable {
    package var name: String
    package var type: GGMLType
    package var dimensions: [Int]

    package init(name: String, type: GGMLType, dimensions: [Int]) {
        self.name = name
        self.type = type
        self.dimensions = dimensions
    }

    package var byteCount: Int { type.byteCount(elements: dimensions.reduce(1, *)) }
}

package enum GGUFWriter {
    /// The bytes before the data section: header, metadata, tensor infos, padding.
    package static func header(metadata: GGUFMetadata, tensors: [GGUFTensorPlan]) -> [UInt8] {
        let alignment = metadata[GGUFKey.alignment]?.integer ?? GGUFFile.defaultAlignment
        var out = ByteSink()
        out.append(contentsOf: GGUFFile.magic)
        out.u32(GGUFFile.supportedVersion)
        out.u64(UInt64(tensors.count))
        out.u64(UInt64(metadata.count))
        for (key, value) in metadata.entries {
            out.string(key)
            out.u32(value.type.rawValue)
            out.value(value)
        }
        var offset = 0
        for t in tensors {
            out.string(t.name)
            out.u32(UInt32(t.dimensions.count))
            for d in t.dimensions { out.u64(UInt64(d)) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(offset))
            offset += alignUp(t.byteCount, alignment)
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: alignUp(out.bytes.count, alignment) - out.bytes.count))
        return out.bytes
    }

    /// Writes the file atomically. `data(i)` returns tensor i's bytes, which must be exactly its size.
    package static func write(
        to path: String, metadata: GGUFMetadata, tensors: [GGUFTensorPlan],
        data: (Int) throws -> [UInt8]
    ) throws {
        let alignment = metadata[GGUFKey.alignment]?.integer ?? GGUFFile.defaultAlignment
        // Unique per call: two loaders in one process may write the same file at once; the last rename wins.
        let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw GGUFError.writeFailed(path: path, reason: "cannot create \(temporary)")
        }
        var committed = false
        defer { if !committed { try? FileManager.default.removeItem(atPath: temporary) } }
        let handle: FileHandle
        do { handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary)) } catch {
            throw GGUFError.writeFailed(path: temporary, reason: "\(error)")
        }
        defer { try? handle.close() }
        /// File errors become writeFailed; errors from `data` pass through unchanged.
        func io(_ body: () throws -> Void) throws {
            do { try body() } catch { throw GGUFError.writeFailed(path: temporary, reason: "\(error)") }
        }
        try io { try handle.write(contentsOf: header(metadata: metadata, tensors: tensors)) }
        for (i, t) in tensors.enumerated() {
            let bytes = try data(i)
            guard bytes.count == t.byteCount else {
                throw GGUFError.tensorDataSize(tensor: t.name, expected: t.byteCount, got: bytes.count)
            }
            let padding = alignUp(bytes.count, alignment) - bytes.count
            try io {
                try handle.write(contentsOf: bytes)
                if padding > 0 { try handle.write(contentsOf: [UInt8](repeating: 0, count: padding)) }
            }
        }
        try io { try handle.synchronize() }
        guard rename(temporary, path) == 0 else {
            throw GGUFError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        committed = true
    }
}

/// Little-endian encoder of GGUF fields.
package struct ByteSink {
    package var bytes: [UInt8] = []
    package init() {}

    package mutating func append(contentsOf other: [UInt8]) { bytes.append(contentsOf: other) }
    package mutating func integer<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    package mutating func u32(_ v: UInt32) { integer(v) }
    package mutating func u64(_ v: UInt64) { integer(v) }
    package mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    package mutating func value(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): integer(v)
        case .int8(let v): integer(v)
        case .uint16(let v): integer(v)
        case .int16(let v): integer(v)
        case .uint32(let v): integer(v)
        case .int32(let v): integer(v)
        case .float32(let v): integer(v.bitPattern)
        case .bool(let v): integer(UInt8(v ? 1 : 0))
        case .string(let v): string(v)
        case .uint64(let v): integer(v)
        case .int64(let v): integer(v)
        case .float64(let v): integer(v.bitPattern)
        case .array(let elementType, let items):
            u32(elementType.rawValue)
            u64(UInt64(items.count))
            for item in items { self.value(item) }
        }
    }
}
