// Hand-assembles GGUF bytes field by field, so tests can write both valid files and every kind of
// corrupt one (bad counts, lengths, types, offsets) exactly where they want the fault.

import Foundation
import GGUF

package struct GGUFBytes {
    package var sink = ByteSink()
    package init() {}

    package var bytes: [UInt8] { sink.bytes }
    package var count: Int { sink.bytes.count }

    /// Magic and version.
    package mutating func header(version: UInt32 = 3, tensorCount: UInt64, kvCount: UInt64) {
        sink.append(contentsOf: GGUFFile.magic)
        sink.u32(version)
        sink.u64(tensorCount)
        sink.u64(kvCount)
    }

    package mutating func kv(_ key: String, _ value: GGUFValue) {
        sink.string(key)
        sink.u32(value.type.rawValue)
        sink.value(value)
    }

    package mutating func tensorInfo(_ name: String, dimensions: [UInt64], type: UInt32, offset: UInt64) {
        sink.string(name)
        sink.u32(UInt32(dimensions.count))
        for d in dimensions { sink.u64(d) }
        sink.u32(type)
        sink.u64(offset)
    }

    package mutating func u32(_ v: UInt32) { sink.u32(v) }
    package mutating func u64(_ v: UInt64) { sink.u64(v) }
    package mutating func raw(_ bytes: [UInt8]) { sink.append(contentsOf: bytes) }
    package mutating func pad(to alignment: Int) {
        sink.append(contentsOf: [UInt8](repeating: 0, count: alignUp(count, alignment) - count))
    }
}

/// A fresh temporary directory, removed when the value is released.
package final class TemporaryDirectory: @unchecked Sendable {
    package let path: String

    package init() throws {
        path = NSTemporaryDirectory() + "tally-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    package func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Writes bytes to `name` in the directory and returns the path.
    package func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
}

/// The package root, found from this source file's location (tests use it to find `models/`).
package let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The default model if `tally pull` has run (or `$TALLY_MODEL` names one), else nil.
package func defaultModelPath() -> String? {
    if let env = ProcessInfo.processInfo.environment["TALLY_MODEL"], FileManager.default.fileExists(atPath: env) { return env }
    let path = packageRoot + "/models/SmolLM2-135M-Instruct-Q8_0.gguf"
    return FileManager.default.fileExists(atPath: path) ? path : nil
}
