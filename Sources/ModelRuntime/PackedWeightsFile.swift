// Packed Q8_0 weights kept in a file beside the model, so that the VNNI kernels' layout (16 rows
// interleaved, see CKernels/q8_0_packed.c) is also a view into a read-only mapping, never a heap copy:
// after the first load nothing is repacked, every process serving the model shares the page cache's
// copy, and under memory pressure the kernel drops those pages instead of swapping them.
//
// The file is a GGUF holding each packed matrix under its source tensor's name, type and shape, stamped
// with the packing layout, the source file's size and modification time, and checksums of its data in
// 64 KiB chunks. A stamp or a shape that does not match, a damaged file or a chunk whose checksum differs
// (bit-rot, tampering) means it is written again (to a temporary file renamed into place): a packed file
// never silently changes outputs. A load checks every 16th chunk (a few ms for SmolLM2); `tally serve
// --verify` checks every chunk.

import Foundation
import GGUF
import Kernels

/// Where the Q8_0 matrices' packed layout comes from.
package enum WeightPacking: Sendable, Equatable {
    /// Read the GGUF layout as it is (the non-VNNI kernels).
    case unpacked
    /// Pack into heap memory at load, dropping the source pages.
    case inMemory
    /// Map packed matrices from this file, writing it first if it is missing, stale or damaged; pack in
    /// memory if it cannot be written. `fullCheck` verifies every data chunk's checksum, not a sample.
    case file(String, fullCheck: Bool = false)

    /// The packed file's default path: beside the model.
    package static func filePath(forModel path: String) -> String { path + ".tally-packed" }
}

/// How a loaded model's matrices are held, for the load log and the tests.
package enum WeightSource: Sendable, Equatable, CustomStringConvertible {
    case gguf
    case packedInMemory
    /// Views into the packed file's mapping; `written` when this load had to write it.
    case packedFile(path: String, written: Bool)

    package var description: String {
        switch self {
        case .gguf: "mapped from the GGUF file"
        case .packedInMemory: "packed in memory (the packed file beside the model could not be written)"
        case .packedFile(let path, let written): "mapped from \(path)\(written ? " (written now, reused on later loads)" : "")"
        }
    }
}

