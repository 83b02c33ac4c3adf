// The HTTP driver against the stub server: SSE parsing over a real socket, failures counted (not crashed),
// the time bound, and the summary's counts and token totals.

@testable import BenchKit
import Foundation
import Testing

@Suite struct HTTPDriverTests {
    func run(_ prompts: [String], requests: Int, clients: Int, timeLimit: Double = 30, requestTimeout: Int64 = 30,
             url: String) async throws -> RunRecord {
        let target = HTTPTarget(baseURL: url, api: .completions, connections: clients, requestTimeoutSeconds: requestTimeout)
        let plan = LoadPlan(mode: .concurrency(clients), requests: requests, timeLimitSeconds: timeLimit, maxTokens: 8, ignoreEOS: true)
        let record = try await LoadRunner.run(plan, target: target, prompts: prompts.map { BenchPrompt(text: $0) })
        await target.shutdown()
        return record
    }

    @Test func streamsAreTimedAndUsageIsRead() async throws {
        try await StubServer.with { url in
            let record = try await run(["one two three"], requests: 3, clients: 1, url: url)
            #expect(record.outcomes.count == 3)
            for outcome in record.outcomes {
                #expect(outcome.status == .completed, "\(outcome.error ?? "")")
                #expect(outcome.promptTokens == 3)
                #expect(outcome.cachedTokens == StubServer.cachedTokens)
                #expect(outcome.outputTokens == StubServer.chunks)
                #expect(outcome.interChunkMicros.count == StubServer.chunks - 1)
                // The stub holds every chunk back by its delay, so the whole response takes at least that
                // many delays; the gaps lie between the first chunk and the end.
                #expect(outcome.e2eMicros >= Int64(StubServer.chunks) * 4_000)
                let ttft = outcome.ttftMicros ?? 0
                #expect(ttft > 0 && ttft + outcome.interChunkMicros.reduce(0, +) <= outcome.e2eMicros)
            }
            let summary = RunSummary(record)
            #expect(summary.completed == 3 && summary.failed == 0)
            #expect(summary.outputTokens == 3 * StubServer.chunks)
            #expect(summary.prefixCacheHitRate == Double(StubServer.cachedTokens) / 3)
        }
    }

    @Test func failuresAreCountedNotFatal() async throws {
        try await StubServer.with { url in
            let record = try await run(["a b", "please fail", "c d", "drop it"], requests: 8, clients: 3, url: url)
            let summary = RunSummary(record)
            #expect(summary.completed == 4)
            #expect(summary.failed == 4)
            #expect(summary.cancelled == 0)
            #expect(summary.errors.keys.contains { $0.hasPrefix("HTTP 500") })
            #expect(summary.errors["the stream ended without [DONE]"] == 2)
            // Throughput counts completed requests only.
            #expect(summary.outputTokens == 4 * StubServer.chunks)
        }
    }

    @Test func theTimeLimitCancelsWhatIsStillRunning() async throws {
        try await StubServer.with { url in
            let clock = ContinuousClock()
            let start = clock.now
            let record = try await run(["slow one"], requests: 4, clients: 2, timeLimit: 0.5, url: url)
            // The stub answers after 10 s; the run ends at its 0.5 s bound. The room is for a busy machine:
            // with CPU-bound tests on both cores of the test pool, the bound's timer has run seconds late.
            #expect(clock.now - start < .seconds(8))
            #expect(record.hitTimeLimit)
            let summary = RunSummary(record)
            #expect(summary.completed == 0)
            #expect(summary.cancelled == 2)
            #expect(summary.wallSeconds == 0.5)
        }
    }

    @Test func aRefusedConnectionIsAFailure() async throws {
        // Port 1 on loopback: nothing listens there. The client retries connecting until the request's timeout.
        let record = try await run(["x"], requests: 2, clients: 1, requestTimeout: 1, url: "http://127.0.0.1:1")
        #expect(RunSummary(record).failed == 2)
    }
}
