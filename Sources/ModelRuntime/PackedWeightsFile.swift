// Packed Q8_0 weights kept in a file beside the model, so that the VNNI kernels' layout (16 rows
// interleaved, see CKernels/q8_0_packed.c) is also a view into a read-only mapping, never a heap copy:
// after the first load nothing is repacked, every process serving the model shares the page cache's
// copy, and under memory pressure the kernel drops those pages instead of swapping them.
//
// The file is a GGUF holding each packed matrix under its source tensor's name, type and shape, stamped
// with the packing layout and the source file's size and modification time. A stamp or a shape that does
// not match, or a damaged file, means it is written again (to a temporary file renamed into place).

import Foundation
import GGUF
import Kernels

/// Where the Q8_0 matrices' packed layout comes from.
package enum WeightPacking: Sendable, Equatable {
    /// Read the GGUF layout as it is (the non-VNNI kernels).
    case unpacked
    /// Pack into heap memory at load, dropping the source pages.
    case inMemory
    /// Map packed matrices from this file, writing it first if it is missing or stale; pack in memory if
    /// it cannot be written.
    case file(String)

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

enum PackedWeightsFile {
    static let layout = "q8_0 rows interleaved by 16, v1"
    enum Key {
        static let layout = "tally.packed.layout"
        static let sourceSize = "tally.packed.source_size"
        static let sourceModified = "tally.packed.source_mtime_ns"
    }

    /// Matrices the packed kernel takes: Q8_0 with rows in groups of 16.
    static func packable(_ m: WeightMatrix) -> Bool { m.type == .q8_0 && m.rows % 16 == 0 && m.columns % 32 == 0 }

    /// The mapping of `path` if it holds `matrices` packed from `source`; otherwise writes it and maps the
    /// new file. nil when it can neither be read nor written (a read-only directory, a full disk).
    static func open(path: String, source: GGUFFile, matrices: [WeightMatrix]) -> (file: GGUFFile, written: Bool)? {
        guard let stamp = stamp(of: source.path) else { return nil }
        if let file = try? GGUFFile(path: path, populate: true), matches(file, stamp: stamp, matrices: matrices) {
            return (file, false)
        }
        var metadata = GGUFMetadata()
        metadata.set(GGUFKey.alignment, .uint32(64))
        metadata.set(Key.layout, .string(layout))
        metadata.set(Key.sourceSize, .uint64(UInt64(stamp.size)))
        metadata.set(Key.sourceModified, .int64(Int64(stamp.modified)))
        let plans = matrices.map { GGUFTensorPlan(name: $0.name, type: .q8_0, dimensions: [$0.columns, $0.rows]) }
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
