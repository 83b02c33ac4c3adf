// A shared store over the network (PostgreSQL) with a local spool: when the shared store cannot take a
// record in time, it goes to a local SQLite file instead, and a drainer moves the spool to the shared
// store once it answers again. The shared store's appends are idempotent by id, so a record that reached
// both (a slow write that landed after its timeout) is still counted once. Nothing spooled is lost on a
// restart: the spool is a durable file and is drained by the next run on the same path.

import Foundation

package actor SpoolingUsageStore: UsageStore {
    package nonisolated let location: String
    private let shared: any UsageStore
    private let spool: SQLiteUsageStore
    private let timeout: Duration
    private let retryInterval: Duration
    private let log: @Sendable (String) -> Void
    /// While set, appends go straight to the spool (the shared store failed recently); the drainer clears it.
    private var degraded = false
    private var drainer: Task<Void, Never>?
    /// Records written to the spool, and moved from it to the shared store, since start.
    package private(set) var spooledTotal = 0
    package private(set) var drainedTotal = 0

    /// `timeout`: how long an append waits for the shared store before it spools instead.
    package init(shared: any UsageStore, spool: SQLiteUsageStore, timeout: Duration = .seconds(2), retryInterval: Duration = .seconds(5),
                 log: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        self.shared = shared
        self.spool = spool
        self.timeout = timeout
        self.retryInterval = retryInterval
        self.log = log
        location = "\(shared.location) (spool \(spool.path))"
        if try await spool.count() > 0 {
            degraded = true
            startDrainer()
        }
    }

    /// Records waiting in the spool.
    package func spooled() async throws -> Int { try await spool.count() }

    package func append(_ record: UsageRecord) async throws {
        if !degraded {
            do {
                try await Self.withTimeout(timeout) { [shared] in try await shared.append(record) }
                return
            } catch {
                log("usage store \(shared.location) did not take record \(record.id) (\(error)); spooling to \(spool.path) until it answers")
                degraded = true
            }
        }
        try await spool.append(record)
        spooledTotal += 1
        startDrainer()
    }

    private func startDrainer() {
        guard drainer == nil else { return }
        drainer = Task { await self.drain() }
    }

    /// Every retry interval: moves what the spool holds to the shared store, oldest first, in batches; ends
    /// (and appends go to the shared store again) once the spool is empty.
    private func drain() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: retryInterval)
            do {
                while true {
                    let batch = Array(try await spool.records().prefix(500))
                    if batch.isEmpty { break }
                    for record in batch {
                        try await Self.withTimeout(timeout) { [shared] in try await shared.append(record) }
                    }
                    try await spool.remove(ids: batch.map(\.id))
                    drainedTotal += batch.count
                }
                if try await spool.count() == 0 {
                    degraded = false
                    drainer = nil
                    log("usage spool drained to \(shared.location) (\(drainedTotal) records so far)")
                    return
                }
            } catch {
                continue  // still unreachable: try again after the interval
            }
        }
    }

    /// Runs `body` in a task of its own and waits at most `limit` for it. On timeout the task runs on (a
    /// write that lands later is harmless: appends are idempotent by id).
    static func withTimeout(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let first = FirstResult()
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            first.set(done)
            Task {
                do { try await body(); first.finish(.success(())) } catch { first.finish(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                first.finish(.failure(MeteringError.storeFailed(path: "", operation: "append", reason: "no answer within \(limit)")))
            }
        }
    }

    /// Resumes its continuation once, with whichever result comes first.
    private final class FirstResult: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<Void, any Error>?
        private var result: Result<Void, any Error>?

        func set(_ c: CheckedContinuation<Void, any Error>) {
            lock.lock(); defer { lock.unlock() }
            if let result { c.resume(with: result) } else { continuation = c }
        }

        func finish(_ r: Result<Void, any Error>) {
            lock.lock(); defer { lock.unlock() }
            guard result == nil else { return }
            result = r
            continuation?.resume(with: r)
            continuation = nil
        }
    }

    // Everything else is the shared store's: reports read it, server runs are stamped in it.
    package func record(id: String) async throws -> UsageRecord? {
        if let found = try await spool.record(id: id) { return found }
        return try await shared.record(id: id)
    }
    package func calls(session: String, tenant: String?) async throws -> Int {
        try await shared.calls(session: session, tenant: tenant) + spool.calls(session: session, tenant: tenant)
    }
    package func appendOutcome(_ outcome: Outcome) async throws { try await shared.appendOutcome(outcome) }
    package func outcomes(sinceMicros: Int64?) async throws -> [Outcome] { try await shared.outcomes(sinceMicros: sinceMicros) }
    package func startRun(_ run: ServerRun) async throws { try await shared.startRun(run) }
    package func stampRun(id: String, atMicros: Int64, stopped: Bool) async throws {
        try await Self.withTimeout(timeout) { [shared] in try await shared.stampRun(id: id, atMicros: atMicros, stopped: stopped) }
    }
    package func runs(in range: TimeRange) async throws -> [ServerRun] { try await shared.runs(in: range) }
    package func records(in range: TimeRange, tenant: String?) async throws -> [UsageRecord] {
        try await shared.records(in: range, tenant: tenant)
    }
    package func totals(in range: TimeRange, tenant: String?, by grouping: Grouping?) async throws -> [UsageGroup] {
        try await shared.totals(in: range, tenant: tenant, by: grouping)
    }
    package func count() async throws -> Int { try await shared.count() + spool.count() }

    /// Stops draining and closes both stores; what the spool still holds is drained by the next run.
    package func close() async throws {
        drainer?.cancel()
        drainer = nil
        try await spool.close()
        try await shared.close()
    }
}

