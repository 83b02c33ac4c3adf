// The server with a meter: every finished request leaves one usage record (tenant fingerprint, user, tags,
// the engine's token counts and timings) before its response ends, `usage.cost` is that record priced,
// budgets refuse with 429, aborted requests are recorded too, and /metrics carries the cost counters.

import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metering
import OpenAIServer
import Synchronization
import Testing

private let sentence = "The capital of France is Paris. It is a lovely city."
private let fixedTime: Int64 = 1_795_000_000_000_000  // 2026-11-18T...Z; any fixed instant

private func meteredConfig(store: any UsageStore, budgets: BudgetPolicy = .unlimited, keys: [TenantKey] = ["k0", "k1"]) -> ServerConfig {
    var config = ServerConfig()
    config.apiKeys = keys
    config.modelShape = ModelShape(parameterCount: 134_515_008, weightBytes: 144_000_000, layerCount: 30, attentionWidth: 576, kvWidth: 192)
    config.meter = Meter(store: store, budgets: budgets, nowMicros: { fixedTime }, log: { _ in })
    return config
}

private func sentenceEngine(cached: Int = 0, delay: Duration? = nil) throws -> FakeEngine {
    FakeEngine(script: .init(tokens: try Fixture.tokens(sentence) + [try Fixture.eos()], cachedTokens: cached, delay: delay))
}

