// One request's usage, by one route. The engine's `onFinish` (on the engine thread, however the request
// ends: finished, stopped by a stop string, aborted because the client left) counts the request in /metrics
// and starts writing its usage record; the response then awaits `usage()` for its `usage` object.

import Engine
import Foundation
import Logging
import Metering
import Synchronization

/// Made per request before it is submitted; its `finished` is the request's `onFinish`.
///
/// Why the engine's hook and not the stream's `.finished`: a client that goes away stops reading the stream,
/// so `.finished` is never read, but the request still ran and must be recorded and counted. The hook always
/// fires, and before `.finished` is yielded, so a response that read `.finished` finds the record under way.
final class UsageRecorder: Sendable {
    private let requestID: RequestID
    private let arrival: ContinuousClock.Instant
    private let model: String
    private let modelShape: ModelShape
    private let tenant: String?
    private let user: String?
    private let tags: [String]
    private let session: String?
    private let replica: String?
    private let kind: UsageKind?
    private let meter: Meter?
    private let metrics: ServerMetrics
    private let logger: Logger

    /// The engine's report of the end, and the background write of its record (nil without a meter).
    private struct Ended: Sendable {
        var stats: RequestStats
        var write: Task<CostModel.RequestCost, Never>?
    }
    private enum State {
        case running(waiters: [CheckedContinuation<Ended, Never>])
        case ended(Ended)
    }
    private let state = Mutex(State.running(waiters: []))

    init(requestID: RequestID, arrival: ContinuousClock.Instant, model: String, modelShape: ModelShape,
         tenant: String?, user: String?, tags: [String], session: String?, replica: String? = nil, kind: UsageKind? = nil,
         meter: Meter?, metrics: ServerMetrics, logger: Logger = Logger(label: "tally")) {
        self.requestID = requestID
        self.arrival = arrival
        self.model = model
        self.modelShape = modelShape
        self.tenant = tenant
        self.user = user
        self.tags = tags
        self.session = session
        self.replica = replica
        self.kind = kind
        self.meter = meter
        self.metrics = metrics
        self.logger = logger
    }

    /// The engine's `onFinish`: counts the request in /metrics and starts the durable write. Keep it quick
    /// (engine thread); a second report of the same request is ignored.
    func finished(_ reason: FinishReason, _ stats: RequestStats) {
        let report: (ended: Ended, waiters: [CheckedContinuation<Ended, Never>])? = state.withLock { state in
            guard case .running(let waiters) = state else { return nil }
            // Counted before the state says ended: a response sent once it does is already on /metrics (a
            // client that scraped right after its answer could miss it, as a CI run once did).
            metrics.recordFinished(reason: reason.rawValue, stats: stats, endToEndSeconds: (ContinuousClock.now - arrival).inSeconds)
            let ended = Ended(stats: stats, write: meter.map { $0.recordInBackground(record(reason, stats, at: $0.now)) })
            state = .ended(ended)
            return (ended, waiters)
        }
        guard let report else { return }
        for waiter in report.waiters { waiter.resume(returning: report.ended) }
        logFinished(reason, stats, write: report.ended.write)
    }

