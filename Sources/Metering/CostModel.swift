// The cost model: pure functions from stored facts (records or their totals) and dated profiles/prices
// to integer nano-USD. Nothing here reads a clock, a file or a store.
//
// Local cost      = machine $/hour x the request's share of engine busy time.
// GPU-equivalent  = reference-GPU seconds for the same work (roofline, calibrated) x GPU $/hour.
// API-equivalent  = tokens x each API's per-1M-token rates (uncached input, cached input, cache writes,
//                   output), standard or batch tier.

import Foundation

package enum CostModel {
    package static let microsPerHour: Int64 = 3_600_000_000
    package static let tokensPerMillion: Int64 = 1_000_000

    /// `a x b / c` rounded half up, exact for any Int64 `a`, `b` (128-bit product); `a, b >= 0`, `c > 0`.
    package static func mulDiv(_ a: Int64, _ b: Int64, _ c: Int64) -> Int64 {
        let product = Int128(a) * Int128(b)
        return Int64((product + Int128(c) / 2) / Int128(c))
    }

    // MARK: Local

    /// Machine price for `busyMicros` of engine time: `hourly x busy / 1 h`.
    /// Example: 0.08925 $/h for 2 s = 89,250,000 x 2,000,000 / 3.6e9 = 49,583 nUSD.
    package static func localCostNanoUSD(busyMicros: Int64, machine: MachineProfile) -> Int64 {
        mulDiv(max(0, busyMicros), machine.hourlyNanoUSD, microsPerHour)
    }

    package static func localCostNanoUSD(_ record: UsageRecord, machine: MachineProfile) -> Int64 {
        localCostNanoUSD(busyMicros: record.busyShareMicros, machine: machine)
    }

    /// What the machine costs for a wall-clock span whether busy or idle (the bill at measured utilization).
    package static func machineCostNanoUSD(wallMicros: Int64, machine: MachineProfile) -> Int64 {
        localCostNanoUSD(busyMicros: wallMicros, machine: machine)
    }

    // MARK: API

    /// Token counts an API would bill.
    package struct BilledTokens: Sendable, Equatable {
        package var uncachedInput: Int
        package var cachedInput: Int
        package var cacheWrite: Int
        package var output: Int
        /// Input tokens of embedding requests, billed at the API's embedding price.
        package var embedding: Int

        package init(uncachedInput: Int, cachedInput: Int, cacheWrite: Int, output: Int, embedding: Int = 0) {
            self.uncachedInput = uncachedInput
            self.cachedInput = cachedInput
            self.cacheWrite = cacheWrite
            self.output = output
            self.embedding = embedding
        }

        /// From totals: cache writes are the part of the uncached prompt that filled new cache blocks, so
        /// they are never more than the uncached prompt.
        package init(_ totals: UsageTotals) {
            let uncached = totals.uncachedPromptTokens
            self.init(uncachedInput: uncached, cachedInput: min(totals.cachedTokens, totals.promptTokens),
                      cacheWrite: min(totals.cacheWriteTokens, uncached), output: totals.generatedTokens,
                      embedding: totals.embeddingTokens)
        }

        package init(_ record: UsageRecord) {
            var totals = UsageTotals()
            totals.add(record)
            self.init(totals)
        }
    }

    /// `(plainInput x input + cached x cachedInput + writes x cacheWrite + output x output) / 1M`, one
    /// rounding at the end. On an API without a cache-write price, written tokens are plain input.
    /// Example: gpt-5-nano, 1,000 uncached + 3,000 cached in, 500 out =
    /// (1000 x 50,000,000 + 3000 x 5,000,000 + 500 x 400,000,000) / 1e6 = 265,000 nUSD.
    /// Embedding tokens add `embedding x` the provider's embedding price (`APIPrice.embedding`), or its plain
    /// input price when the table pairs it with none.
    package static func apiCostNanoUSD(_ tokens: BilledTokens, price: APIPrice, tier: PriceTier) -> Int64 {
        let rates = price.rates(for: tier)
        let writes = rates.cacheWrite == nil ? 0 : tokens.cacheWrite
        let plain = tokens.uncachedInput - writes
        let embeddingRate = price.embedding?.rate(for: tier) ?? rates.input
        let numerator = Int128(plain) * Int128(rates.input) + Int128(tokens.cachedInput) * Int128(rates.cachedInput)
            + Int128(writes) * Int128(rates.cacheWrite ?? 0) + Int128(tokens.output) * Int128(rates.output)
            + Int128(tokens.embedding) * Int128(embeddingRate)
        return Int64((numerator + Int128(tokensPerMillion / 2)) / Int128(tokensPerMillion))
    }

    package static func apiCostNanoUSD(_ totals: UsageTotals, price: APIPrice, tier: PriceTier) -> Int64 {
        apiCostNanoUSD(BilledTokens(totals), price: price, tier: tier)
    }

    // MARK: GPU-equivalent

    /// Work the request would be on a GPU.
    package struct GPUWork: Sendable, Equatable {
        /// FLOPs of the forward passes.
        package var flops: Double
        /// Bytes read from GPU memory that cannot be shared with other requests (KV) plus this request's
        /// share of the weight reads of its decode steps.
        package var bytes: Double
    }

    /// The GPU-equivalent formula (README "GPU-equivalent cost"):
    ///
    ///     tokens computed = positions cached ..< prompt + generated   (n = uncached prompt + generated)
    ///     keys(p)         = p + 1                                      (a token attends to itself and all before)
    ///     FLOPs           = 2 x P x n                                  (every weight in a matmul, per token)
    ///                     + 4 x L x A x sum keys(p) over computed p    (QK^T and AV, 2 FLOPs per MAC each)
    ///     bytes           = W x generated / B                          (one weight read per decode step, shared by B)
    ///                     + 2 x L x K x e x sum keys(p) over decode p  (K and V of the whole context per decode token)
    ///     seconds         = max(FLOPs / (peak x mfu), bytes / (bandwidth x mbu))
    ///
    /// P parameters, W weight bytes, L layers, A = heads x headDim, K = kvHeads x headDim, e bytes per KV
    /// element, B decode batch. Counting the last generated token as computed (it never is fed back) matches
    /// the usual `2 x P x (in + out)` and is one token per request. Prefill weight reads are amortised over
    /// the chunk and ignored.
    ///
    /// Calibration: `mfu` is chosen so that this formula reproduces the published vLLM run of Qwen3-0.6B on
    /// one H100 SXM (512 in / 128 out, 94.91 requests/s): there FLOPs/request = 2 x 0.6e9 x 640 +
    /// 4 x 28 x 2048 x 205,120 = 8.150e11, and 8.150e11 x 94.91 / 989e12 = 0.0782, so mfu = 0.078; the bytes
    /// term (mbu 0.5, B 64) gives 6.5 ms < 10.5 ms, so that run is compute-bound as measured.
    /// Pricing at peak (mfu = 1) would understate the GPU's cost about 13x.
    package static func gpuWork(_ record: UsageRecord, kvBytesPerElement: Int, decodeBatch: Int) -> GPUWork {
        let shape = record.modelShape
        let cached = Double(min(record.cachedTokens, record.promptTokens))
        let prompt = Double(record.promptTokens)
        let end = prompt + Double(record.generatedTokens)
        // sum of (p + 1) for p in a ..< b = (b(b+1) - a(a+1)) / 2
        func keySum(_ a: Double, _ b: Double) -> Double { (b * (b + 1) - a * (a + 1)) / 2 }
        let computed = end - cached
        let flops = 2 * Double(shape.parameterCount) * computed
            + 4 * Double(shape.layerCount) * Double(shape.attentionWidth) * keySum(cached, end)
        let bytes = Double(shape.weightBytes) * Double(record.generatedTokens) / Double(max(1, decodeBatch))
            + 2 * Double(shape.layerCount) * Double(shape.kvWidth) * Double(kvBytesPerElement) * keySum(prompt, end)
        return GPUWork(flops: flops, bytes: bytes)
    }

    package static func gpuSeconds(_ record: UsageRecord, gpu: GPUProfile) -> Double {
        let a = gpu.assumptions
        let work = gpuWork(record, kvBytesPerElement: a.kvBytesPerElement, decodeBatch: a.decodeBatch)
        return max(work.flops / (gpu.peakFLOPS * a.mfu), work.bytes / (gpu.memoryBandwidth * a.mbu))
    }

    /// GPU-seconds x hourly price, rounded to the nearest nano-USD.
    package static func gpuCostNanoUSD(_ record: UsageRecord, gpu: GPUProfile) -> Int64 {
        Int64((gpuSeconds(record, gpu: gpu) * Double(gpu.hourlyNanoUSD) / 3600).rounded())
    }

    // MARK: All three

    /// Every cost of one request; what the server puts in the response's `usage.cost`.
    package struct RequestCost: Sendable, Equatable, Codable {
        package var localNanoUSD: Int64
        package var gpuNanoUSD: Int64
        package var apis: [APITierCosts]
    }

    /// What every API of `prices` charges for `tokens`, standard and batch tier.
    package static func apiCosts(_ tokens: BilledTokens, prices: PriceTable) -> [APITierCosts] {
        prices.models.map {
            APITierCosts(model: $0.label, standardNanoUSD: apiCostNanoUSD(tokens, price: $0, tier: .standard),
                         batchNanoUSD: apiCostNanoUSD(tokens, price: $0, tier: .batch))
        }
    }

    package static func cost(of record: UsageRecord, machine: MachineProfile, gpu: GPUProfile, prices: PriceTable) -> RequestCost {
        RequestCost(localNanoUSD: localCostNanoUSD(record, machine: machine), gpuNanoUSD: gpuCostNanoUSD(record, gpu: gpu),
                    apis: apiCosts(BilledTokens(record), prices: prices))
    }
}

