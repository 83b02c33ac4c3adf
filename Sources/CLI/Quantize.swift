// `tally quantize IN OUT [--type q8_0]`: any supported GGUF -> Q8_0 GGUF, written atomically.

import ArgumentParser
import GGUF
import Quantizer

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert every 2-D weight matrix of a GGUF model (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K-Q6_K, IQ4_NL, Q8_0) to Q8_0.",
        discussion: "Example: tally quantize models/qwen2.5-0.5b-instruct-q4_k_m.gguf models/qwen2.5-0.5b-instruct-q8_0.gguf")

    @Argument(help: "Input GGUF file.") var input: String
    @Argument(help: "Output GGUF file (written to a temporary file, then renamed).") var output: String
    @Option(help: "Target type; only q8_0.") var type: String = "q8_0"

    func run() throws {
        guard let target = GGMLType(name: type) else { throw ValidationError("unknown type '\(type)'; use q8_0") }
        var bar = ProgressLine()
        let summary = try Quantizer.quantize(input: input, output: output, type: target) { p in
            bar.update(p.index + 1, of: p.count, "\(p.name) \(p.from.name) -> \(p.to.name)")
        }
        print("wrote \(output): \(summary.tensorCount) tensors (\(summary.convertedCount) converted), \(summary.parameterCount) parameters, \(summary.tensorBytes) bytes of tensor data")
    }
}
