// `tally inspect MODEL`: metadata and tensor table of a GGUF file, as text or JSON.

import ArgumentParser
import GGUF
import ModelRuntime

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a GGUF file's metadata and tensors.")

    @Argument(help: "GGUF file (default: the model from `tally pull`).") var model: String?
    @Flag(help: "Print JSON for machines.") var json = false
    @Flag(help: "With --json, print long arrays (such as the vocabulary) in full.") var fullArrays = false

    func run() throws {
        let file = try GGUFFile(path: model ?? DefaultModel.smolLM2.path())
        print(json ? try file.dumpJSON(fullArrays: fullArrays) : file.dumpText())
    }
}
