// `tally inspect MODEL`: metadata and tensor table of a GGUF file, as text or JSON.

import ArgumentParser
import GGUF
import ModelRuntime

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a GGUF file's metadata and tensors.",
        discussion: "Example: tally inspect qwen2.5-0.5b-instruct --json")

    @Argument(help: "GGUF file or catalog name (default: the model from `tally pull`).") var model: String?
    @Flag(help: "Print JSON for machines.") var json = false
    @Flag(help: "With --json, print long arrays (such as the vocabulary) in full.") var fullArrays = false

    func run() throws {
        let file = try GGUFFile(path: Pull.modelPath(model))
        print(json ? try file.dumpJSON(fullArrays: fullArrays) : file.dumpText())
    }
}
