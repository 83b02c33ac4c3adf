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
        // Long enough that all three clients overlap even on a busy machine.
        let target = CountingTarget(delay: .milliseconds(50))
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
        // No request is sent before its arrival time (later is fine: the machine may be busy).
        let planned = LoadRunner.arrivalOffsets(rate: 100, count: 20, seed: plan.seed)
        #expect(zip(record.outcomes, planned).allSatisfy { $0.startMicros >= $1 })
        #expect(RunSummary(record).arrivalRate == 100)
    }

    @Test func arrivalsArePoisson() {
        let offsets = LoadRunner.arrivalOffsets(rate: 50, count: 4001, seed: 9)
        #expect(offsets.first == 0)
        let gaps = zip(offsets.dropFirst(), offsets).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 0 })
        // Mean gap 1/rate = 20 ms; over 4,000 exponential gaps the mean is within 5 % (about 3 standard errors).
        let mean = Double(gaps.reduce(0, +)) / Double(gaps.count)
        #expect(abs(mean - 20_000) < 1_000)
        // Exponential: the median gap is ln 2 x the mean, unlike evenly spaced arrivals.
        let median = Double(gaps.sorted()[gaps.count / 2])
        #expect(abs(median / mean - log(2)) < 0.05)
        #expect(LoadRunner.arrivalOffsets(rate: 50, count: 10, seed: 9) == Array(offsets.prefix(10)))
    }

    @Test func sweepPlansFollowTheFlagThenTheWorkload() {
        var workload = Workload(name: "w", concurrency: [2], requests: 5, timeLimitSeconds: 1)
        #expect(BenchSession.plans(workload, BenchOptions(concurrency: [1, 4, 16])).map(\.mode) == [.concurrency(1), .concurrency(4), .concurrency(16)])
        #expect(BenchSession.plans(workload, BenchOptions()).map(\.mode) == [.concurrency(2)])
        workload.arrivalRate = 3
        #expect(BenchSession.plans(workload, BenchOptions()).map(\.mode) == [.arrivalRate(3)])
    }
}
