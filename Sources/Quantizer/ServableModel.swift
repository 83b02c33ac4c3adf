// What `tally serve --model FILE` and `tally generate` load: the file itself when its matrices are Q8_0
// already, else a Q8_0 conversion of it (K-quants, Q4_0, F16, BF16... as users download them), written
// once beside the source and reused, as the packed weights file is. The conversion is stamped with the
// source's size and modification time, so a new download under the same name is converted again.

import Foundation
import GGUF

package enum ServableModel {
    static let sourceSizeKey = "tally.converted.source_size"
    static let sourceModifiedKey = "tally.converted.source_mtime_ns"

    /// Where the conversion of `path` goes: beside it, or in the temporary directory when the model's
    /// directory cannot be written.
    package static func convertedPath(for path: String) -> String {
        let beside = path + ".tally-q8_0.gguf"
        let directory = (path as NSString).deletingLastPathComponent
        if FileManager.default.isWritableFile(atPath: directory.isEmpty ? "." : directory) { return beside }
        return (NSTemporaryDirectory() as NSString).appendingPathComponent((beside as NSString).lastPathComponent)
    }

    /// Whether some matrix of `file` would become Q8_0 (Quantizer.targetType) but is not Q8_0 yet.
    package static func needsConversion(_ file: GGUFFile) -> Bool {
        file.tensors.contains { Quantizer.targetType(for: $0) == .q8_0 && $0.type != .q8_0 }
    }

    /// The path to load for the model at `path`, converting it first when needed (`log` says so).
    package static func path(for path: String, log: (String) -> Void = { _ in }) throws -> String {
        let source = try GGUFFile(path: path)
        guard needsConversion(source) else { return path }
        guard let stamp = stamp(of: path) else { return path }
        let converted = convertedPath(for: path)
        if let existing = try? GGUFFile(path: converted),
           existing.metadata[sourceSizeKey]?.integer == stamp.size, existing.metadata[sourceModifiedKey]?.integer == stamp.modified {
            log("weights: using \(converted), the Q8_0 conversion of \(path)")
            return converted
        }
        let types = Set(source.tensors.filter { Quantizer.targetType(for: $0) == .q8_0 && $0.type != .q8_0 }.map(\.type.name)).sorted()
        log("weights: converting \(path) (\(types.joined(separator: ", "))) to Q8_0 in \(converted); later loads reuse it")
        _ = try Quantizer.quantize(input: path, output: converted,
                                   stamp: [(sourceSizeKey, .uint64(UInt64(stamp.size))), (sourceModifiedKey, .int64(Int64(stamp.modified)))])
        return converted
    }

    private static func stamp(of path: String) -> (size: Int, modified: Int)? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? Int, let date = attributes[.modificationDate] as? Date else { return nil }
        return (size, Int((date.timeIntervalSince1970 * 1e9).rounded()))
    }
}
