// Runs one load level against a target: a closed loop of N clients, or Poisson arrivals at a rate, always
// stopped by the request count and the time bound, whichever comes first.

import Engine
import Foundation
import Sampling
import Synchronization

/// One load level: how requests are issued, and the bounds.
package struct LoadPlan: Sendable, Equatable {
    package enum Mode: Sendable, Equatable {
        /// N clients, each sends its next request when its last one ended.
        case concurrency(Int)
        /// Requests start at exponential intervals (a Poisson process) of this many per second, however many
        /// are still running.
        case arrivalRate(Double)
    }

    package var mode: Mode
    package var requests: Int
    package var timeLimitSeconds: Double
    package var maxTokens: Int
    package var ignoreEOS: Bool
    package var seed: UInt64 = 1

    package init(mode: Mode, requests: Int, timeLimitSeconds: Double, maxTokens: Int, ignoreEOS: Bool, seed: UInt64 = 1) {
        self.mode = mode
        self.requests = requests
        self.timeLimitSeconds = timeLimitSeconds
        self.maxTokens = maxTokens
        self.ignoreEOS = ignoreEOS
        self.seed = seed
    }
}

/// What one run produced: every request's outcome (in the order they were sent) and the run's wall time.
package struct RunRecord: Sendable {
    package var plan: LoadPlan
    package var outcomes: [RequestOutcome]
    /// From the first send to the last response (or the time limit).
    package var wallMicros: Int64
    package var hitTimeLimit: Bool
}

package enum LoadRunner {
    /// Runs `plan` against `target` with `prompts[i % count]` as request i. `progress(done, total)` is
    /// called after each request ends. Requests still running at the time limit are cancelled and counted
    /// as cancelled, not failed.
    package static func run(_ plan: LoadPlan, target: any BenchTarget, prompts: [BenchPrompt],
                            progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> RunRecord {
        try RunGuard.check(requests: plan.requests, timeLimitSeconds: plan.timeLimitSeconds)
        precondition(!prompts.isEmpty, "a run needs prompts")
        let state = SharedState(State(outcomes: Array(repeating: nil, count: plan.requests)))
        let start = ContinuousClock.now
        let limit = Duration.milliseconds(Int64(plan.timeLimitSeconds * 1000))

        let sendOne: @Sendable (Int) async -> Void = { index in
            let sentAt = (ContinuousClock.now - start).inMicros
            var outcome = await target.send(prompts[index % prompts.count], maxTokens: plan.maxTokens, ignoreEOS: plan.ignoreEOS)
            outcome.startMicros = sentAt
            let done = state.mutex.withLock { state in
                state.outcomes[index] = outcome
                state.done += 1
                state.lastEnd = max(state.lastEnd, sentAt + outcome.e2eMicros)
                return state.done
            }
            progress(done, plan.requests)
        }
        // The next request index to send, or nil when all are taken.
        let take: @Sendable () -> Int? = {
            state.mutex.withLock { state in
                guard state.nextIndex < plan.requests else { return nil }
                defer { state.nextIndex += 1 }
                return state.nextIndex
            }
        }

        let hitLimit = await withTaskGroup(of: Bool.self, returning: Bool.self) { group in
            group.addTask {
                // The time bound: returns true only if it ran out (cancellation ends the sleep early).
                do { try await Task.sleep(until: start + limit) } catch { return false }
                return true
            }
            switch plan.mode {
            case .concurrency(let clients):
                for _ in 0..<min(clients, plan.requests) {
                    group.addTask {
                        while !Task.isCancelled, let index = take() { await sendOne(index) }
                        return false
                    }
                }
            case .arrivalRate(let rate):
                group.addTask {
                    let offsets = arrivalOffsets(rate: rate, count: plan.requests, seed: plan.seed)
                    await withTaskGroup(of: Void.self) { arrivals in
                        while !Task.isCancelled, let index = take() {
                            try? await Task.sleep(until: start + .microseconds(offsets[index]))
                            if Task.isCancelled { break }
                            arrivals.addTask { await sendOne(index) }
                        }
                    }
                    return false
                }
            }
            // Every worker returns false; the timer returns true. Stop at whichever comes first.
            var workers = 1
            if case .concurrency(let clients) = plan.mode { workers = min(clients, plan.requests) }
            var timedOut = false
            for await isTimer in group {
                if isTimer {
                    timedOut = true
                    group.cancelAll()
                } else {
                    workers -= 1
                    if workers == 0 { group.cancelAll() }
                }
            }
            return timedOut
        }

        let final = state.mutex.withLock { $0 }
        let wall = hitLimit ? limit.inMicros : max(final.lastEnd, 1)
        let outcomes = final.outcomes.compactMap { $0 }
        return RunRecord(plan: plan, outcomes: outcomes, wallMicros: wall, hitTimeLimit: hitLimit)
    }

    /// When each request of an open-loop run arrives, microseconds from the start: the first at 0, then
    /// exponential gaps `-ln(U) / rate` with U uniform in (0, 1] (a Poisson process), the same for a seed.
    package static func arrivalOffsets(rate: Double, count: Int, seed: UInt64) -> [Int64] {
        var rng = SplitMix64(seed: seed)
        var offsets: [Int64] = []
        var next = 0.0
        for index in 0..<count {
            if index > 0 { next += -log(1 - Double.random(in: 0..<1, using: &rng)) / rate }
            offsets.append(Int64(next * 1_000_000))
        }
        return offsets
    }

    private final class SharedState: Sendable {
        let mutex: Mutex<State>
        init(_ state: State) { mutex = Mutex(state) }
    }

    private struct State: Sendable {
        var nextIndex = 0
        var done = 0
        var lastEnd: Int64 = 0
        var outcomes: [RequestOutcome?]
    }
}
