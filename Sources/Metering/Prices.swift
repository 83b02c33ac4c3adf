// API price tables: what each hosted model charges per 1M tokens (uncached input, cached input, cache
// writes, output; standard and batch tiers), as integer nano-USD per 1M tokens. Reads tally's own dated
// format and LiteLLM's model_prices_and_context_window.json.

import Foundation

/// Standard (synchronous) or asynchronous batch pricing.
package enum PriceTier: String, Sendable, Codable, CaseIterable {
    case standard
    case batch
}

/// One API model's prices, in nano-USD per 1M tokens. nil means "not priced separately".
package struct APIPrice: Sendable, Equatable, Hashable, Codable {
    package var provider: String
    package var model: String
    package var input: Int64
    /// Cache reads; nil means cached tokens pay `input`.
    package var cachedInput: Int64?
    /// Cache creation (Anthropic); nil means the API does not charge writes apart from input.
    package var cacheWrite: Int64?
    package var output: Int64
    package var inputBatch: Int64?
    package var outputBatch: Int64?
    /// Explicit batch price of cache reads; usually absent (see `rates(for:)`).
    package var cachedInputBatch: Int64?
    /// The same provider's embedding model, which prices the input of embedding requests; paired by
    /// provider from `EmbeddingPrice.shipped` when a table is made.
    package var embedding: EmbeddingPrice?

    package init(provider: String, model: String, input: Int64, cachedInput: Int64? = nil, cacheWrite: Int64? = nil,
                 output: Int64, inputBatch: Int64? = nil, outputBatch: Int64? = nil, cachedInputBatch: Int64? = nil) {
        self.provider = provider
        self.model = model
        self.input = input
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.output = output
        self.inputBatch = inputBatch
        self.outputBatch = outputBatch
        self.cachedInputBatch = cachedInputBatch
    }

    /// Per-1M-token rates of one tier, every field filled.
    package struct Rates: Sendable, Equatable {
        package var input: Int64
        package var cachedInput: Int64
        /// nil: this API has no cache-write price, and written tokens pay `input`.
        package var cacheWrite: Int64?
        package var output: Int64
    }

    /// The rates a tier charges. A batch tier without its own price for cache reads or writes is assumed to
    /// discount them in the same ratio as uncached input (`cached x inputBatch / input`); a model without
    /// a batch tier charges standard prices for batch work.
    package func rates(for tier: PriceTier) -> Rates {
        let cached = cachedInput ?? input
        switch tier {
        case .standard:
            return Rates(input: input, cachedInput: cached, cacheWrite: cacheWrite, output: output)
        case .batch:
            let batchInput = inputBatch ?? input
            func scaled(_ price: Int64) -> Int64 { input == 0 ? price : CostModel.mulDiv(price, batchInput, input) }
            return Rates(input: batchInput, cachedInput: cachedInputBatch ?? scaled(cached),
                         cacheWrite: cacheWrite.map(scaled), output: outputBatch ?? output)
        }
    }

    /// `openai/gpt-5-nano`.
    package var label: String { provider.isEmpty ? model : "\(provider)/\(model)" }
}

/// What a provider's embedding model charges per 1M input tokens (embeddings have no output tokens),
/// standard and batch tier, in nano-USD.
package struct EmbeddingPrice: Sendable, Equatable, Hashable, Codable {
    package var provider: String
    package var model: String
    package var input: Int64
    package var inputBatch: Int64?
    /// The chat table's provider names this embedding model prices (LiteLLM names Google's "gemini" and
    /// "vertex_ai-language-models"; Anthropic has no embedding API and its documentation points to Voyage AI).
    package var pairs: [String]

    package init(provider: String, model: String, input: Int64, inputBatch: Int64? = nil, pairs: [String]) {
        (self.provider, self.model, self.input, self.inputBatch, self.pairs) = (provider, model, input, inputBatch, pairs)
    }

    package func rate(for tier: PriceTier) -> Int64 { tier == .batch ? inputBatch ?? input : input }

    /// `openai/text-embedding-3-small`.
    package var label: String { "\(provider)/\(model)" }

    /// The shipped embedding prices (`Data/EmbeddingPrices2026_11.swift`), one per provider.
    package static let shipped: [EmbeddingPrice] = shipped2026_11

    /// The embedding price that goes with a chat model of `provider`, if any.
    package static func paired(with provider: String, in prices: [EmbeddingPrice] = shipped) -> EmbeddingPrice? {
        prices.first { $0.pairs.contains(provider) }
    }
}