package enum PackedWeightsFile {
    static let layout = "q8_0 rows interleaved by 16, v1"
    enum Key {
        static let layout = "tally.packed.layout"
        static let sourceSize = "tally.packed.source_size"
        static let sourceModified = "tally.packed.source_mtime_ns"
        static let checksums = "tally.packed.checksums"
    }
    /// Checksum granularity, and the share of chunks a load verifies (1 in `sampleStride`).
    static let checksumChunk = 1 << 16
    static let sampleStride = 16

    /// Matrices the packed kernel takes: Q8_0 with rows in groups of 16.
    static func packable(_ m: WeightMatrix) -> Bool { m.type == .q8_0 && m.rows % 16 == 0 && m.columns % 32 == 0 }

    /// The mapping of `path` if it holds `matrices` packed from `source`; otherwise writes it and maps the
    /// new file. nil when it can neither be read nor written (a read-only directory, a full disk).
    static func open(path: String, source: GGUFFile, matrices: [WeightMatrix], fullCheck: Bool = false) -> (file: GGUFFile, written: Bool)? {
        guard let stamp = stamp(of: source.path) else { return nil }
        if let file = try? GGUFFile(path: path, populate: true), matches(file, stamp: stamp, matrices: matrices),
           checksumsMatch(file, full: fullCheck) {
            return (file, false)
        }
        var metadata = GGUFMetadata()
        metadata.set(GGUFKey.alignment, .uint32(64))
        metadata.set(Key.layout, .string(layout))
        metadata.set(Key.sourceSize, .uint64(UInt64(stamp.size)))
        metadata.set(Key.sourceModified, .int64(Int64(stamp.modified)))
        let plans = matrices.map { GGUFTensorPlan(name: $0.name, type: .q8_0, dimensions: [$0.columns, $0.rows]) }
        // The header comes before the data, so the checksums come from a first packing pass into scratch.
        let largest = plans.map(\.byteCount).max() ?? 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largest, 1), alignment: 64)
        defer { scratch.deallocate() }
        var sums: [UInt64] = []
        for (m, plan) in zip(matrices, plans) {
            packQ8(m.data, rows: m.rows, columns: m.columns, into: scratch.baseAddress!)
            appendChecksums(of: UnsafeRawBufferPointer(rebasing: scratch[..<plan.byteCount]), to: &sums)
        }
        metadata.set(Key.checksums, .array(elementType: .uint64, sums.map { .uint64($0) }))
        do {
            try GGUFWriter.write(to: path, metadata: metadata, tensors: plans) { i in
                let m = matrices[i]
                return [UInt8](unsafeUninitializedCapacity: plans[i].byteCount) { buffer, count in
                    packQ8(m.data, rows: m.rows, columns: m.columns, into: buffer.baseAddress!)
                    count = plans[i].byteCount
                    PackedStorage.dropPages(m.data, count)  // so the source and the packed file are never both resident
                }
            }
            let file = try GGUFFile(path: path, populate: true)
            return matches(file, stamp: stamp, matrices: matrices) ? (file, true) : nil
        } catch {
            return nil
        }
    }

    /// Whether every tensor's data matches the checksums stored with it, chunk by chunk in tensor order:
    /// all chunks when `full`, else every `sampleStride`-th. False for a file without checksums. Safe on
    /// any parsed GGUF (fuzzed: `tally-fuzz gguf` runs it on every file it accepts).
    package static func checksumsMatch(_ file: GGUFFile, full: Bool) -> Bool {
        guard case .array(.uint64, let stored)? = file.metadata[Key.checksums] else { return false }
        var index = 0
        for tensor in file.tensors {
            let data = file.data(of: tensor)
            var offset = 0
            while offset < data.count {
                let end = min(offset + checksumChunk, data.count)
                guard index < stored.count, case .uint64(let expected) = stored[index] else { return false }
                if full || index % sampleStride == 0,
                   checksum(UnsafeRawBufferPointer(rebasing: data[offset..<end])) != expected { return false }
                index += 1
                offset = end
            }
        }
        return index == stored.count
    }

    static func appendChecksums(of data: UnsafeRawBufferPointer, to sums: inout [UInt64]) {
        var offset = 0
        while offset < data.count {
            let end = min(offset + checksumChunk, data.count)
            sums.append(checksum(UnsafeRawBufferPointer(rebasing: data[offset..<end])))
            offset = end
        }
    }

    /// A 64-bit checksum at memory speed: four independent lanes of xor-multiply-xorshift over 8-byte words
    /// (each step a bijection, so any change to one word changes the result), then the tail bytes.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let prime: UInt64 = 0x9E37_79B9_7F4A_7C15
        @inline(__always) func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
            let m = (h ^ w) &* prime
            return m ^ (m >> 29)
        }
        var lanes: (UInt64, UInt64, UInt64, UInt64) = (1, 2, 3, 4)
        let words = bytes.count / 8
        var i = 0
        while i + 4 <= words {
            lanes.0 = mix(lanes.0, bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            lanes.1 = mix(lanes.1, bytes.loadUnaligned(fromByteOffset: i * 8 + 8, as: UInt64.self))
            lanes.2 = mix(lanes.2, bytes.loadUnaligned(fromByteOffset: i * 8 + 16, as: UInt64.self))
            lanes.3 = mix(lanes.3, bytes.loadUnaligned(fromByteOffset: i * 8 + 24, as: UInt64.self))
            i += 4
        }
        var h = mix(mix(mix(lanes.0, lanes.1), lanes.2), lanes.3)
        for byte in bytes[(i * 8)...] { h = mix(h, UInt64(byte)) }
        return mix(h, UInt64(bytes.count))
    }

    private struct Stamp: Equatable { var size: Int, modified: Int }

    private static func stamp(of path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if os(Linux)
        let modified = info.st_mtim
        #else
        let modified = info.st_mtimespec
        #endif
        return Stamp(size: Int(info.st_size), modified: Int(modified.tv_sec) * 1_000_000_000 + Int(modified.tv_nsec))
    }

    private static func matches(_ file: GGUFFile, stamp: Stamp, matrices: [WeightMatrix]) -> Bool {
        guard case .string(layout)? = file.metadata[Key.layout],
              file.metadata[Key.sourceSize]?.integer == stamp.size,
              file.metadata[Key.sourceModified]?.integer == stamp.modified,
              file.tensors.count == matrices.count else { return false }
        return matrices.allSatisfy { m in
            guard let t = file.tensor(named: m.name) else { return false }
            return t.type == .q8_0 && t.dimensions == [m.columns, m.rows]
        }
    }
}