    /// The request's info line: ids, counts, timings and cost (once its record is written), no text.
    private func logFinished(_ reason: FinishReason, _ stats: RequestStats, write: Task<CostModel.RequestCost, Never>?) {
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "request_id": "\(requestID)", "tenant": "\(tenant ?? "-")", "finish_reason": "\(reason.rawValue)",
            "prompt_tokens": "\(stats.promptTokens)", "cached_tokens": "\(stats.cachedTokens)", "generated_tokens": "\(stats.generatedTokens)",
            "queue_ms": "\(stats.queueMicros / 1000)", "prefill_ms": "\(stats.prefillMicros / 1000)", "decode_ms": "\(stats.decodeMicros / 1000)",
        ]
        if stats.decodeMicros > 0 && stats.generatedTokens > 1 {
            metadata["decode_tokens_per_s"] = "\(String(format: "%.1f", Double(stats.generatedTokens - 1) * 1e6 / Double(stats.decodeMicros)))"
        }
        let logger = self.logger, counts = metadata
        guard let write else { return logger.info("request finished", metadata: counts) }
        Task {
            var metadata = counts
            let cost = await write.value
            metadata["cost_local_usd"] = "\(String(format: "%.9f", Double(cost.localNanoUSD) / 1e9))"
            metadata["cost_gpu_equivalent_usd"] = "\(String(format: "%.9f", Double(cost.gpuNanoUSD) / 1e9))"
            logger.info("request finished", metadata: metadata)
        }
    }

    /// The response's `usage` object, with `cost` when metered. Waits for the engine's report (already in
    /// when the stream's `.finished` was read) and for the record's write: send the final chunk after this.
    func usage() async -> JSON {
        let ended = await self.ended()
        var cost: JSON?
        if let meter, let write = ended.write {
            cost = Self.costJSON(await write.value, pricing: meter.pricing, embedding: kind == .embedding)
        }
        return Self.usageJSON(ended.stats, cost: cost)
    }

    private func ended() async -> Ended {
        await withCheckedContinuation { continuation in
            let ended: Ended? = state.withLock { state in
                switch state {
                case .ended(let ended):
                    return ended
                case .running(var waiters):
                    waiters.append(continuation)
                    state = .running(waiters: waiters)
                    return nil
                }
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    private func record(_ reason: FinishReason, _ stats: RequestStats, at time: Int64) -> UsageRecord {
        let outcome: UsageOutcome = switch reason {
        case .stop: .stop
        case .length: .length
        case .abort: .aborted
        }
        return UsageRecord(id: requestID, timeMicros: time, model: model, modelShape: modelShape, tenant: tenant,
                           user: user, tags: tags, session: session, replica: replica, promptTokens: stats.promptTokens, cachedTokens: stats.cachedTokens,
                           cacheWriteTokens: stats.cacheWriteTokens, generatedTokens: stats.generatedTokens,
                           queueMicros: stats.queueMicros, prefillMicros: stats.prefillMicros, decodeMicros: stats.decodeMicros,
                           busyShareMicros: stats.busyShareMicros, finishReason: outcome, kind: kind)
    }

    private static func usageJSON(_ stats: RequestStats, cost: JSON?) -> JSON {
        func ms(_ micros: Int64) -> JSON { .double(Double(micros) / 1000) }
        func perSecond(_ tokens: Int, _ micros: Int64) -> JSON {
            micros > 0 && tokens > 0 ? .double((Double(tokens) * 1_000_000 / Double(micros) * 100).rounded() / 100) : .double(0)
        }
        var members: [(String, JSON)] = [
            ("prompt_tokens", .int(stats.promptTokens)),
            ("completion_tokens", .int(stats.generatedTokens)),
            ("total_tokens", .int(stats.promptTokens + stats.generatedTokens)),
            ("prompt_tokens_details", .object([("cached_tokens", .int(stats.cachedTokens))])),
            ("timings", .object([
                ("queue_ms", ms(stats.queueMicros)),
                ("prefill_ms", ms(stats.prefillMicros)),
                ("decode_ms", ms(stats.decodeMicros)),
                // Prompt tokens actually computed (not served from the prefix cache) per second of prefill.
                ("prompt_tokens_per_second", perSecond(stats.promptTokens - stats.cachedTokens, stats.prefillMicros)),
                // Decode covers first to last generated token: generatedTokens - 1 intervals.
                ("generated_tokens_per_second", perSecond(stats.generatedTokens - 1, stats.decodeMicros)),
            ] + (stats.draftTokens == 0 ? [] : [
                // Speculative decoding: draft tokens proposed, kept, and the share kept.
                ("draft_tokens", .int(stats.draftTokens)), ("accepted_draft_tokens", .int(stats.acceptedDraftTokens)),
                ("draft_acceptance_rate", .double((Double(stats.acceptedDraftTokens) / Double(stats.draftTokens) * 1000).rounded() / 1000)),
            ]))),
        ]
        if let cost { members.append(("cost", cost)) }
        return .object(members)
    }

    /// `usage.cost`: what this request cost here, on the reference GPU and on each compared API, in USD.
    /// An embedding request's API costs are named by the embedding model that priced them.
    private static func costJSON(_ cost: CostModel.RequestCost, pricing: Meter.Pricing, embedding: Bool) -> JSON {
        func usd(_ nano: Int64) -> JSON { .double(Double(nano) / 1e9) }
        func name(_ label: String) -> String {
            guard embedding, let paired = pricing.prices.models.first(where: { $0.label == label })?.embedding else { return label }
            return paired.label
        }
        var seen = Set<String>()
        return .object([
            ("currency", .string("USD")),
            ("local", usd(cost.localNanoUSD)),
            ("gpu_equivalent", usd(cost.gpuNanoUSD)),
            ("api_equivalent", .object(cost.apis.compactMap { api in
                // Several chat models of one provider share its embedding model: named once.
                let key = name(api.model)
                guard seen.insert(key).inserted else { return nil }
                return (key, .object([("standard", usd(api.standardNanoUSD)), ("batch", usd(api.batchNanoUSD))]))
            })),
            ("machine", .string(pricing.machine.name)),
            ("gpu", .string(pricing.gpu.name)),
            ("prices", .string("\(pricing.prices.name) (\(pricing.prices.asOf))")),
        ])
    }
}