/// A dated price table: what a report compares against, and names.
package struct PriceTable: Sendable, Equatable {
    /// File name as given (or the shipped table's name); printed in every report.
    package var name: String
    /// The date the prices were collected (tally format) or the file's modification day (LiteLLM).
    package var asOf: String
    package var source: String
    package var models: [APIPrice]

    package init(name: String, asOf: String, source: String, models: [APIPrice]) {
        self.name = name
        self.asOf = asOf
        self.source = source
        // Each API is paired with its provider's embedding price (kept if the caller set one).
        self.models = models.map { price in
            var price = price
            if price.embedding == nil { price.embedding = EmbeddingPrice.paired(with: price.provider) }
            return price
        }
    }

    /// The table shipped with this build (`Data/APIPrices2026_11.swift`).
    package static let shipped: PriceTable = {
        do { return try parse(Data(shipped2026_11JSON.utf8), name: shipped2026_11Name, fileDay: nil, compare: nil) } catch {
            preconditionFailure("shipped price table does not parse: \(error)")
        }
    }()

    /// Models a LiteLLM file is narrowed to when `compare` is not given: those of the shipped table.
    package static var defaultComparison: [String] { shipped.models.map(\.model) }

    /// Reads `--prices FILE`: tally's format (`{"as_of", "models": [...]}`) or LiteLLM's map of model name
    /// to `*_cost_per_token` fields. `compare` picks models by name (LiteLLM lists thousands; default: the
    /// shipped table's models that the file has).
    package static func load(path: String, compare: [String]? = nil) throws -> PriceTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeteringError.badPriceFile(path: path, reason: "cannot read the file")
        }
        let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
        return try parse(data, name: (path as NSString).lastPathComponent,
                         fileDay: modified.map { UTC.day(micros: UTC.micros($0)) }, compare: compare)
    }

    package static func parse(_ data: Data, name: String, fileDay: String?, compare: [String]?) throws -> PriceTable {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw MeteringError.badPriceFile(path: name, reason: "not a JSON object")
        }
        var table: PriceTable
        if object["models"] is [Any] {
            table = try parseTally(data, name: name)
        } else {
            table = try parseLiteLLM(data, name: name, fileDay: fileDay)
            let wanted = Set(compare ?? defaultComparison)
            table.models = table.models.filter { wanted.contains($0.model) }
            if compare == nil && table.models.isEmpty {
                throw MeteringError.badPriceFile(path: name, reason: "none of the default comparison models (\(defaultComparison.joined(separator: ", "))) is in it; name some to compare")
            }
        }
        if let compare, !compare.isEmpty {
            table.models = table.models.filter { compare.contains($0.model) }
            let missing = compare.filter { name in !table.models.contains { $0.model == name } }
            guard missing.isEmpty else {
                throw MeteringError.badPriceFile(path: name, reason: "no price for \(missing.joined(separator: ", "))")
            }
        }
        return table
    }

    private struct TallyFile: Decodable {
        struct Model: Decodable {
            var provider: String?, model: String, input: Double, cached_input: Double?, cache_write: Double?
            var output: Double, input_batch: Double?, output_batch: Double?, cached_input_batch: Double?
        }
        var as_of: String, collected_from: String?, models: [Model]
    }

    private static func parseTally(_ data: Data, name: String) throws -> PriceTable {
        let file: TallyFile
        do { file = try JSONDecoder().decode(TallyFile.self, from: data) } catch {
            throw MeteringError.badPriceFile(path: name, reason: "tally format: \(error)")
        }
        // USD per 1M tokens -> nano-USD per 1M tokens.
        return PriceTable(name: name, asOf: file.as_of, source: file.collected_from ?? "", models: file.models.map {
            APIPrice(provider: $0.provider ?? "", model: $0.model, input: nanoUSD($0.input),
                     cachedInput: $0.cached_input.map(nanoUSD), cacheWrite: $0.cache_write.map(nanoUSD),
                     output: nanoUSD($0.output), inputBatch: $0.input_batch.map(nanoUSD),
                     outputBatch: $0.output_batch.map(nanoUSD), cachedInputBatch: $0.cached_input_batch.map(nanoUSD))
        })
    }

    /// LiteLLM: `{"gpt-5-nano": {"input_cost_per_token": 5e-08, "output_cost_per_token": 4e-07,
    /// "cache_read_input_token_cost": 5e-09, "input_cost_per_token_batches": ..., "litellm_provider":
    /// "openai", "mode": "chat"}, "sample_spec": {...}}`. USD per token x 1e15 = nano-USD per 1M tokens.
    private struct LiteLLMEntry: Decodable {
        var input_cost_per_token: Double?
        var output_cost_per_token: Double?
        var cache_read_input_token_cost: Double?
        var cache_creation_input_token_cost: Double?
        var input_cost_per_token_batches: Double?
        var output_cost_per_token_batches: Double?
        var litellm_provider: String?
        var mode: String?
    }

    /// An entry that fails to decode (LiteLLM's file has odd ones) becomes nil instead of failing the file.
    private struct Lenient: Decodable {
        var entry: LiteLLMEntry?
        init(from decoder: any Decoder) throws { entry = try? LiteLLMEntry(from: decoder) }
    }

    private static func parseLiteLLM(_ data: Data, name: String, fileDay: String?) throws -> PriceTable {
        let entries: [String: Lenient]
        do { entries = try JSONDecoder().decode([String: Lenient].self, from: data) } catch {
            throw MeteringError.badPriceFile(path: name, reason: "LiteLLM format: \(error)")
        }
        func perMillion(_ usdPerToken: Double?) -> Int64? { usdPerToken.map { nanoUSD($0 * 1e6) } }
        var models: [APIPrice] = []
        for (model, value) in entries where model != "sample_spec" {
            guard let entry = value.entry else { continue }
            if let mode = entry.mode, !["chat", "completion", "responses"].contains(mode) { continue }
            guard let input = perMillion(entry.input_cost_per_token), let output = perMillion(entry.output_cost_per_token) else { continue }
            models.append(APIPrice(
                provider: entry.litellm_provider ?? "", model: model, input: input,
                cachedInput: perMillion(entry.cache_read_input_token_cost),
                cacheWrite: perMillion(entry.cache_creation_input_token_cost), output: output,
                inputBatch: perMillion(entry.input_cost_per_token_batches),
                outputBatch: perMillion(entry.output_cost_per_token_batches)))
        }
        guard !models.isEmpty else {
            throw MeteringError.badPriceFile(path: name, reason: "no model with input_cost_per_token and output_cost_per_token")
        }
        return PriceTable(name: name, asOf: fileDay ?? "unknown", source: "LiteLLM model_prices_and_context_window.json",
                          models: models.sorted { $0.model < $1.model })
    }
}
