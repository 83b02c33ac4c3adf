// `tally list`: the GGUF models in the models folder, with what a user needs to pick one.

import ArgumentParser
import Foundation
import GGUF
import ModelRuntime

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the GGUF models in the models folder: architecture, parameters, weight type, size.",
        discussion: "Example: tally list --models-dir ~/models")

    @Option(help: "Folder to list (default: $TALLY_MODELS, else the checkout's models/, else ~/.local/share/tally/models).") var modelsDir: String?
    @Flag(help: "One JSON object per model.") var json = false

    func run() throws {
        let directory = modelsDir ?? DefaultModel.modelsDirectory
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".gguf") }.sorted()
        if names.isEmpty { printError("no .gguf files in \(directory); `tally pull` fetches the default model") }
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let file = try? GGUFFile(path: path) else {
                print(json ? "{\"file\":\"\(name)\",\"error\":\"not a readable GGUF\"}" : "\(name)  (not a readable GGUF)")
                continue
            }
            let architecture = (try? file.metadata.architecture()) ?? "?"
            let parameters = file.tensors.reduce(0) { $0 + $1.elementCount }
            // The weight type: the type holding most of the tensor bytes.
            var bytesByType: [String: Int] = [:]
            for t in file.tensors { bytesByType[t.type.name, default: 0] += t.byteCount }
            let type = bytesByType.max { $0.value < $1.value }?.key ?? "?"
            let mib = Double(file.fileSize) / 1_048_576
            if json {
                print("{\"file\":\"\(name)\",\"architecture\":\"\(architecture)\",\"parameters\":\(parameters),\"type\":\"\(type)\",\"bytes\":\(file.fileSize)}")
            } else {
                print("\(name)  \(architecture)  \(formatParameters(parameters))  \(type)  \(String(format: "%.1f", mib)) MiB")
            }
        }
    }

    private func formatParameters(_ n: Int) -> String {
        n >= 1_000_000_000 ? String(format: "%.2fB", Double(n) / 1e9) : n >= 1_000_000 ? String(format: "%.0fM", Double(n) / 1e6)
            : String(format: "%.0fK", Double(n) / 1e3)
    }
}
