// Every cost function against hand-computed nano-USD values (the arithmetic is in each row's comment),
// and the GPU formula's calibration against the published vLLM figure.

import Foundation
@testable import Metering
import Testing

@Suite struct CostModelTests {
    static let c7i = MachineProfile(name: "aws-c7i.large", description: "", hourlyNanoUSD: 89_250_000, vcpus: 2)

    static let mulDivCases: [(Int64, Int64, Int64, Int64)] = [
        // (a, b, c, expected): a x b / c rounded half up
        (7, 1, 2, 4),  // 3.5 -> 4
        (5, 1, 2, 3),  // 2.5 -> 3
        (1, 1, 3, 0),  // 0.33 -> 0
        (2, 1, 3, 1),  // 0.67 -> 1
        (9_000_000_000_000, 6_880_000_000, 3_600_000_000, 17_200_000_000_000),  // product overflows Int64
    ]

    @Test(arguments: mulDivCases)
    func mulDivRoundsHalfUpWithoutOverflow(a: Int64, b: Int64, c: Int64, expected: Int64) {
        #expect(CostModel.mulDiv(a, b, c) == expected)
    }

    static let localCases: [(Int64, Int64)] = [
        // (busy µs, expected nUSD) at 0.08925 $/h = 89,250,000 nUSD/h
        (2_000_000, 49_583),  // 89,250,000 x 2e6 / 3.6e9 = 49,583.33
        (3_600_000_000, 89_250_000),  // one hour
        (1, 0),  // 0.0248
        (0, 0),
        (-5, 0),  // negative busy time (clock skew) costs nothing
        (2_592_000_000_000, 64_260_000_000),  // 30 days: 720 h x 89,250,000
    ]

    @Test(arguments: localCases)
    func localCost(busy: Int64, expected: Int64) {
        #expect(CostModel.localCostNanoUSD(busyMicros: busy, machine: Self.c7i) == expected)
    }

    @Test func localCostOfARecordUsesItsBusyShareOnly() {
        // Queue, prefill and decode wall times overlap other requests; only the busy share is this request's.
        let record = UsageRecord(id: "r", timeMicros: 0, model: "m", promptTokens: 10, generatedTokens: 10,
                                 queueMicros: 9_000_000, prefillMicros: 9_000_000, decodeMicros: 9_000_000, busyShareMicros: 2_000_000)
        #expect(CostModel.localCostNanoUSD(record, machine: Self.c7i) == 49_583)
    }

    static let nano = PriceTable.shipped.models.first { $0.model == "gpt-5-nano" }!
    static let haiku = PriceTable.shipped.models.first { $0.model == "claude-haiku-4-5" }!
    static let mini4o = PriceTable.shipped.models.first { $0.model == "gpt-4o-mini" }!
    static let half = APIPrice(provider: "t", model: "half", input: 500_000, output: 1_500_000)

    static let apiCases: [(APIPrice, CostModel.BilledTokens, PriceTier, Int64)] = [
        // gpt-5-nano: input 50,000,000, cached 5,000,000, output 400,000,000 nUSD per 1M tokens.
        // (1000 x 50e6 + 3000 x 5e6 + 500 x 400e6) / 1e6 = 265,000
        (nano, .init(uncachedInput: 1_000, cachedInput: 3_000, cacheWrite: 0, output: 500), .standard, 265_000),
        // batch: input 25e6, cached 5e6 x 25e6 / 50e6 = 2.5e6, output 200e6 -> (2.5e10 + 7.5e9 + 1e11) / 1e6
        (nano, .init(uncachedInput: 1_000, cachedInput: 3_000, cacheWrite: 0, output: 500), .batch, 132_500),
        // cache writes are ignored where the API has no write price: (1000 x 150e6 + 3000 x 75e6 + 100 x 600e6) / 1e6
        (mini4o, .init(uncachedInput: 1_000, cachedInput: 3_000, cacheWrite: 800, output: 100), .standard, 435_000),
        // claude-haiku-4-5: input 1e9, cached 1e8, write 1.25e9, output 5e9; 800 of the 1000 uncached are writes:
        // (200 x 1e9 + 3000 x 1e8 + 800 x 1.25e9 + 100 x 5e9) / 1e6 = 2,000,000
        (haiku, .init(uncachedInput: 1_000, cachedInput: 3_000, cacheWrite: 800, output: 100), .standard, 2_000_000),
        // batch halves every rate: input 5e8, cached 5e7, write 6.25e8, output 2.5e9 -> 1e12 / 1e6
        (haiku, .init(uncachedInput: 1_000, cachedInput: 3_000, cacheWrite: 800, output: 100), .batch, 1_000_000),
        // no cached price: cached tokens pay input; no batch price: batch = standard. 3 x 0.5 = 1.5 -> 2
        (half, .init(uncachedInput: 1, cachedInput: 2, cacheWrite: 0, output: 0), .standard, 2),
        (half, .init(uncachedInput: 1, cachedInput: 0, cacheWrite: 0, output: 1), .batch, 2),
        (nano, .init(uncachedInput: 0, cachedInput: 0, cacheWrite: 0, output: 0), .standard, 0),
    ]

