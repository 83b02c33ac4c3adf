// The load runner with an in-memory target: the closed loop never exceeds its clients, the open loop
// spaces its arrivals, and the request count is exact.

@testable import BenchKit
import Foundation
import Synchronization
import Testing

/// Answers every request after `delay` and records how many were in flight at once.
final class CountingTarget: BenchTarget {
    let delay: Duration
    let state = Mutex((inFlight: 0, maxInFlight: 0, sent: 0))
    var label: String { "counting" }

    init(delay: Duration) { self.delay = delay }

    func send(_ prompt: BenchPrompt, maxTokens: Int, ignoreEOS: Bool) async -> RequestOutcome {
        state.withLock { $0.inFlight += 1; $0.maxInFlight = max($0.maxInFlight, $0.inFlight); $0.sent += 1 }
        try? await Task.sleep(for: delay)
        state.withLock { $0.inFlight -= 1 }
        var outcome = RequestOutcome(status: .completed)
        outcome.outputTokens = maxTokens
        outcome.e2eMicros = 1
        return outcome
    }
}

@Suite struct LoadRunnerTests {
    @Test func closedLoopKeepsItsClientCount() async throws {
        let target = CountingTarget(delay: .milliseconds(5))
        let plan = LoadPlan(mode: .concurrency(3), requests: 12, timeLimitSeconds: 30, maxTokens: 4, ignoreEOS: true)
        let record = try await LoadRunner.run(plan, target: target, prompts: [BenchPrompt(text: "x")])
        #expect(record.outcomes.count == 12)
        #expect(!record.hitTimeLimit)
        #expect(target.state.withLock { $0.maxInFlight } == 3)
        #expect(RunSummary(record).outputTokens == 48)
    }

    @Test func openLoopSendsAtTheRate() async throws {
        let target = CountingTarget(delay: .milliseconds(1))
        let plan = LoadPlan(mode: .arrivalRate(100), requests: 20, timeLimitSeconds: 30, maxTokens: 1, ignoreEOS: true)
        let record = try await LoadRunner.run(plan, target: target, prompts: [BenchPrompt(text: "x")])
        #expect(record.outcomes.count == 20)
        let starts = record.outcomes.map(\.startMicros)
        #expect(starts == starts.sorted())
        // 19 exponential gaps with mean 10 ms: the last start is far from 0 and from 2 s.
        #expect(starts.last! > 40_000 && starts.last! < 2_000_000)
        #expect(RunSummary(record).arrivalRate == 100)
    }

    @Test func sweepPlansFollowTheFlagThenTheWorkload() {
        var workload = Workload(name: "w", concurrency: [2], requests: 5, timeLimitSeconds: 1)
        #expect(BenchSession.plans(workload, BenchOptions(concurrency: [1, 4, 16])).map(\.mode) == [.concurrency(1), .concurrency(4), .concurrency(16)])
        #expect(BenchSession.plans(workload, BenchOptions()).map(\.mode) == [.concurrency(2)])
        workload.arrivalRate = 3
        #expect(BenchSession.plans(workload, BenchOptions()).map(\.mode) == [.arrivalRate(3)])
    }
}