@Suite struct MeteringRouteTests {
    @Test func recordIsStoredBeforeTheResponseAndPricedInUsage() async throws {
        let store = InMemoryUsageStore()
        let config = meteredConfig(store: store)
        let engine = try sentenceEngine(cached: 2)
        try await makeApp(engine, config: config).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "hi", "user": "alice", "max_tokens": 40}"#,
                                                 headers: [.authorization: "Bearer k1", HTTPField.Name("X-Tally-Tags")!: "team-a, nightly,team-a"])
            #expect(response.status == .ok)
            // Durable before the response ended: no waiting here.
            let records = try await store.records(in: .all, tenant: nil)
            let record = try #require(records.first)
            #expect(records.count == 1)
            let json = try response.json()
            #expect(record.id == json["id"] as? String)
            #expect(record.tenant == Tenant.fingerprint(apiKey: "k1"))
            #expect(record.tenant != "k1")
            #expect(record.user == "alice")
            #expect(record.tags == ["team-a", "nightly"])
            #expect(record.model == "smollm2-test")
            #expect(record.modelShape == config.modelShape)
            #expect(record.finishReason == .stop)
            #expect(record.timeMicros == fixedTime)
            let usage = try #require(json["usage"] as? [String: Any])
            #expect(record.promptTokens == usage["prompt_tokens"] as? Int)
            #expect(record.generatedTokens == usage["completion_tokens"] as? Int)
            #expect(record.cachedTokens == 2)
            #expect(record.busyShareMicros == 90_000)
            #expect(record.prefillMicros == 20_000 && record.decodeMicros == 100_000 && record.queueMicros == 1_500)

            let meter = try #require(config.meter)
            let expected = CostModel.cost(of: record, machine: meter.pricing.machine, gpu: meter.pricing.gpu, prices: meter.pricing.prices)
            #expect(expected.localNanoUSD > 0 && expected.gpuNanoUSD > 0)
            let cost = try #require(usage["cost"] as? [String: Any])
            #expect(cost["currency"] as? String == "USD")
            #expect(cost["local"] as? Double == Double(expected.localNanoUSD) / 1e9)
            #expect(cost["gpu_equivalent"] as? Double == Double(expected.gpuNanoUSD) / 1e9)
            let apis = try #require(cost["api_equivalent"] as? [String: [String: Double]])
            #expect(apis.count == meter.pricing.prices.models.count)
            for api in expected.apis {
                #expect(apis[api.model]?["standard"] == Double(api.standardNanoUSD) / 1e9)
                #expect(apis[api.model]?["batch"] == Double(api.batchNanoUSD) / 1e9)
            }

            let metrics = try await client.execute(uri: "/metrics", method: .get).text
            let m = metricValues(metrics)
            #expect(m["tally_usage_records_total"] == 1)
            #expect(m["tally_usage_records_lost_total"] == 0)
            // Cost counters are labelled with the model the records name.
            #expect(metrics.contains(#"tally_cost_local_usd_total{model_name="smollm2-test"} "#))
            #expect(abs(m["tally_cost_local_usd_total"]! - Double(expected.localNanoUSD) / 1e9) < 1e-12)
            let first = try #require(expected.apis.first)
            #expect(abs(m[#"tally_cost_api_equivalent_usd_total{api="\#(first.model)",tier="batch"}"#]! - Double(first.batchNanoUSD) / 1e9) < 1e-12)
        }
    }

    @Test func streamRecordsBeforeTheFinalChunkAndCarriesCost() async throws {
        let store = InMemoryUsageStore()
        let engine = try sentenceEngine()
        try await makeApp(engine, config: meteredConfig(store: store)).test(.router) { client in
            let response = try await client.post("/v1/chat/completions",
                                                 #"{"messages": [{"role": "user", "content": "hi"}], "stream": true, "stream_options": {"include_usage": true}}"#,
                                                 headers: [.authorization: "Bearer k0"])
            let payloads = try response.sseData()
            #expect(payloads.last == "[DONE]")
            let usageChunk = try object(payloads[payloads.count - 2])
            let usage = try #require(usageChunk["usage"] as? [String: Any])
            #expect(usage["cost"] is [String: Any])
            let records = try await store.records(in: .all, tenant: Tenant.fingerprint(apiKey: "k0"))
            #expect(records.count == 1)
            #expect(records.first?.generatedTokens == usage["completion_tokens"] as? Int)
        }
    }

    @Test func stopStringEndsTheEngineRequestAndKeepsItsStats() async throws {
        let store = InMemoryUsageStore()
        let engine = try sentenceEngine(cached: 3, delay: .milliseconds(2))
        try await makeApp(engine, config: meteredConfig(store: store)).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "hi", "stop": ["Paris"]}"#,
                                                 headers: [.authorization: "Bearer k0"])
            let json = try response.json()
            #expect(try firstChoice(json)["text"] as? String == "The capital of France is ")
            #expect(try firstChoice(json)["finish_reason"] as? String == "stop")
            let usage = try #require(json["usage"] as? [String: Any])
            // The engine's stats, not the server's guess: cached tokens and timings survive a stop string.
            #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 3)
            #expect(engine.ended.values.contains(.stop))
            let record = try #require(try await store.records(in: .all, tenant: nil).first)
            #expect(record.cachedTokens == 3)
            #expect(record.generatedTokens == usage["completion_tokens"] as? Int)
            // Counted as the engine generated them: through the match, and any made before it heard `end`.
            #expect(record.generatedTokens >= (try Fixture.tokens("The capital of France is Paris").count))
        }
    }

    @Test func outputCapRejectsExplicitMaxTokensAndCapsTheRest() async throws {
        let store = InMemoryUsageStore()
        var policy = BudgetPolicy(defaultMaxOutputTokens: 100)
        policy.tenants[Tenant.fingerprint(apiKey: "k1")] = TenantBudget(maxOutputTokens: 3)
        let engine = try sentenceEngine()
        try await makeApp(engine, config: meteredConfig(store: store, budgets: policy)).test(.router) { client in
            let refused = try await client.post("/v1/completions", #"{"prompt": "hi", "max_tokens": 10}"#, headers: [.authorization: "Bearer k1"])
            #expect(refused.status == .tooManyRequests)
            let error = try refused.errorObject()
            #expect(error["code"] as? String == "budget_exceeded")
            #expect((error["message"] as? String)?.contains("cap of 3") == true)
            #expect(engine.submitted.isEmpty)

            let capped = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k1"])
            #expect(capped.status == .ok)
            let other = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k0"])
            #expect(other.status == .ok)
            #expect(engine.submitted.map(\.maxTokens) == [3, 100])
            let metrics = try await client.execute(uri: "/metrics", method: .get).text
            #expect(metricValues(metrics)["tally_budget_rejections_total"] == 1)
        }
    }

    @Test func spendLimitRefusesOnceReachedAndOnlyThatTenant() async throws {
        let store = InMemoryUsageStore()
        let prices = PriceTable.shipped
        let api = try #require(prices.models.first).model
        // Any spend reaches a 1 nano-USD limit: the first request runs (nothing spent yet), the second is refused.
        let policy = BudgetPolicy(tenants: [Tenant.fingerprint(apiKey: "k0"): TenantBudget(
            spendLimits: [SpendLimit(period: .day, basis: .api(model: api, tier: .standard), limitNanoUSD: 1)])])
        let engine = try sentenceEngine()
        try await makeApp(engine, config: meteredConfig(store: store, budgets: policy)).test(.router) { client in
            let first = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k0"])
            #expect(first.status == .ok)
            let second = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k0"])
            #expect(second.status == .tooManyRequests)
            #expect((try second.errorObject()["message"] as? String)?.contains("daily") == true)
            let otherTenant = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k1"])
            #expect(otherTenant.status == .ok)
        }
        #expect(try await store.count() == 2)
    }

    @Test func spendSoFarIsReadFromTheStoreAfterARestart() async throws {
        // Yesterday's spend does not count against today's limit; today's does, though it predates this server.
        let tenant = Tenant.fingerprint(apiKey: "k0")
        let day = UTC.startOfDay(micros: fixedTime)
        let old = UsageRecord(id: "old", timeMicros: day - 1, model: "m", tenant: tenant, promptTokens: 10, generatedTokens: 10, busyShareMicros: 3_600_000_000)
        let today = UsageRecord(id: "today", timeMicros: day + 1, model: "m", tenant: tenant, promptTokens: 10, generatedTokens: 10, busyShareMicros: 1_000_000)
        let machine = HardwareProfiles.shipped.defaultMachine
        let todaysSpend = CostModel.localCostNanoUSD(busyMicros: today.busyShareMicros, machine: machine)
        for (limit, expected) in [(todaysSpend + 1, HTTPResponse.Status.ok), (todaysSpend, .tooManyRequests)] {
            let store = InMemoryUsageStore(records: [old, today])
            let policy = BudgetPolicy(defaultSpendLimits: [SpendLimit(period: .day, basis: .local, limitNanoUSD: limit)])
            try await makeApp(try sentenceEngine(), config: meteredConfig(store: store, budgets: policy)).test(.router) { client in
                let response = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k0"])
                #expect(response.status == expected, "limit \(limit) vs today's spend \(todaysSpend)")
            }
        }
    }

    @Test func abortedRequestIsRecordedToo() async throws {
        let store = InMemoryUsageStore()
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens(" tick"), delay: .milliseconds(5), endless: true))
        try await makeApp(engine, config: meteredConfig(store: store, keys: [])).test(.live) { client in
            let port = try #require(client.port)
            _ = try await RawHTTP.postReadingUntil("data: ", port: port, path: "/v1/completions", body: #"{"prompt": "go", "stream": true}"#)
            #expect(await engine.waitForTermination("cancelled"))
        }
        var records: [UsageRecord] = []
        for _ in 0..<200 where records.isEmpty {
            records = try await store.records(in: .all, tenant: nil)
            if records.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(records.map(\.finishReason) == [.aborted])
        #expect(records.first?.tenant == nil)
    }

    @Test func failingStoreCountsTheLossAndStillAnswers() async throws {
        let engine = try sentenceEngine()
        let config = meteredConfig(store: FailingStore())
        try await makeApp(engine, config: config).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "hi"}"#, headers: [.authorization: "Bearer k0"])
            #expect(response.status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get).text
            #expect(metricValues(metrics)["tally_usage_records_lost_total"] == 1)
            #expect(metricValues(metrics)["tally_usage_records_total"] == 0)
        }
    }
}

