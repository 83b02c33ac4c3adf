// `tally bench`: drive a workload against an OpenAI-compatible URL or the engine in process, print the
// results table, optionally write JSON and HTML; `tally bench compare A.json B.json`. Logic is in BenchKit.

import ArgumentParser
import BenchKit
import Foundation
import ModelRuntime
import Metering
import GGUF
import Tokenization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark a server or the engine: throughput, latency percentiles and cost per 1M tokens.",
        discussion: "Example: tally bench run --workload bench/workloads/short-chat.json --url http://127.0.0.1:8080 --json a.json",
        subcommands: [BenchRun.self, BenchCompare.self], defaultSubcommand: BenchRun.self)
}

struct BenchRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a workload (bench/workloads/*.json) against --url or --in-process.",
        discussion: "Example: tally bench run --workload bench/workloads/shared-prefix.json --in-process --concurrency 1,4,16 --html bench.html")

    @Option(help: "Workload JSON file (see bench/workloads/README.md).") var workload: String
    @Option(help: "Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8080.") var url: String?
    @Flag(help: "Drive the engine in this process (no HTTP).") var inProcess = false
    @Flag(help: "Allow a --url that is not a loopback address.") var allowRemote = false
    @Option(help: "GGUF model: loaded for --in-process; for --url its tokenizer builds the prompts and its shape prices the GPU-equivalent (default: the pulled default model).")
    var modelFile: String?
    @Option(help: "The `model` field sent over HTTP (vLLM needs it).") var modelName: String?
    @Option(help: "API key sent as 'Authorization: Bearer KEY'.") var apiKey: String?
    @Option(help: "Sweep these client counts, e.g. 1,4,16 (overrides the workload).") var concurrency: String?
    @Option(help: "Override the workload's requests per run.") var requests: Int?
    @Option(help: "Override the workload's time limit per run, seconds.") var timeLimit: Double?
    @Option(help: "Goodput objective, e.g. ttft=500,tpot=50 (milliseconds).") var slo: String?
    @Option(help: "Write the results as JSON here.") var json: String?
    @Option(help: "Write an HTML page with charts here.") var html: String?
    @OptionGroup var pricingOptions: PricingOptions
    @Option(help: "In-process: compute threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "In-process: KV cache memory in MiB.") var kvMemory = 512
    @Option(help: "In-process: KV cache values, f16 (the default), f32 or q8_0.") var kvType: KVType = .default
    @Option(help: "In-process: most requests running at once.") var maxSeqs = 16

    func validate() throws {
        if (url == nil) == !inProcess { throw ValidationError("give exactly one of --url and --in-process") }
    }

    func run() async throws {
        var workload = try Workload.load(path: workload)
        if let requests { workload.requests = requests }
        if let timeLimit { workload.timeLimitSeconds = timeLimit }
        try workload.validate(path: self.workload)
        let levels = try concurrency.map { text in
            try text.split(separator: ",").map {
                guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                    throw ValidationError("--concurrency takes integers >= 1 separated by commas, e.g. 1,4,16")
                }
                return n
            }
        }
        // The same flags and profiles as `serve` and `report`, so all three price alike.
        let pricing = try pricingOptions.pricing()

        let defaultPath = DefaultModel.smolLM2.path()
        let modelPath = modelFile ?? defaultPath
        let progress = ProgressBox()
        var options = BenchOptions(concurrency: levels, slo: try slo.map { try SLO(parsing: $0) })
        let report: BenchReport
        if inProcess {
            guard FileManager.default.fileExists(atPath: modelPath) else {
                throw ValidationError("no model at \(modelPath); run `tally pull` or pass --model-file")
            }
            let loaded = try LoadedModel(path: modelPath, threads: threads, kvMemoryMiB: kvMemory, kvType: kvType, maxSeqs: maxSeqs)
            options.cost = CostInputs(pricing: pricing, shape: loaded.shape, shapeSource: (modelPath as NSString).lastPathComponent)
            let target = InProcessTarget(engine: loaded.engine, stopTokenIDs: loaded.tokenizer.endOfGenerationIDs,
                                         label: "in-process \(loaded.name) (\(threads) threads)")
            report = try await BenchSession.run(workload, target: target, tokenizer: loaded.tokenizer, options: options,
                                                log: { printError($0) }, progress: progress.update)
            loaded.engine.shutdown(deadline: .seconds(5))
        } else {
            let url = self.url ?? ""
            try RunGuard.checkTarget(url: url, allowRemote: allowRemote)
            var tokenizer: Tokenizer?
            var shape = ModelShape.unknown
            var shapeSource = "no model file (GPU-equivalent is 0; pass --model-file)"
            if FileManager.default.fileExists(atPath: modelPath) {
                let file = try GGUFFile(path: modelPath)
                tokenizer = try Tokenizer(metadata: file.metadata)
                shape = ModelShape(file: file)
                shapeSource = modelFile == nil
                    ? "the default model's shape (\((modelPath as NSString).lastPathComponent)); pass --model-file if the server runs another"
                    : (modelPath as NSString).lastPathComponent
            } else {
                printError("no model file: prompts count words, not tokens, and the GPU-equivalent cost is 0; pass --model-file")
            }
            options.cost = CostInputs(pricing: pricing, shape: shape, shapeSource: shapeSource)
            let maxClients = max(levels?.max() ?? workload.concurrency.max() ?? 1, workload.arrivalRate == nil ? 1 : workload.requests)
            let target = HTTPTarget(baseURL: url, api: workload.api, model: modelName, apiKey: apiKey,
                                    connections: maxClients, requestTimeoutSeconds: Int64(workload.timeLimitSeconds.rounded(.up)))
            do {
                report = try await BenchSession.run(workload, target: target, tokenizer: tokenizer, options: options,
                                                    log: { printError($0) }, progress: progress.update)
            } catch {
                await target.shutdown()
                throw error
            }
            await target.shutdown()
        }
        print(report.table())
        if let json {
            try report.write(to: json)
            printError("wrote \(json)")
        }
        if let html {
            try Data(report.html().utf8).write(to: URL(fileURLWithPath: html))
            printError("wrote \(html)")
        }
    }
}

struct BenchCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Print two result files (from --json) side by side with the ratio B/A.",
        discussion: "Example: tally bench compare tally.json llama-server.json")

    @Argument(help: "Results A (the baseline).") var a: String
    @Argument(help: "Results B.") var b: String

    func run() throws {
        let reportA = try BenchReport.load(path: a)
        let reportB = try BenchReport.load(path: b)
        print(BenchReport.compare(reportA, reportB, labelA: a, labelB: b))
    }
}

/// The progress line shared by the concurrent requests of a run.
private final class ProgressBox: @unchecked Sendable {
    private let lock = NSLock()
    private var line = ProgressLine()

    func update(_ label: String, _ done: Int, _ total: Int) {
        lock.lock()
        defer { lock.unlock() }
        line.update(done, of: total, label)
    }
}
