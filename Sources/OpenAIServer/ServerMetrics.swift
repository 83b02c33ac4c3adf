// GET /metrics: Prometheus text format (version 0.0.4), from the counters and histograms the server keeps
// per request plus the engine's snapshot. A small registry of our own rather than swift-metrics +
// swift-prometheus: a dozen fixed series need no dynamic registry, and the text stays easy to test.

import Engine
import Foundation
import Metering
import Synchronization

/// A cumulative histogram with fixed upper bounds, in seconds.
struct Histogram: Sendable {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
        sum += value
        count += 1
    }
}

package final class ServerMetrics: Sendable {
    struct State: Sendable {
        var requestsByFinishReason: [String: Int] = [:]
        var rejectedByStatus: [Int: Int] = [:]
        var promptTokens = 0
        var cachedPromptTokens = 0
        var generatedTokens = 0
        var timeToFirstToken = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
        var interTokenLatency = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5])
        var requestLatency = Histogram(bounds: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300])
    }

    private let state = Mutex(State())

    package init() {}

    /// A finished generation (any finish reason).
    func recordFinished(reason: String, stats: RequestStats, endToEndSeconds: Double) {
        state.withLock {
            $0.requestsByFinishReason[reason, default: 0] += 1
            $0.promptTokens += stats.promptTokens
            $0.cachedPromptTokens += stats.cachedTokens
            $0.generatedTokens += stats.generatedTokens
            $0.requestLatency.observe(endToEndSeconds)
        }
    }

    func recordFirstToken(seconds: Double) { state.withLock { $0.timeToFirstToken.observe(seconds) } }

    func recordInterToken(seconds: Double) { state.withLock { $0.interTokenLatency.observe(seconds) } }

    /// A request refused before or by the engine (400, 401, 413, 429, 503...).
    func recordRejected(status: Int) { state.withLock { $0.rejectedByStatus[status, default: 0] += 1 } }

    package func render(_ snapshot: EngineSnapshot, metering: Meter.Totals? = nil) -> String {
        let s = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, labels: String = "", _ value: Int) {
            out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
        }
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            family(name, "histogram", help)
            for (bound, count) in zip(h.bounds, h.counts) { sample("\(name)_bucket", labels: "le=\"\(bound)\"", count) }
            sample("\(name)_bucket", labels: "le=\"+Inf\"", h.count)
            out += "\(name)_sum \(h.sum)\n"
            sample("\(name)_count", h.count)
        }

        family("tally_requests_total", "counter", "Finished generation requests by finish reason.")
        for reason in Set(s.requestsByFinishReason.keys).union(["stop", "length", "abort"]).sorted() {
            sample("tally_requests_total", labels: "finish_reason=\"\(reason)\"", s.requestsByFinishReason[reason] ?? 0)
        }
        family("tally_requests_rejected_total", "counter", "Generation requests refused with an error status.")
        for status in s.rejectedByStatus.keys.sorted() {
            sample("tally_requests_rejected_total", labels: "status=\"\(status)\"", s.rejectedByStatus[status]!)
        }
        family("tally_prompt_tokens_total", "counter", "Prompt tokens of finished requests.")
        sample("tally_prompt_tokens_total", s.promptTokens)
        family("tally_cached_prompt_tokens_total", "counter", "Prompt tokens of finished requests served from the prefix cache.")
        sample("tally_cached_prompt_tokens_total", s.cachedPromptTokens)
        family("tally_generated_tokens_total", "counter", "Tokens generated for finished requests.")
        sample("tally_generated_tokens_total", s.generatedTokens)
        family("tally_prefix_cache_queried_tokens_total", "counter", "Prompt tokens looked up in the prefix cache.")
        sample("tally_prefix_cache_queried_tokens_total", snapshot.prefixCacheQueriedTokens)
        family("tally_prefix_cache_hit_tokens_total", "counter", "Prompt tokens found in the prefix cache.")
        sample("tally_prefix_cache_hit_tokens_total", snapshot.prefixCacheHitTokens)
        family("tally_engine_steps_total", "counter", "Engine steps (forward passes over a batch).")
        sample("tally_engine_steps_total", snapshot.steps)
        family("tally_preemptions_total", "counter", "Requests preempted (KV dropped and recomputed later).")
        sample("tally_preemptions_total", snapshot.preemptions)
        family("tally_requests_running", "gauge", "Requests in the running batch.")
        sample("tally_requests_running", snapshot.running)
        family("tally_requests_waiting", "gauge", "Requests waiting to be scheduled.")
        sample("tally_requests_waiting", snapshot.waiting)
        family("tally_kv_blocks_used", "gauge", "KV cache blocks in use.")
        sample("tally_kv_blocks_used", snapshot.kvBlocksUsed)
        family("tally_kv_blocks_total", "gauge", "KV cache blocks in all.")
        sample("tally_kv_blocks_total", snapshot.kvBlocksTotal)
        histogram("tally_time_to_first_token_seconds", "Arrival to first generated token.", s.timeToFirstToken)
        histogram("tally_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.", s.interTokenLatency)
        histogram("tally_request_latency_seconds", "Arrival to the end of generation.", s.requestLatency)
        if let metering { renderMetering(metering, into: &out) }
        return out
    }

    /// Cost counters by served model, in USD (Prometheus counts in base units); tenants stay in reports.
    private func renderMetering(_ m: Meter.Totals, into out: inout String) {
        func family(_ name: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n" }
        func usd(_ nano: Int64) -> String { String(format: "%.9f", Double(nano) / 1e9) }
        func label(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
        family("tally_usage_records_total", "Usage records written durably.")
        out += "tally_usage_records_total \(m.recorded)\n"
        family("tally_usage_records_lost_total", "Usage records the store failed to write (logged).")
        out += "tally_usage_records_lost_total \(m.lost)\n"
        family("tally_budget_rejections_total", "Requests refused by a budget (429).")
        out += "tally_budget_rejections_total \(m.budgetRejections)\n"
        let models = m.costByModel.keys.sorted()
        family("tally_cost_local_usd_total", "Local cost: machine price times the requests' share of busy time.")
        for model in models { out += "tally_cost_local_usd_total{model=\"\(label(model))\"} \(usd(m.costByModel[model]!.localNanoUSD))\n" }
        family("tally_cost_gpu_equivalent_usd_total", "What the same work would cost on the reference GPU.")
        for model in models { out += "tally_cost_gpu_equivalent_usd_total{model=\"\(label(model))\"} \(usd(m.costByModel[model]!.gpuNanoUSD))\n" }
        family("tally_cost_api_equivalent_usd_total", "What the same tokens would cost on each compared API, by tier.")
        for model in models {
            let cost = m.costByModel[model]!
            for api in cost.apiStandardNanoUSD.keys.sorted() {
                for (tier, value) in [("standard", cost.apiStandardNanoUSD[api]!), ("batch", cost.apiBatchNanoUSD[api] ?? 0)] {
                    out += "tally_cost_api_equivalent_usd_total{model=\"\(label(model))\",api=\"\(label(api))\",tier=\"\(tier)\"} \(usd(value))\n"
                }
            }
        }
    }
}