    @Test(arguments: apiCases)
    func apiCost(price: APIPrice, tokens: CostModel.BilledTokens, tier: PriceTier, expected: Int64) {
        #expect(CostModel.apiCostNanoUSD(tokens, price: price, tier: tier) == expected)
    }

    /// An embedding request is priced at its provider's embedding model (shipped table: OpenAI's
    /// text-embedding-3-small $0.02 / batch $0.01, Google's gemini-embedding-001 $0.15 / $0.075, Voyage's
    /// voyage-3.5 $0.06 for Anthropic), whatever the chat model; its tokens are not chat input.
    @Test func embeddingTokensArePricedAtTheProvidersEmbeddingModel() throws {
        let record = UsageRecord(id: "e", timeMicros: 0, model: "m", promptTokens: 1_000_000, cachedTokens: 4_096,
                                 generatedTokens: 0, busyShareMicros: 0, kind: .embedding)
        let billed = CostModel.BilledTokens(record)
        #expect(billed == .init(uncachedInput: 0, cachedInput: 0, cacheWrite: 0, output: 0, embedding: 1_000_000))
        let table = PriceTable.shipped
        func cost(_ model: String, _ tier: PriceTier) throws -> Int64 {
            CostModel.apiCostNanoUSD(billed, price: try #require(table.models.first { $0.model == model }), tier: tier)
        }
        #expect(try cost("gpt-5-nano", .standard) == 20_000_000 && cost("gpt-4o-mini", .batch) == 10_000_000)
        #expect(try cost("gemini-2.5-flash", .standard) == 150_000_000 && cost("gemini-2.5-flash-lite", .batch) == 75_000_000)
        #expect(try cost("claude-haiku-4-5", .standard) == 60_000_000 && cost("claude-haiku-4-5", .batch) == 60_000_000)
        // Without an embedding price an API bills embedding tokens as plain input.
        var bare = APIPrice(provider: "nobody", model: "x", input: 3_000_000, output: 9_000_000)
        bare.embedding = nil
        #expect(CostModel.apiCostNanoUSD(billed, price: bare, tier: .standard) == 3_000_000)
    }

    @Test func billedTokensFromTotalsNeverWriteMoreThanTheUncachedPrompt() {
        var totals = UsageTotals()
        totals.promptTokens = 100
        totals.cachedTokens = 90
        totals.cacheWriteTokens = 50
        totals.generatedTokens = 7
        #expect(CostModel.BilledTokens(totals) == .init(uncachedInput: 10, cachedInput: 90, cacheWrite: 10, output: 7))
    }

    /// A GPU with round numbers: 1 GFLOP/s, 100 MB/s, 3.6 $/h (1,000,000 nUSD per second).
    static func toyGPU(decodeBatch: Int) -> GPUProfile {
        GPUProfile(name: "toy", description: "", hourlyNanoUSD: 3_600_000_000, peakFLOPS: 1e9, memoryBandwidth: 1e8,
                   assumptions: GPUAssumptions(mfu: 0.5, mbu: 0.5, decodeBatch: decodeBatch, kvBytesPerElement: 2))
    }

    static let toyRecord = UsageRecord(
        id: "g", timeMicros: 0, model: "toy",
        modelShape: ModelShape(parameterCount: 1_000_000, weightBytes: 1_000_000, layerCount: 2, attentionWidth: 4, kvWidth: 2),
        promptTokens: 4, cachedTokens: 2, generatedTokens: 2, busyShareMicros: 0)

    @Test func gpuWorkIsHandComputed() {
        // Computed positions 2..<6 (n = 4), keys 3+4+5+6 = 18; decode positions 4, 5: keys 5+6 = 11.
        // FLOPs = 2 x 1e6 x 4 + 4 x 2 x 4 x 18 = 8,000,576
        // bytes = 1e6 x 2 / 2 + 2 x 2 x 2 x 2 x 11 = 1,000,176
        let work = CostModel.gpuWork(Self.toyRecord, kvBytesPerElement: 2, decodeBatch: 2)
        #expect(work == CostModel.GPUWork(flops: 8_000_576, bytes: 1_000_176))
    }

    static let gpuCases: [(Int, Int64)] = [
        // batch 2: max(8,000,576 / 5e8 = 0.016001152 s, 1,000,176 / 5e7 = 0.02000352 s) -> bandwidth-bound,
        // x 1e6 nUSD/s = 20,003.52 -> 20,004
        (2, 20_004),
        // batch 4: bytes 250,176 / 5e7 = 0.00500352 s < 0.016001152 s -> compute-bound: 16,001.152 -> 16,001
        (4, 16_001),
    ]

    @Test(arguments: gpuCases)
    func gpuCost(decodeBatch: Int, expected: Int64) {
        #expect(CostModel.gpuCostNanoUSD(Self.toyRecord, gpu: Self.toyGPU(decodeBatch: decodeBatch)) == expected)
    }

    @Test func gpuCostOfAnUnknownShapeIsZero() {
        var record = Self.toyRecord
        record.modelShape = .unknown
        #expect(CostModel.gpuCostNanoUSD(record, gpu: Self.toyGPU(decodeBatch: 1)) == 0)
    }

    @Test func cacheHitsLowerGPUCost() {
        var cold = Self.toyRecord
        cold.cachedTokens = 0
        let gpu = Self.toyGPU(decodeBatch: 4)
        #expect(CostModel.gpuCostNanoUSD(cold, gpu: gpu) > CostModel.gpuCostNanoUSD(Self.toyRecord, gpu: gpu))
    }

    @Test func calibrationReproducesThePublishedVLLMThroughput() throws {
        // vLLM 0.19, Qwen3-0.6B, one H100 SXM, random 512 in / 128 out: 94.91 requests/s (cost anchors).
        let gpu = HardwareProfiles.shipped.defaultGPU
        #expect(gpu.name == "h100-sxm-aws")
        let request = UsageRecord(id: "v", timeMicros: 0, model: "qwen3-0.6b", modelShape: Fixtures.qwen3,
                                  promptTokens: 512, generatedTokens: 128, busyShareMicros: 0)
        let work = CostModel.gpuWork(request, kvBytesPerElement: 2, decodeBatch: gpu.assumptions.decodeBatch)
        #expect(work.flops == 815_049_605_120)  // 2 x 0.6e9 x 640 + 4 x 28 x 2048 x 205,120
        let requestsPerSecond = 1 / CostModel.gpuSeconds(request, gpu: gpu)
        #expect(abs(requestsPerSecond - 94.91) / 94.91 < 0.01, "predicted \(requestsPerSecond) requests/s")
        // Compute-bound, as the measured run: the bytes term is well under the FLOPs term.
        #expect(work.bytes / (gpu.memoryBandwidth * gpu.assumptions.mbu) < work.flops / (gpu.peakFLOPS * gpu.assumptions.mfu))
        // $6.88/h x 1/94.65 s = 20,192 nUSD per request.
        #expect(CostModel.gpuCostNanoUSD(request, gpu: gpu) == 20_192)
    }

    @Test func requestCostHasEveryConfiguredAPI() {
        let cost = CostModel.cost(of: Fixtures.records[0], machine: Fixtures.roundMachine,
                                  gpu: HardwareProfiles.shipped.defaultGPU, prices: .shipped)
        #expect(cost.localNanoUSD == 2_000_000)
        #expect(cost.apis.map(\.model) == PriceTable.shipped.models.map(\.label))
        // gpt-5-nano: 1000 uncached x 50e6 + 200 out x 400e6 = 5e10 + 8e10 -> 130,000
        #expect(cost.apis.first { $0.model == "openai/gpt-5-nano" }?.standardNanoUSD == 130_000)
    }

    static let usdCases: [(Int64, String)] = [
        (265_000, "$0.000265"), (1_500_000_000, "$1.50"), (0, "$0.00"), (-2_500_000, "-$0.0025"),
        (123_456_789_012, "$123.456789012"), (7, "$0.000000007"),
    ]

    @Test(arguments: usdCases)
    func usdFormatting(nano: Int64, text: String) {
        #expect(formatUSD(nano) == text)
    }
}