@Suite struct RequireMeteringTests {
    @Test func aFailingStoreMeans503WhenMeteringIsRequired() async throws {
        for required in [false, true] {
            var config = meteredConfig(store: FailingStore(), keys: [])
            config.requireMetering = required
            try await makeApp(try sentenceEngine(), config: config).test(.router) { client in
                // The first write fails (the response still goes out: nothing told the server yet).
                #expect(try await client.post("/v1/completions", #"{"prompt": "hi"}"#).status == .ok)
                let second = try await client.post("/v1/completions", #"{"prompt": "hi"}"#)
                if required {
                    #expect(second.status == .serviceUnavailable)
                    #expect(try second.errorObject()["code"] as? String == "metering_unavailable")
                    #expect(second.headers[.retryAfter] == "1")
                } else {
                    #expect(second.status == .ok, "without the flag it serves on, counting the loss")
                }
            }
        }
    }
}

/// A store whose disk is full.
private struct FailingStore: UsageStore {
    let location = "failing"
    struct Full: Error {}
    func append(_ record: UsageRecord) async throws { throw Full() }
    func startRun(_ run: ServerRun) async throws { throw Full() }
    func stampRun(id: String, atMicros: Int64, stopped: Bool) async throws { throw Full() }
    func runs(in range: TimeRange) async throws -> [ServerRun] { [] }
    func record(id: String) async throws -> UsageRecord? { throw Full() }
    func calls(session: String, tenant: String?) async throws -> Int { throw Full() }
    func appendOutcome(_ outcome: Outcome) async throws { throw Full() }
    func outcomes(sinceMicros: Int64?) async throws -> [Outcome] { [] }
    func records(in range: TimeRange, tenant: String?) async throws -> [UsageRecord] { [] }
    func totals(in range: TimeRange, tenant: String?, by grouping: Grouping?) async throws -> [UsageGroup] { [] }
    func count() async throws -> Int { 0 }
    func close() async throws {}
}

/// Named tenants, workflows and outcomes: who a call bills, which workflow it belongs to, what it achieved.
@Suite struct AttributionRouteTests {
    static let support = "support:k-support"
    /// The CI key is listed by its SHA-256 only.
    static let ci = TenantKey(digest: TenantKey(key: "k-ci").digest, name: "ci")

