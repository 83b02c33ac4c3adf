// From a run's outcomes to its figures: counts, throughput, latency percentiles (HdrHistogram), goodput
// under an SLO, prefix-cache hit rate, and cost per 1M tokens.

import Foundation
import Histogram
import Metering

/// Mean and percentiles of one latency, in milliseconds.
package struct LatencyStats: Sendable, Equatable, Codable {
    package var count: Int
    package var mean: Double
    package var p50: Double
    package var p90: Double
    package var p99: Double
    package var max: Double

    /// Percentiles come from an HdrHistogram of microseconds with 3 significant digits (within 0.1% of the
    /// exact value); the mean is exact.
    package init?(micros values: [Int64]) {
        guard !values.isEmpty else { return nil }
        let histogram = Self.histogram(values)
        count = values.count
        mean = Double(values.reduce(0, +)) / Double(values.count) / 1000
        p50 = Double(histogram.valueAtPercentile(50)) / 1000
        p90 = Double(histogram.valueAtPercentile(90)) / 1000
        p99 = Double(histogram.valueAtPercentile(99)) / 1000
        max = Double(values.max() ?? 0) / 1000
    }

    static func histogram(_ values: [Int64]) -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000,
                                          numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        for value in values { _ = histogram.record(UInt64(Swift.max(0, value))) }
        return histogram
    }

    /// (percentile, milliseconds) at 0, 5, ..., 95, 99, 100: the latency distribution the HTML chart draws.
    static func distribution(micros values: [Int64]) -> [[Double]] {
        guard !values.isEmpty else { return [] }
        let histogram = histogram(values)
        return (Array(stride(from: 0.0, through: 95, by: 5)) + [99, 100]).map {
            [$0, Double(histogram.valueAtPercentile($0)) / 1000]
        }
    }
}

/// A service-level objective: a request counts towards goodput only if it met every bound given.
package struct SLO: Sendable, Equatable, Codable {
    package var ttftMillis: Double?
    package var tpotMillis: Double?
    package var e2eMillis: Double?

    package init(ttftMillis: Double? = nil, tpotMillis: Double? = nil, e2eMillis: Double? = nil) {
        self.ttftMillis = ttftMillis
        self.tpotMillis = tpotMillis
        self.e2eMillis = e2eMillis
    }

    /// `ttft=200,tpot=50` (milliseconds; `e2e` too).
    package init(parsing text: String) throws {
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Double(pair[1]), value > 0 else { throw BenchError.badSLO(text) }
            switch pair[0] {
            case "ttft": ttftMillis = value
            case "tpot": tpotMillis = value
            case "e2e": e2eMillis = value
            default: throw BenchError.badSLO(text)
            }
        }
    }

    func met(by outcome: RequestOutcome) -> Bool {
        guard outcome.status == .completed else { return false }
        if let ttftMillis, Double(outcome.ttftMicros ?? .max) / 1000 > ttftMillis { return false }
        // One output token has no TPOT; it cannot break the bound.
        if let tpotMillis, let tpot = outcome.tpotMicros, Double(tpot) / 1000 > tpotMillis { return false }
        if let e2eMillis, Double(outcome.e2eMicros) / 1000 > e2eMillis { return false }
        return true
    }

    var text: String {
        [("ttft", ttftMillis), ("tpot", tpotMillis), ("e2e", e2eMillis)]
            .compactMap { name, value in value.map { "\(name)=\(formatNumber($0))ms" } }.joined(separator: ",")
    }
}

/// The figures of one run (one load level).
package struct RunSummary: Sendable, Equatable, Codable {
    /// Clients (closed loop) or nil; arrival rate (open loop) or nil.
    package var concurrency: Int?
    package var arrivalRate: Double?
    package var completed: Int
    package var failed: Int
    /// Still running at the time limit.
    package var cancelled: Int
    package var hitTimeLimit: Bool
    package var wallSeconds: Double
    package var promptTokens: Int
    package var cachedTokens: Int
    package var outputTokens: Int
    package var requestsPerSecond: Double
    package var inputTokensPerSecond: Double
    package var outputTokensPerSecond: Double
    package var totalTokensPerSecond: Double
    package var ttft: LatencyStats?
    package var tpot: LatencyStats?
    package var itl: LatencyStats?
    package var e2e: LatencyStats?
    /// Completed requests per second that met the SLO (nil without one).
    package var slo: SLO?
    package var goodput: Double?
    /// Cached prompt tokens / prompt tokens over completed requests; nil if the server never reported any.
    package var prefixCacheHitRate: Double?
    /// End-to-end latency distribution, [percentile, ms] pairs.
    package var e2eDistribution: [[Double]]
    /// The most frequent failure messages and their counts (at most 5).
    package var errors: [String: Int]
    package var cost: CostPerMillion?

    /// Token counts and throughput cover completed requests only; a failed request's partial output is
    /// not throughput.
    package init(_ record: RunRecord, slo: SLO? = nil, pricing: CostInputs? = nil) {
        switch record.plan.mode {
        case .concurrency(let n): concurrency = n; arrivalRate = nil
        case .arrivalRate(let rate): concurrency = nil; arrivalRate = rate
        }
        let done = record.outcomes.filter { $0.status == .completed }
        completed = done.count
        failed = record.outcomes.count { $0.status == .failed }
        cancelled = record.outcomes.count { $0.status == .cancelled }
        hitTimeLimit = record.hitTimeLimit
        wallSeconds = Double(record.wallMicros) / 1_000_000
        promptTokens = done.reduce(0) { $0 + $1.promptTokens }
        cachedTokens = done.reduce(0) { $0 + ($1.cachedTokens ?? 0) }
        outputTokens = done.reduce(0) { $0 + $1.outputTokens }
        let seconds = Swift.max(wallSeconds, 1e-9)
        requestsPerSecond = Double(completed) / seconds
        inputTokensPerSecond = Double(promptTokens) / seconds
        outputTokensPerSecond = Double(outputTokens) / seconds
        totalTokensPerSecond = Double(promptTokens + outputTokens) / seconds
        ttft = LatencyStats(micros: done.compactMap(\.ttftMicros))
        tpot = LatencyStats(micros: done.compactMap(\.tpotMicros))
        itl = LatencyStats(micros: done.flatMap(\.interChunkMicros))
        e2e = LatencyStats(micros: done.map(\.e2eMicros))
        self.slo = slo
        goodput = slo.map { slo in Double(done.count { slo.met(by: $0) }) / seconds }
        prefixCacheHitRate = done.contains { $0.cachedTokens != nil } && promptTokens > 0
            ? Double(cachedTokens) / Double(promptTokens) : nil
        e2eDistribution = LatencyStats.distribution(micros: done.map(\.e2eMicros))
        var errorCounts: [String: Int] = [:]
        for outcome in record.outcomes where outcome.status == .failed { errorCounts[outcome.error ?? "unknown", default: 0] += 1 }
        errors = Dictionary(uniqueKeysWithValues: errorCounts.sorted { $0.value > $1.value }.prefix(5).map { ($0.key, $0.value) })
        cost = pricing.map { CostPerMillion(done, wallMicros: record.wallMicros, inputs: $0) }
    }

    /// "c=4" or "rate=2/s": the run's load level.
    package var levelLabel: String {
        RunSummary.label(concurrency.map { .concurrency($0) } ?? .arrivalRate(arrivalRate ?? 0))
    }
}

func formatNumber(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
    return String(format: "%.2f", value)
}
