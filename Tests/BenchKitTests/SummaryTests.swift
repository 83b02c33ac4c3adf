// Percentiles, TPOT, goodput and cost per 1M on hand-made outcomes with known answers.

@testable import BenchKit
import Metering
import Testing

func completed(ttftMs: Int64, e2eMs: Int64, prompt: Int = 10, cached: Int? = nil, output: Int = 5) -> RequestOutcome {
    var outcome = RequestOutcome(status: .completed)
    outcome.ttftMicros = ttftMs * 1000
    outcome.e2eMicros = e2eMs * 1000
    outcome.promptTokens = prompt
    outcome.cachedTokens = cached
    outcome.outputTokens = output
    return outcome
}

func record(_ outcomes: [RequestOutcome], wallSeconds: Double, clients: Int = 1) -> RunRecord {
    RunRecord(plan: LoadPlan(mode: .concurrency(clients), requests: max(1, outcomes.count), timeLimitSeconds: 60, maxTokens: 5, ignoreEOS: true),
              outcomes: outcomes, wallMicros: Int64(wallSeconds * 1_000_000), hitTimeLimit: false)
}

@Suite struct SummaryTests {
    /// HdrHistogram with 3 significant digits: within 0.1% of the exact value.
    func close(_ value: Double, _ expected: Double) -> Bool { abs(value - expected) <= expected * 0.001 }

    @Test func percentilesOfOneToAThousandMilliseconds() throws {
        let stats = try #require(LatencyStats(micros: (1...1000).map { Int64($0) * 1000 }))
        #expect(stats.count == 1000)
        #expect(stats.mean == 500.5)
        #expect(close(stats.p50, 500))
        #expect(close(stats.p90, 900))
        #expect(close(stats.p99, 990))
        #expect(stats.max == 1000)
    }

    @Test func oneOutlierMovesOnlyTheTail() throws {
        let stats = try #require(LatencyStats(micros: Array(repeating: 10_000, count: 99) + [1_000_000]))
        #expect(close(stats.p50, 10))
        #expect(close(stats.p99, 10))
        #expect(stats.max == 1000)
        #expect(abs(stats.mean - (99 * 10 + 1000) / 100.0) < 1e-9)
        #expect(LatencyStats(micros: []) == nil)
    }

    @Test func tpotIsDecodeTimeOverTokensAfterTheFirst() {
        #expect(completed(ttftMs: 100, e2eMs: 500, output: 5).tpotMicros == 100_000)
        #expect(completed(ttftMs: 100, e2eMs: 500, output: 1).tpotMicros == nil)
    }

    @Test func throughputGoodputAndHitRate() throws {
        let outcomes = [
            completed(ttftMs: 100, e2eMs: 500, prompt: 100, cached: 50, output: 5),   // tpot 100 ms
            completed(ttftMs: 300, e2eMs: 700, prompt: 100, cached: 0, output: 5),    // ttft too slow
            completed(ttftMs: 100, e2eMs: 900, prompt: 100, cached: 25, output: 5),   // tpot 200 ms: too slow
            RequestOutcome(status: .failed, error: "HTTP 500"),
        ]
        let summary = RunSummary(record(outcomes, wallSeconds: 2), slo: try SLO(parsing: "ttft=200,tpot=150"))
        #expect(summary.completed == 3 && summary.failed == 1)
        #expect(summary.requestsPerSecond == 1.5)
        #expect(summary.inputTokensPerSecond == 150)
        #expect(summary.outputTokensPerSecond == 7.5)
        #expect(summary.totalTokensPerSecond == 157.5)
        #expect(summary.goodput == 0.5)
        #expect(summary.prefixCacheHitRate == 0.25)
        #expect(summary.errors == ["HTTP 500": 1])
        #expect(summary.ttft?.mean == 500.0 / 3)
    }

    @Test func noCachedFieldMeansNoHitRate() {
        #expect(RunSummary(record([completed(ttftMs: 1, e2eMs: 2)], wallSeconds: 1)).prefixCacheHitRate == nil)
    }

    @Test func sloParsing() throws {
        #expect(try SLO(parsing: "ttft=200,tpot=50") == SLO(ttftMillis: 200, tpotMillis: 50))
        #expect(throws: BenchError.self) { try SLO(parsing: "ttft=fast") }
        #expect(throws: BenchError.self) { try SLO(parsing: "latency=5") }
    }

    @Test func costPerMillionTokens() {
        let machine = MachineProfile(name: "box", description: "", hourlyNanoUSD: 1_000_000_000, vcpus: 2)   // $1/h
        let price = APIPrice(provider: "p", model: "m", input: 1_000_000_000, cachedInput: 100_000_000, output: 2_000_000_000)
        let inputs = CostInputs(pricing: Meter.Pricing(machine: machine, prices: PriceTable(name: "t", asOf: "2026-11-01", source: "", models: [price])),
                                shape: .unknown, shapeSource: "none")
        // 1M prompt tokens (half cached) and 1M output tokens in one hour of wall time.
        let outcomes = [completed(ttftMs: 1, e2eMs: 2, prompt: 1_000_000, cached: 500_000, output: 1_000_000)]
        let cost = RunSummary(record(outcomes, wallSeconds: 3600), pricing: inputs).cost
        // Local: $1 for the hour over 2M tokens = $0.50 per 1M.
        #expect(cost?.localNanoUSD == 500_000_000)
        // API: 0.5M x $1 + 0.5M x $0.10 + 1M x $2 = $2.55 over 2M tokens = $1.275 per 1M.
        #expect(cost?.apis.first?.standardNanoUSD == 1_275_000_000)
        // Unknown shape: no GPU work.
        #expect(cost?.gpuNanoUSD == 0)
    }

    @Test func gpuEquivalentUsesTheCostModel() throws {
        let shape = ModelShape(parameterCount: 134_515_008, weightBytes: 143_025_408, layerCount: 30, attentionWidth: 576, kvWidth: 192)
        let gpu = HardwareProfiles.shipped.defaultGPU
        let inputs = CostInputs(pricing: Meter.Pricing(gpu: gpu), shape: shape, shapeSource: "test")
        let outcome = completed(ttftMs: 1, e2eMs: 2, prompt: 500_000, cached: 0, output: 500_000)
        let cost = try #require(RunSummary(record([outcome], wallSeconds: 1), pricing: inputs).cost)
        let single = CostModel.gpuCostNanoUSD(UsageRecord(id: "", timeMicros: 0, model: "", modelShape: shape, promptTokens: 500_000,
                                                          generatedTokens: 500_000, busyShareMicros: 0), gpu: gpu)
        #expect(single > 0)
        #expect(cost.gpuNanoUSD == single)   // 1M tokens in total: per 1M is the cost itself
    }
}
