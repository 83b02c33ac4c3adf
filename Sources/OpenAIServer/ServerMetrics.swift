// GET /metrics: Prometheus text format, from swift-prometheus's collector registry. Names and meanings follow
// vLLM's (`vllm:prompt_tokens_total` is `tally_prompt_tokens_total` here, and so on) so dashboards and alerts
// written for vLLM carry over by swapping the prefix; what vLLM has no name for (cost, usage records,
// rejections) is tally's own. Every series carries `model_name`. Per-request figures are recorded as requests
// end; the engine's state (running, waiting, KV use, prefix-cache lookups) and the process's (memory, CPU)
// are read at scrape time. The registry is used directly rather than through swift-metrics' global factory:
// the factory cannot carry HELP texts, and a process holds one global while tests run many servers.

import Engine
import Foundation
import Metering
import Prometheus
import Synchronization

package final class ServerMetrics: Sendable {
    package let registry = PrometheusCollectorRegistry()
    private let labels: [(String, String)]

    private let promptTokens: Counter
    private let generationTokens: Counter
    private let cachedPromptTokens: Counter
    private let timeToFirstToken: ValueHistogram
    private let interTokenLatency: ValueHistogram
    private let e2eLatency: ValueHistogram
    private let queueTime: ValueHistogram
    private let prefillTime: ValueHistogram
    private let decodeTime: ValueHistogram
    private let promptLength: ValueHistogram
    private let generationLength: ValueHistogram

    /// Counters read from cumulative totals at scrape time advance by the difference to the last scrape.
    private struct Seen: Sendable {
        var queried = 0, hits = 0, steps = 0, preemptions = 0, recorded = 0, lost = 0, budgetRejections = 0, drafted = 0, accepted = 0
        var cpuSeconds = 0.0
        var costNano: [String: Int64] = [:]
    }
    private let seen = Mutex(Seen())
    /// Prompt and generated tokens of finished requests, for the log's stats line.
    private let tokens = Mutex((prompt: 0, generated: 0))

    package func tokenTotals() -> (prompt: Int, generated: Int) { tokens.withLock { $0 } }

    package init(modelName: String = "unknown") {
        labels = [("model_name", modelName)]
        let r = registry, l = labels
        promptTokens = r.makeCounter(descriptor: named("tally_prompt_tokens_total", "Prompt tokens of finished requests."), labels: l)
        generationTokens = r.makeCounter(descriptor: named("tally_generation_tokens_total", "Tokens generated for finished requests."), labels: l)
        cachedPromptTokens = r.makeCounter(descriptor: named("tally_prompt_tokens_cached_total", "Prompt tokens of finished requests whose KV came from the prefix cache."), labels: l)
        let latency: [Double] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80]
        let tokens: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        timeToFirstToken = r.makeValueHistogram(descriptor: named("tally_time_to_first_token_seconds", "Arrival to first generated token, in seconds."), labels: l, buckets: latency)
        interTokenLatency = r.makeValueHistogram(descriptor: named("tally_inter_token_latency_seconds", "Time between consecutive generated tokens of a request, in seconds."), labels: l, buckets: latency)
        e2eLatency = r.makeValueHistogram(descriptor: named("tally_e2e_request_latency_seconds", "Arrival to the end of generation, in seconds."), labels: l, buckets: latency)
        queueTime = r.makeValueHistogram(descriptor: named("tally_request_queue_time_seconds", "Arrival to the first scheduled step, in seconds."), labels: l, buckets: latency)
        prefillTime = r.makeValueHistogram(descriptor: named("tally_request_prefill_time_seconds", "First scheduled step to first generated token, in seconds."), labels: l, buckets: latency)
        decodeTime = r.makeValueHistogram(descriptor: named("tally_request_decode_time_seconds", "First generated token to the last, in seconds."), labels: l, buckets: latency)
        promptLength = r.makeValueHistogram(descriptor: named("tally_request_prompt_tokens", "Prompt tokens per finished request."), labels: l, buckets: tokens)
        generationLength = r.makeValueHistogram(descriptor: named("tally_request_generation_tokens", "Generated tokens per finished request."), labels: l, buckets: tokens)
        // The finish reasons exist from the start at 0, so a rate over them is defined before the first request.
        for reason in ["stop", "length", "abort"] { _ = finished(reason) }
    }

    private func finished(_ reason: String) -> Counter {
        registry.makeCounter(descriptor: named("tally_request_success_total", "Finished requests by finish reason."), labels: labels + [("finished_reason", reason)])
    }

    /// A finished generation (any finish reason).
    func recordFinished(reason: String, stats: RequestStats, endToEndSeconds: Double) {
        finished(reason).increment()
        tokens.withLock { $0.prompt += stats.promptTokens; $0.generated += stats.generatedTokens }
        promptTokens.increment(by: Int64(stats.promptTokens))
        cachedPromptTokens.increment(by: Int64(stats.cachedTokens))
        generationTokens.increment(by: Int64(stats.generatedTokens))
        e2eLatency.record(endToEndSeconds)
        queueTime.record(Double(stats.queueMicros) / 1e6)
        prefillTime.record(Double(stats.prefillMicros) / 1e6)
        decodeTime.record(Double(stats.decodeMicros) / 1e6)
        promptLength.record(Double(stats.promptTokens))
        generationLength.record(Double(stats.generatedTokens))
    }

    func recordFirstToken(seconds: Double) { timeToFirstToken.record(seconds) }

    func recordInterToken(seconds: Double) { interTokenLatency.record(seconds) }

    /// A request refused before or by the engine (400, 401, 413, 429, 503...).
    func recordRejected(status: Int) {
        registry.makeCounter(descriptor: named("tally_requests_rejected_total", "Requests refused with an error status."), labels: labels + [("status", String(status))]).increment()
    }

    package func render(_ snapshot: EngineSnapshot, metering: Meter.Totals? = nil) -> String {
        let r = registry, l = labels
        r.makeGauge(descriptor: named("tally_num_requests_running", "Requests in the running batch."), labels: l).set(to: Double(snapshot.running))
        r.makeGauge(descriptor: named("tally_num_requests_waiting", "Requests waiting to be scheduled."), labels: l).set(to: Double(snapshot.waiting))
        r.makeGauge(descriptor: named("tally_kv_cache_usage_perc", "KV cache blocks in use, as a fraction (1 means all)."), labels: l)
            .set(to: snapshot.kvBlocksTotal == 0 ? 0 : Double(snapshot.kvBlocksUsed) / Double(snapshot.kvBlocksTotal))
        r.makeGauge(descriptor: named("tally_kv_cache_blocks_used", "KV cache blocks (16 positions each) in use."), labels: l)
            .set(to: Double(snapshot.kvBlocksUsed))
        r.makeGauge(descriptor: named("tally_kv_cache_blocks_capacity", "KV cache blocks (16 positions each) in all."), labels: l)
            .set(to: Double(snapshot.kvBlocksTotal))
        let process = ProcessStats.read()
        seen.withLock { seen in
            func advance(_ name: String, _ help: String, _ now: Int, _ last: inout Int, labels extra: [(String, String)] = []) {
                r.makeCounter(descriptor: named(name, help), labels: l + extra).increment(by: Int64(max(0, now - last)))
                last = max(last, now)
            }
            advance("tally_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", snapshot.prefixCacheQueriedTokens, &seen.queried)
            advance("tally_prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", snapshot.prefixCacheHitTokens, &seen.hits)
            advance("tally_engine_steps_total", "Engine steps (forward passes over a batch).", snapshot.steps, &seen.steps)
            advance("tally_num_preemptions_total", "Requests preempted (KV dropped and recomputed later).", snapshot.preemptions, &seen.preemptions)
            advance("tally_spec_decode_num_draft_tokens_total", "Draft tokens proposed by prompt lookup (speculative decoding).",
                    snapshot.draftTokens, &seen.drafted)
            advance("tally_spec_decode_num_accepted_tokens_total", "Draft tokens the model agreed with and kept.",
                    snapshot.acceptedDraftTokens, &seen.accepted)
            if let process {
                r.makeGauge(descriptor: named("process_resident_memory_bytes", "Resident memory size in bytes.")).set(to: process.residentBytes)
                r.makeGauge(descriptor: named("process_virtual_memory_bytes", "Virtual memory size in bytes.")).set(to: process.virtualBytes)
                r.makeGauge(descriptor: named("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds."))
                    .set(to: process.startTime)
                r.makeGauge(descriptor: named("process_open_fds", "Number of open file descriptors.")).set(to: process.openFDs)
                r.makeCounter(descriptor: named("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."))
                    .increment(by: max(0, process.cpuSeconds - seen.cpuSeconds))
                seen.cpuSeconds = max(seen.cpuSeconds, process.cpuSeconds)
            }
            if let metering { renderMetering(metering, seen: &seen) }
        }
        return r.emitToString()
    }

    /// Cost counters by served model, in USD (Prometheus counts in base units); tenants stay in reports.
    private func renderMetering(_ m: Meter.Totals, seen: inout Seen) {
        let r = registry, l = labels
        func advance(_ name: String, _ help: String, _ now: Int, _ last: inout Int) {
            r.makeCounter(descriptor: named(name, help), labels: l).increment(by: Int64(max(0, now - last)))
            last = max(last, now)
        }
        advance("tally_usage_records_total", "Usage records written durably.", m.recorded, &seen.recorded)
        advance("tally_usage_records_lost_total", "Usage records the store failed to write (logged).", m.lost, &seen.lost)
        advance("tally_budget_rejections_total", "Requests refused by a budget (429).", m.budgetRejections, &seen.budgetRejections)
        // By the model the records name (the served one), so `model_name` is the one label a dashboard joins on.
        func cost(_ name: String, _ help: String, _ labels: [(String, String)], _ nano: Int64) {
            let key = ([name] + labels.map { "\($0.0)=\($0.1)" }).joined(separator: "|")
            let last = seen.costNano[key] ?? 0
            r.makeCounter(descriptor: named(name, help), labels: labels).increment(by: Double(max(0, nano - last)) / 1e9)
            seen.costNano[key] = max(last, nano)
        }
        for model in m.costByModel.keys.sorted() {
            let c = m.costByModel[model]!
            cost("tally_cost_local_usd_total", "Local cost: machine price times the requests' share of busy time.", [("model_name", model)], c.localNanoUSD)
            cost("tally_cost_gpu_equivalent_usd_total", "What the same work would cost on the reference GPU.", [("model_name", model)], c.gpuNanoUSD)
            for api in c.apiStandardNanoUSD.keys.sorted() {
                for (tier, value) in [("standard", c.apiStandardNanoUSD[api]!), ("batch", c.apiBatchNanoUSD[api] ?? 0)] {
                    cost("tally_cost_api_equivalent_usd_total", "What the same tokens would cost on each compared API, by tier.",
                         [("model_name", model), ("api", api), ("tier", tier)], value)
                }
            }
        }
    }
}

/// A metric's full name and HELP text as swift-prometheus takes them.
private func named(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}

/// The process's own figures from /proc (Linux), as Prometheus's client libraries export them.
struct ProcessStats {
    var residentBytes = 0.0, virtualBytes = 0.0, cpuSeconds = 0.0, startTime = 0.0, openFDs = 0.0

    static func read() -> ProcessStats? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces), from field 3 (state) on.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 22, let utime = Double(fields[11]), let stime = Double(fields[12]), let start = Double(fields[19]),
              let vsize = Double(fields[20]), let rss = Double(fields[21]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK))), page = Double(sysconf(Int32(_SC_PAGESIZE)))
        var stats = ProcessStats(residentBytes: rss * page, virtualBytes: vsize, cpuSeconds: (utime + stime) / ticks)
        if let boot = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?
            .split(separator: "\n").first(where: { $0.hasPrefix("btime ") }).flatMap({ Double($0.dropFirst(6)) }) {
            stats.startTime = boot + start / ticks
        }
        stats.openFDs = Double((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0)
        return stats
    }
}
