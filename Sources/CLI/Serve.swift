// `tally serve`: load a model (the default one, pulled if needed) and serve it over OpenAI-compatible HTTP.

import ArgumentParser
import Engine
import Foundation
import Metering
import ModelRuntime
import OpenAIServer
import Tokenization

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve a model over an OpenAI-compatible HTTP API.")

    @Option(help: "GGUF model (default: SmolLM2-135M-Instruct Q8_0, pulled on first use).") var model: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Compute threads (default: the number of cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "KV cache blocks of 16 positions (overrides --kv-memory).") var kvBlocks: Int?
    @Option(help: "KV cache memory in MiB.") var kvMemory = 512
    @Option(help: "KV cache values: f16 (llama.cpp's type) or f32 (twice the memory per position).") var kvType: KVType = .default
    @Option(help: "Most tokens per engine step.") var maxBatchTokens = 512
    @Option(help: "Most requests running at once.") var maxSeqs = 16
    @Option(help: "Most requests waiting; more get 429.") var maxQueue = 256
    @Option(help: "An API key clients must send as 'Authorization: Bearer KEY' (repeatable).") var apiKey: [String] = []
    @Option(help: "A file of API keys, one per line.") var apiKeyFile: String?
    @Option(help: "Chat template name to use instead of the one the model declares.") var chatTemplate: String?
    @Flag(help: "Disable the prefix KV cache.") var noPrefixCache = false
    @Option(help: "Usage database (SQLite; default: $TALLY_DB or ~/.local/share/tally/usage.db).") var db: String?
    @Flag(help: "Do not record usage or price requests (no usage.cost, no budgets).") var noMetering = false
    @Option(help: "Budget file: output-token caps and spend limits per API key (README, Budgets).") var budgets: String?
    @OptionGroup var pricingOptions: PricingOptions

    func run() async throws {
        let path = try model ?? Pull.defaultModelPulledIfMissing()
        let llama = try LlamaModel(path: path, threads: threads)
        printError("weights: \(llama.weights.source)")
        let tokenizer = try Tokenizer(metadata: llama.file.metadata)

        var options = EngineOptions()
        options.kvCapacity = kvBlocks.map(KVCapacity.blocks) ?? .memoryMiB(kvMemory)
        options.kvType = kvType
        options.maxBatchTokens = maxBatchTokens
        options.maxSeqs = maxSeqs
        options.maxQueue = maxQueue
        options.prefixCaching = !noPrefixCache
        let engine = EngineFactory.engine(model: llama, options: options)

        var config = ServerConfig()
        config.host = host
        config.port = port
        config.apiKeys = apiKey
        if let apiKeyFile {
            config.apiKeys += try String(contentsOfFile: apiKeyFile, encoding: .utf8)
                .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        config.chatTemplateOverride = chatTemplate
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var store: SQLiteUsageStore?
        if !noMetering {
            let pricing = try pricingOptions.pricing()
            let policy = try budgets.map { try BudgetPolicy.load(path: $0, prices: pricing.prices) } ?? .unlimited
            let dbPath = db ?? defaultUsageDatabase()
            try FileManager.default.createDirectory(atPath: (dbPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let opened = try await SQLiteUsageStore.open(path: dbPath)
            store = opened
            config.meter = Meter(store: opened, pricing: pricing, budgets: policy)
            config.modelShape = ModelShape(file: llama.file)
            printError("metering to \(dbPath); prices \(pricing.prices.name) (\(pricing.prices.asOf)), machine \(pricing.machine.name), GPU \(pricing.gpu.name)")
            for (i, key) in config.apiKeys.enumerated() { printError("API key \(i + 1) of \(config.apiKeys.count) bills tenant \(Tenant.fingerprint(apiKey: key))") }
        }
        let app = try buildApplication(config: config, engine: engine, tokenizer: tokenizer, modelName: name)
        printError("serving \(name) on http://\(host):\(port) (\(threads) threads, \(engine.config.kvBlocks) KV blocks = \(engine.config.kvBlocks * engine.config.blockSize) positions in \(kvType.rawValue), max \(maxSeqs) running)")
        try await runServer(app, config: config)
        engine.shutdown(deadline: .seconds(5))
        // Requests aborted by the shutdown are recorded in the background: let them land, then close.
        await config.meter?.flush()
        try? await store?.close()
    }
}

extension KVType: ExpressibleByArgument {}
