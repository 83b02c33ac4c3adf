// The batching engine: one dedicated thread owns all engine state (EngineCore) and runs steps while there is
// work; other threads talk to it only through a small locked inbox. `submit` returns the request's
// events as an AsyncThrowingStream; cancelling that stream (a client that went away) aborts the
// request, and its blocks are freed before the next step.

import Foundation
import Logging
import GGUF

package final class BatchingEngine: InferenceEngine, @unchecked Sendable {
    private let core: EngineCore
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var inbox: [(EngineRequest, AsyncThrowingStream<EngineEvent, Error>.Continuation)] = []
    private var ends: [(RequestID, FinishReason)] = []
    private var accepting = true
    private var stopped = false
    private var cachedSnapshot = EngineSnapshot()
    private var waitingInCore = 0
    private var runningInCore = 0
    private var thread: Thread?
    /// Where a failed step is reported (stderr unless a test listens).
    private let log: @Sendable (String) -> Void

    package init(runner: ModelRunner, config: EngineConfig, clock: EngineClock = MonotonicClock(),
                 log: @escaping @Sendable (String) -> Void = { Logger(label: "tally.engine").error("\($0)") }) {
        core = EngineCore(config: config, runner: runner, clock: clock)
        self.log = log
        cachedSnapshot = core.snapshot()
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "tally-engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    package var contextLength: Int { core.runner.contextLength }
    package var promptLimit: Int { core.promptLimit }
    package var config: EngineConfig { core.config }

    package func submit(_ request: EngineRequest) throws(EngineError) -> AsyncThrowingStream<EngineEvent, Error> {
        // The core's config and runner never change, so checking from this thread is safe.
        try core.check(request)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: EngineEvent.self)
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { throw .shuttingDown }
        // Requests the engine will start at once (free run slots) do not count against the queue: a burst
        // no larger than the free slots is never refused.
        let freeSlots = max(0, core.config.maxSeqs - runningInCore)
        guard waitingInCore + inbox.count < core.config.maxQueue + freeSlots else { throw .queueFull(limit: core.config.maxQueue) }
        let id = request.id
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.abort(id) }
        }
        inbox.append((request, continuation))
        condition.signal()
        return stream
    }

    package func abort(_ id: RequestID) { end(id, reason: .abort) }

    package func end(_ id: RequestID, reason: FinishReason) {
        condition.lock()
        ends.append((id, reason))
        condition.signal()
        condition.unlock()
    }

    package func snapshot() -> EngineSnapshot {
        condition.lock()
        defer { condition.unlock() }
        return cachedSnapshot
    }

    /// Stops accepting requests, lets those in flight finish until `deadline`, aborts the rest, and
    /// stops the thread.
    package func shutdown(deadline: Duration = .seconds(30)) {
        condition.lock()
        accepting = false
        condition.unlock()
        let end = ContinuousClock.now + deadline
        while ContinuousClock.now < end {
            condition.lock()
            let idle = inbox.isEmpty && cachedSnapshot.running == 0 && cachedSnapshot.waiting == 0
            condition.unlock()
            if idle { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
        while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.005) }
    }

    private func loop() {
        // When the engine last ran out of work; nil once its idle memory was released (config.idleRelease).
        var idleSince: ContinuousClock.Instant? = .now
        while true {
            condition.lock()
            while inbox.isEmpty && ends.isEmpty && !core.hasWork && !stopped {
                guard let after = core.config.idleRelease, let since = idleSince else {
                    condition.wait()
                    continue
                }
                let due = since + after
                if ContinuousClock.now < due {
                    _ = condition.wait(until: Date(timeIntervalSinceNow: (due - ContinuousClock.now).inSeconds))
                    continue
                }
                idleSince = nil
                condition.unlock()
                let (forgotten, bytes) = core.releaseIdleMemory()
                Logger(label: "tally.engine").info("idle: returned \(bytes >> 20) MiB of KV memory to the OS, forgot \(forgotten) cached blocks")
                condition.lock()
            }
            let newRequests = inbox, endings = ends
            // They wait in the core from now on: still counted by `submit` while this step runs.
            waitingInCore += inbox.count
            inbox = []
            ends = []
            let stop = stopped
            condition.unlock()

            for (request, continuation) in newRequests {
                do { try core.add(request, continuation: continuation) } catch { continuation.finish(throwing: error) }
            }
            for (id, reason) in endings { core.end(id, reason) }
            if stop {
                for id in core.runningIDs + core.waitingIDs { core.abort(id) }
            } else {
                do {
                    try core.step()
                } catch {
                    // A failed step leaves the KV store in an unknown state for these requests: end them.
                    let ids = core.runningIDs + core.waitingIDs
                    log("engine step failed: \(error); aborting \(ids.count) requests")
                    for id in ids { core.abort(id) }
                }
            }
            idleSince = core.hasWork ? nil : .now
            condition.lock()
            cachedSnapshot = core.snapshot()
            waitingInCore = core.waitingCount
            runningInCore = core.runningCount
            condition.unlock()
            if stop { return }
        }
    }
}