/// One API's price for some tokens in its standard and batch tiers, in nano-USD.
package struct APITierCosts: Sendable, Equatable, Codable {
    /// The price table's label, "provider/model".
    package var model: String
    package var standardNanoUSD: Int64
    package var batchNanoUSD: Int64

    package init(model: String, standardNanoUSD: Int64, batchNanoUSD: Int64) {
        self.model = model
        self.standardNanoUSD = standardNanoUSD
        self.batchNanoUSD = batchNanoUSD
    }

    /// Both tiers through `transform` (per 1M tokens, scaled, ...).
    package func map(_ transform: (Int64) -> Int64) -> APITierCosts {
        APITierCosts(model: model, standardNanoUSD: transform(standardNanoUSD), batchNanoUSD: transform(batchNanoUSD))
    }
}

/// Nano-USD as a decimal string: `"$0.000265"`, `"-$1.50"`. Exact (integer arithmetic); trailing zeros are
/// trimmed down to `minDecimals`.
package func formatUSD(_ nano: Int64, minDecimals: Int = 2) -> String {
    let sign = nano < 0 ? "-" : ""
    let magnitude = nano.magnitude
    var fraction = String(magnitude % 1_000_000_000)
    fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
    while fraction.count > minDecimals && fraction.hasSuffix("0") { fraction.removeLast() }
    return "\(sign)$\(magnitude / 1_000_000_000)" + (fraction.isEmpty ? "" : "." + fraction)
}