    private func post(_ client: some TestClientProtocol, key: String, session: String? = nil) async throws -> String {
        var headers: HTTPFields = [.authorization: "Bearer \(key)"]
        if let session { headers[HTTPField.Name("X-Tally-Session")!] = session }
        let response = try await client.post("/v1/completions", #"{"prompt": "hi", "max_tokens": 3}"#, headers: headers)
        #expect(response.status == .ok)
        return try #require(try response.json()["id"] as? String)
    }

    @Test func recordsCarryTheTenantsNameAndTheSession() async throws {
        let store = InMemoryUsageStore()
        try await makeApp(try sentenceEngine(), config: meteredConfig(store: store, keys: [TenantKey(stringLiteral: Self.support), Self.ci]))
            .test(.router) { client in
                let first = try await post(client, key: "k-support", session: "case-7")
                let second = try await post(client, key: "k-ci")
                let bad = try await client.post("/v1/completions", #"{"prompt": "hi"}"#,
                                                headers: [.authorization: "Bearer k-ci", HTTPField.Name("X-Tally-Session")!: "two words"])
                #expect(bad.status == .badRequest)
                #expect(try bad.errorObject()["param"] as? String == "X-Tally-Session")
                #expect(try await store.record(id: first)?.tenant == "support")
                #expect(try await store.record(id: first)?.session == "case-7")
                #expect(try await store.record(id: second)?.tenant == "ci")
                #expect(try await store.record(id: second)?.session == nil)
                #expect(try await store.count() == 2)
            }
    }

    @Test func outcomesMarkOnlyTheCallersOwnCalls() async throws {
        let store = InMemoryUsageStore()
        try await makeApp(try sentenceEngine(), config: meteredConfig(store: store, keys: [TenantKey(stringLiteral: Self.support), Self.ci]))
            .test(.router) { client in
                let first = try await post(client, key: "k-support", session: "case-7")
                _ = try await post(client, key: "k-support", session: "case-7")
                func outcome(_ body: String, key: String = "k-support") async throws -> TestResponse {
                    try await client.post("/v1/outcomes", body, headers: [.authorization: "Bearer \(key)"])
                }
                let bySession = try await outcome(#"{"session_id": "case-7", "label": "resolved", "value": 12.5}"#)
                #expect(bySession.status == .ok)
                let json = try bySession.json()
                #expect(json["object"] as? String == "outcome" && json["calls"] as? Int == 2 && json["value"] as? Double == 12.5)
                let byRequest = try await outcome(#"{"request_id": "\#(first)", "label": "escalated"}"#)
                #expect(byRequest.status == .ok)
                #expect(try byRequest.json()["calls"] as? Int == 1)

                // Another tenant's call or workflow, or one that does not exist, is not found.
                for (body, param) in [(#"{"request_id": "\#(first)", "label": "resolved"}"#, "request_id"),
                                      (#"{"session_id": "case-7", "label": "resolved"}"#, "session_id")] {
                    let response = try await outcome(body, key: "k-ci")
                    #expect(response.status == .notFound)
                    #expect(try response.errorObject()["param"] as? String == param)
                }
                #expect(try await outcome(#"{"request_id": "cmpl-nope", "label": "resolved"}"#).status == .notFound)
                // Malformed bodies name the field.
                for (body, param) in [(#"{"label": "resolved"}"#, "request_id"),
                                      (#"{"request_id": "\#(first)", "session_id": "case-7", "label": "x"}"#, "session_id"),
                                      (#"{"request_id": "\#(first)"}"#, "label"),
                                      (#"{"request_id": "\#(first)", "label": "two words"}"#, "label"),
                                      (#"{"request_id": "\#(first)", "label": "x", "value": "high"}"#, "value")] {
                    let response = try await outcome(body)
                    #expect(response.status == .badRequest, "\(body)")
                    #expect(try response.errorObject()["param"] as? String == param, "\(body)")
                }
                #expect(try await outcome(#"{"session_id": "case-7", "label": "resolved"}"#, key: "wrong").status == .unauthorized)

                let stored = try await store.outcomes(sinceMicros: nil)
                #expect(stored.map(\.label).sorted() == ["escalated", "resolved"])
                #expect(stored.allSatisfy { $0.tenant == "support" })
            }
    }
}

/// Per-key requests and tokens per minute, over a sliding window on a clock the test moves.
@Suite struct RateLimitRouteTests {
    final class Clock: Sendable {
        let micros = Mutex<Int64>(1_000_000_000)
        func advance(seconds: Int64) { micros.withLock { $0 += seconds * 1_000_000 } }
    }

    private func app(_ limits: RateLimits, clock: Clock) throws -> some ApplicationProtocol {
        var config = ServerConfig()
        config.apiKeys = ["a:ka", "b:kb"]
        config.rateLimits = limits
        config.clockMicros = { clock.micros.withLock { $0 } }
        return try makeApp(try sentenceEngine(), config: config)
    }

    private func ask(_ client: some TestClientProtocol, _ key: String, maxTokens: Int = 10) async throws -> TestResponse {
        try await client.post("/v1/completions", #"{"prompt": "hi", "max_tokens": \#(maxTokens)}"#, headers: [.authorization: "Bearer \(key)"])
    }

    @Test func requestsPerMinuteArePerKeyAndSlide() async throws {
        let clock = Clock()
        try await app(RateLimits(requestsPerMinute: 2), clock: clock).test(.router) { client in
            #expect(try await ask(client, "ka").status == .ok)
            clock.advance(seconds: 20)
            #expect(try await ask(client, "ka").status == .ok)
            let refused = try await ask(client, "ka")
            #expect(refused.status == .tooManyRequests)
            #expect(try refused.errorObject()["code"] as? String == "rate_limit_exceeded")
            #expect(refused.headers[.retryAfter] == "40")  // the first request leaves the window in 40 s
            #expect(try await ask(client, "kb").status == .ok, "another key has its own limit")
            clock.advance(seconds: 41)
            #expect(try await ask(client, "ka").status == .ok)
        }
    }

    @Test func tokensPerMinuteCountThePromptAndMaxTokens() async throws {
        let clock = Clock()
        let prompt = try Fixture.promptTokens("hi").count
        try await app(RateLimits(tokensPerMinute: 2 * (prompt + 10)), clock: clock).test(.router) { client in
            #expect(try await ask(client, "ka").status == .ok)
            clock.advance(seconds: 30)
            #expect(try await ask(client, "ka").status == .ok)
            let refused = try await ask(client, "ka")
            #expect(refused.status == .tooManyRequests && refused.headers[.retryAfter] == "30")
            let tooBig = try await ask(client, "kb", maxTokens: 1000)
            #expect(tooBig.status == .tooManyRequests && tooBig.headers[.retryAfter] == nil)
            #expect(try tooBig.errorObject()["message"] as? String ?? "" != "")
        }
    }
}
