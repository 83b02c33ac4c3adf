// `tally serve`: load a model (the default one, pulled if needed) and serve it over OpenAI-compatible HTTP.

import ArgumentParser
import Engine
import Foundation
import Logging
import Metering
import ModelRuntime
import OpenAIServer
import Quantizer
import Tokenization

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over an OpenAI-compatible HTTP API.",
        discussion: """
            Every flag --some-flag can also be set as TALLY_SOME_FLAG in the environment (lists comma-separated, \
            toggles 1/0) and as "some-flag" in the JSON file of --config (or $TALLY_CONFIG); the command line wins \
            over the environment, which wins over the file.

            Examples:
              tally serve
              tally serve --model qwen2.5-0.5b-instruct --port 8081 --api-key-file keys.txt
              TALLY_PORT=8081 TALLY_LOG_FORMAT=json tally serve --config serve.json
            """)

    @Option(help: "A JSON file of serve settings: flag names to values (flags and TALLY_* variables override it).") var config: String?
    @Option(help: "GGUF file, or a catalog name (models/catalog.json), pulled on first use (default: SmolLM2-135M-Instruct Q8_0).") var model: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Compute threads (default: the number of cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "KV cache blocks of 16 positions (overrides --kv-memory).") var kvBlocks: Int?
    @Option(help: "KV cache memory in MiB.") var kvMemory = 512
    @Option(help: "KV cache values: f16 (llama.cpp's default), f32 (twice the memory per position) or q8_0 (1.88x the positions of f16 per MiB).") var kvType: KVType = .default
    @Option(help: "Seconds without requests after which KV memory holding no cached prefix goes back to the OS (0: never).")
    var idleRelease = 300.0
    @Option(help: "When idle, MiB of KV memory the prefix cache may keep; the least recently used beyond it go back to the OS (default: no limit).")
    var idlePrefixCacheMemory: Int?
    @Option(help: "Speculative decoding by prompt lookup: up to this many draft tokens per step, taken from where the request's last tokens occurred earlier in it (0: off). Output is unchanged.")
    var draftTokens = 0
    @Option(help: "Longest run of last tokens looked up for a draft.") var draftNgram = 3
    @Option(help: "Most tokens per engine step.") var maxBatchTokens = 512
    @Option(help: "Most requests running at once.") var maxSeqs = 16
    @Option(help: "Most requests waiting; more get 429.") var maxQueue = 256
    @Option(help: "An API key clients must send as 'Authorization: Bearer KEY' (repeatable); NAME:KEY names its tenant.") var apiKey: [String] = []
    @Option(help: "A file of API keys, one per line: KEY, NAME:KEY or NAME:sha256:HEX (the key's SHA-256); # starts a comment.")
    var apiKeyFile: String?
    @Option(help: "Another name clients may give as `model` for this model (repeatable); any other name gets 404.") var alias: [String] = []
    @Option(help: "Chat template name to use instead of the one the model declares.") var chatTemplate: String?
    @Option(help: "How /v1/embeddings pools a prompt's hidden states: mean, cls or last (default: the model's pooling_type, else last, as vLLM does for decoder models).")
    var pooling: Pooling?
    @Flag(help: "Check every checksum of the packed weights file beside the model at load (by default 1 chunk in 16; a mismatch rewrites the file).")
    var verify = false
    @Flag(help: "Disable the prefix KV cache.") var noPrefixCache = false
    @Flag(help: "Share prefix-cache blocks across API keys (by default each tenant's cache is its own, so no tenant can detect another's prompts).")
    var sharedPrefixCache = false
    @Option(help: "Usage database: a SQLite file (default: $TALLY_DB or ~/.local/share/tally/usage.db) or postgres://USER@HOST:PORT/DB.") var db: String?
    @Option(help: "With a postgres:// --db: the local SQLite file that holds records while PostgreSQL does not answer (default: spool-REPLICA.db beside the default usage database).")
    var spool: String?
    @Flag(help: "Do not record usage or price requests (no usage.cost, no budgets).") var noMetering = false
    @Flag(help: "Answer 503 instead of serving while usage records cannot be written (one request a second probes the store).")
    var requireMetering = false
    @Option(help: "This machine's name in reports (replicas; default: the host name).") var replica: String?
    @Option(help: "Seconds a connection may stay idle (no request in progress, or headers trickling in) before it is closed.")
    var idleTimeout = 60.0
    @Option(help: "Seconds a response may wait for a client that stopped reading before its connection is closed and its request aborted.")
    var writeTimeout = 30.0
    @Option(help: "Bytes of kernel send buffer per connection (SO_SNDBUF; default: the kernel's autotuning, up to 4 MiB).")
    var socketSendBuffer: Int?
    @Option(help: "Seconds in-flight requests may run after SIGTERM/SIGINT before they are cancelled (new ones are refused at once).")
    var drainSeconds = 30.0
    @Option(help: "Seconds between the run's heartbeats in the usage database (the bill of a crashed run ends at its last).") var heartbeatSeconds = 60
    @Option(help: "Folder of /v1/files and /v1/batches: uploaded files, batches and their results, kept across restarts (default: batches/ beside the default usage database).")
    var batchDir: String?
    @Option(help: "Batch lines in flight at once; they compute only while no interactive request runs or waits.") var batchSlots = 4
    @Option(help: "A key GET /metrics requires ('Authorization: Bearer KEY'; KEY or sha256:HEX); default: open.") var metricsKey: String?
    @Option(help: "Requests each API key may start per minute (429 with Retry-After beyond).") var rpm: Int?
    @Option(help: "Tokens (prompt plus max_tokens) each API key may ask for per minute.") var tpm: Int?
    @Option(help: "Budget file: output-token caps and spend limits per API key (README, Budgets).") var budgets: String?
    @Option(help: "Least severe log events written to stderr: trace, debug, info (one line per request), notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
    @Option(help: "Log lines as text (time level logger: message key=value...) or json (one object per line).") var logFormat: LogFormat = .text
    @Option(help: "Seconds between stats lines (tokens/s, running, waiting, KV use, prefix-cache hit rate) while busy; 0 turns them off.")
    var statsSeconds = 10.0
    @OptionGroup var pricingOptions: PricingOptions

    private var logger: Logger { Logger(label: "tally") }

    /// Flag values that cannot work, refused before anything is loaded.
    private func checkFlags() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw CLIError(message) } }
        try check((1...65535).contains(port), "--port \(port) is not a TCP port; use 1-65535")
        try check(threads >= 1, "--threads \(threads) must be at least 1")
        try check(maxSeqs >= 1, "--max-seqs \(maxSeqs) must be at least 1")
        try check(maxBatchTokens >= 1, "--max-batch-tokens \(maxBatchTokens) must be at least 1")
        try check(maxQueue >= 0, "--max-queue \(maxQueue) must be at least 0")
        try check(idleTimeout > 0 && idleTimeout <= 86_400, "--idle-timeout \(idleTimeout) must be between 0 and 86400 seconds")
        try check(writeTimeout > 0 && writeTimeout <= 86_400, "--write-timeout \(writeTimeout) must be between 0 and 86400 seconds")
        try check(socketSendBuffer.map { $0 >= 1024 && $0 <= 1 << 30 } ?? true, "--socket-send-buffer must be between 1024 and 1073741824 bytes")
        try check(!(requireMetering && noMetering), "--require-metering and --no-metering contradict each other; pick one")
        try check(drainSeconds >= 0 && drainSeconds <= 3600, "--drain-seconds \(drainSeconds) must be between 0 and 3600")
        _ = try parsedMetricsKey()
        if let rpm { try check(rpm >= 1, "--rpm \(rpm) must be at least 1") }
        if let tpm { try check(tpm >= 1, "--tpm \(tpm) must be at least 1") }
        try check(statsSeconds >= 0 && statsSeconds <= 86_400, "--stats-seconds \(statsSeconds) must be between 0 and 86400")
        try check(heartbeatSeconds >= 1, "--heartbeat-seconds \(heartbeatSeconds) must be at least 1")
        try check(idleRelease >= 0 && idleRelease <= 86_400 * 7, "--idle-release \(idleRelease) must be between 0 and 604800 seconds")
        if let idlePrefixCacheMemory { try check(idlePrefixCacheMemory >= 0, "--idle-prefix-cache-memory must be at least 0") }
        try check((0...64).contains(draftTokens), "--draft-tokens \(draftTokens) must be between 0 and 64")
        try check((1...16).contains(draftNgram), "--draft-ngram \(draftNgram) must be between 1 and 16")
        try check(kvMemory >= 1, "--kv-memory \(kvMemory) MiB must be at least 1")
        if let kvBlocks { try check(kvBlocks >= 1, "--kv-blocks \(kvBlocks) must be at least 1") }
    }

    func run() async throws {
        // Everything a flag can get wrong is checked before the model and the engine exist: an error then
        // exits with its message and status 1 (CLIError) instead of tearing down a running engine.
        try checkFlags()
        ServerLogging.bootstrap(level: logLevel, format: logFormat)
        let pricing = try noMetering ? nil : pricingOptions.pricing()
        let policy = try pricing.flatMap { pricing in try budgets.map { try BudgetPolicy.load(path: $0, prices: pricing.prices) } } ?? .unlimited
        let apiKeys = try readAPIKeys()
        // Before the model loads: a store that cannot be opened is a start-up error, not a server that
        // then loses every record.
        let store = try await openStore()
        do {
            try await load(apiKeys: apiKeys, pricing: pricing, policy: policy, store: store)
        } catch {
            try? await store?.close()
            throw error
        }
        try? await store?.close()
    }

    private func openStore() async throws -> (any UsageStore)? {
        guard !noMetering else { return nil }
        let dbPath = db ?? defaultUsageDatabase()
        if PostgresUsageStore.isURL(dbPath) {
            let spoolPath = spool ?? ((defaultUsageDatabase() as NSString).deletingLastPathComponent as NSString)
                .appendingPathComponent("spool-\(replica ?? ProcessInfo.processInfo.hostName).db")
            do {
                try FileManager.default.createDirectory(atPath: (spoolPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let shared = try await PostgresUsageStore.open(url: dbPath)
                return try await SpoolingUsageStore(shared: shared, spool: try await SQLiteUsageStore.open(path: spoolPath), log: { [logger] in logger.warning("\($0)") })
            } catch { throw CLIError("\(error)") }
        }
        do {
            try FileManager.default.createDirectory(atPath: (dbPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create the folder of the usage database \(dbPath): \(error.localizedDescription); pass another --db (or --no-metering)")
        }
        do { return try await SQLiteUsageStore.open(path: dbPath) } catch { throw CLIError("\(error)") }
    }

    private func load(apiKeys: [TenantKey], pricing: Meter.Pricing?, policy: BudgetPolicy, store: (any UsageStore)?) async throws {
        let path = try await Pull.servedModelPulledIfMissing(model)
        let llama = try LlamaModel(path: ServableModel.path(for: path, log: { [logger] in logger.info("\($0)") }), threads: threads, verify: verify)
        logger.info("weights: \(llama.weights.source)")
        let tokenizer = try Tokenizer(metadata: llama.file.metadata)

        var options = EngineOptions()
        options.kvCapacity = kvBlocks.map(KVCapacity.blocks) ?? .memoryMiB(kvMemory)
        options.kvType = kvType
        options.maxBatchTokens = maxBatchTokens
        options.maxSeqs = maxSeqs
        options.maxQueue = maxQueue
        options.prefixCaching = !noPrefixCache
        options.idleRelease = idleRelease > 0 ? .milliseconds(Int64(idleRelease * 1000)) : nil
        options.idlePrefixCacheMiB = idlePrefixCacheMemory
        options.draftTokens = draftTokens
        options.draftNgram = draftNgram
        let planned = options.engineConfig(for: llama.config)
        let positions = planned.kvBlocks * planned.blockSize
        if positions < llama.config.contextLength {
            throw CLIError("the KV cache holds \(positions) positions but one full-context sequence needs \(llama.config.contextLength); raise --kv-memory or --kv-blocks")
        }
        try kvType.check(for: llama.config)
        let engine = EngineFactory.engine(model: llama, options: options)
        do {
            try await serve(engine: engine, llama: llama, tokenizer: tokenizer, path: path, apiKeys: apiKeys, pricing: pricing,
                            policy: policy, store: store)
        } catch {
            engine.shutdown(deadline: .zero)
            throw error
        }
    }

    private func parsedMetricsKey() throws -> TenantKey? {
        guard let metricsKey else { return nil }
        do throws(MeteringError) { return try TenantKey.parse(line: metricsKey) } catch { throw CLIError("--metrics-key: \(error.reason)") }
    }

    /// `--api-key` values then `--api-key-file` lines, each `KEY`, `NAME:KEY` or `NAME:sha256:HEX`.
    private func readAPIKeys() throws -> [TenantKey] {
        var text = apiKey.joined(separator: "\n")
        if let apiKeyFile {
            do { text += "\n" + (try String(contentsOfFile: apiKeyFile, encoding: .utf8)) } catch {
                throw CLIError("cannot read --api-key-file \(apiKeyFile): \(error.localizedDescription)")
            }
        }
        do { return try TenantKey.parse(file: text) } catch { throw CLIError(error.description) }
    }

    private func serve(engine: BatchingEngine, llama: LlamaModel, tokenizer: Tokenizer, path: String, apiKeys: [TenantKey],
                       pricing: Meter.Pricing?, policy: BudgetPolicy, store: (any UsageStore)?) async throws {
        var config = ServerConfig()
        config.host = host
        config.port = port
        config.apiKeys = apiKeys
        config.chatTemplateOverride = chatTemplate
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var heartbeat: RunHeartbeat?
        if let pricing, let opened = store {
            config.meter = Meter(store: opened, pricing: pricing, budgets: policy)
            config.modelShape = ModelShape(file: llama.file)
            // The machine is billed from here (model loaded) to the stop, busy or idle.
            heartbeat = try await RunHeartbeat.start(store: opened, host: replica ?? ProcessInfo.processInfo.hostName,
                                                     interval: .seconds(heartbeatSeconds))
            logger.info("metering to \(opened.location); prices \(pricing.prices.name) (\(pricing.prices.asOf)), machine \(pricing.machine.name), GPU \(pricing.gpu.name)")
            for (i, key) in config.apiKeys.enumerated() { logger.info("API key \(i + 1) of \(config.apiKeys.count) bills tenant \(key.tenant)") }
        }
        config.modelAliases = alias
        guard batchSlots >= 1 else { throw CLIError("--batch-slots must be at least 1") }
        config.batchSlots = batchSlots
        config.batchDirectory = URL(fileURLWithPath: batchDir ?? ((defaultUsageDatabase() as NSString).deletingLastPathComponent as NSString).appendingPathComponent("batches"))
        config.embeddingPooling = pooling ?? Pooling(metadata: llama.file.metadata, architecture: llama.config.architecture) ?? .last
        config.embeddingWidth = llama.config.embeddingLength
        config.replica = replica ?? ProcessInfo.processInfo.hostName
        config.sharedPrefixCache = sharedPrefixCache
        config.requireMetering = requireMetering
        config.metricsKey = try parsedMetricsKey()
        config.rateLimits = RateLimits(requestsPerMinute: rpm, tokensPerMinute: tpm)
        config.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        config.writeTimeout = .milliseconds(Int64(writeTimeout * 1000))
        config.socketSendBuffer = socketSendBuffer
        config.shutdownGracePeriod = .milliseconds(Int64(drainSeconds * 1000))
        let summary = "\(threads) threads, \(engine.config.kvBlocks) KV blocks = \(engine.config.kvBlocks * engine.config.blockSize) positions in \(kvType.rawValue), max \(maxSeqs) running"
        config.logger = logger
        let listening = Readiness(false)
        let metrics = ServerMetrics(modelName: name)
        let app = try buildApplication(config: config, engine: engine, tokenizer: tokenizer, modelName: name, metrics: metrics) { [host, logger] port in
            listening.set(true)
            logger.info("serving \(name) on http://\(host):\(port) (\(summary))")
        }
        let stats = statsSeconds == 0 ? nil : Task { [logger, statsSeconds] in
            await ServerLogging.runStats(engine: engine, metrics: metrics, logger: logger, interval: .milliseconds(Int64(statsSeconds * 1000)))
        }
        defer { stats?.cancel() }
        do {
            try await runServer(app, config: config)
        } catch where !listening.isReady {
            // Nothing claimed to be serving: the socket could not be bound (a port in use, a bad host).
            await heartbeat?.stop()
            throw CLIError("cannot listen on \(host):\(port): \(error)")
        }
        engine.shutdown(deadline: .seconds(5))
        // Requests aborted by the shutdown are recorded in the background: let them land, then close.
        await config.meter?.flush()
        await heartbeat?.stop()
    }
}

extension KVType: ExpressibleByArgument {}
extension Pooling: ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A command's own error: ArgumentParser prints "Error: <message>" and exits with status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
