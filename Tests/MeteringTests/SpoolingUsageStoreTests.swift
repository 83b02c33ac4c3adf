// The spool in front of a shared store: records go to the local SQLite spool while the shared store
// fails or hangs, and move to it, each once, when it answers again.

import Foundation
@testable import Metering
import Testing

/// A shared store that can be switched to failing (throws) or hanging (never answers).
actor FlakyStore: UsageStore {
    enum Mode { case up, failing, hanging }
    nonisolated let location = "flaky"
    let inner = InMemoryUsageStore()
    var mode = Mode.up
    var appendCalls = 0

    func set(_ mode: Mode) { self.mode = mode }

    private func check() async throws {
        switch mode {
        case .up: return
        case .failing: throw MeteringError.storeFailed(path: "flaky", operation: "append", reason: "down")
        case .hanging: try await Task.sleep(for: .seconds(3600))
        }
    }

    func append(_ record: UsageRecord) async throws { appendCalls += 1; try await check(); try await inner.append(record) }
    func record(id: String) async throws -> UsageRecord? { try await inner.record(id: id) }
    func calls(session: String, tenant: String?) async throws -> Int { try await inner.calls(session: session, tenant: tenant) }
    func appendOutcome(_ outcome: Outcome) async throws { try await inner.appendOutcome(outcome) }
    func outcomes(sinceMicros: Int64?) async throws -> [Outcome] { try await inner.outcomes(sinceMicros: sinceMicros) }
    func startRun(_ run: ServerRun) async throws { try await inner.startRun(run) }
    func stampRun(id: String, atMicros: Int64, stopped: Bool) async throws { try await check(); try await inner.stampRun(id: id, atMicros: atMicros, stopped: stopped) }
    func runs(in range: TimeRange) async throws -> [ServerRun] { try await inner.runs(in: range) }
    func records(in range: TimeRange, tenant: String?) async throws -> [UsageRecord] { try await inner.records(in: range, tenant: tenant) }
    func totals(in range: TimeRange, tenant: String?, by grouping: Grouping?) async throws -> [UsageGroup] {
        try await inner.totals(in: range, tenant: tenant, by: grouping)
    }
    func count() async throws -> Int { try await inner.count() }
    func close() async throws {}  // one shared store outlives the spooling stores of several runs
}

@Suite struct SpoolingUsageStoreTests {
    func make(_ shared: FlakyStore) async throws -> (SpoolingUsageStore, String) {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("spool.db").path
        let store = try await SpoolingUsageStore(shared: shared, spool: try await SQLiteUsageStore.open(path: path),
                                                 timeout: .milliseconds(200), retryInterval: .milliseconds(100))
        return (store, path)
    }

    func waitUntilDrained(_ store: SpoolingUsageStore) async throws {
        for _ in 0..<100 where try await store.spooled() > 0 { try await Task.sleep(for: .milliseconds(50)) }
    }

    @Test(arguments: [FlakyStore.Mode.failing, .hanging])
    func recordsSpoolWhileTheSharedStoreIsDownAndMoveOnceItAnswers(mode: FlakyStore.Mode) async throws {
        let shared = FlakyStore()
        let (store, _) = try await make(shared)
        let records = Fixtures.records
        try await store.append(records[0])
        await shared.set(mode)
        for record in records[1...4] { try await store.append(record) }  // each returns: spooled, not lost
        #expect(try await store.spooled() == 4)
        #expect(try await shared.inner.count() == 1)
        await shared.set(.up)
        try await store.append(records[5])  // still degraded: spooled until the drainer has emptied the spool
        try await waitUntilDrained(store)
        #expect(try await store.spooled() == 0)
        #expect(try await shared.inner.records() == records)  // every record once, in the shared store
        let (spooled, drained) = (await store.spooledTotal, await store.drainedTotal)
        #expect(spooled == 5 && drained == 5)
        try await store.close()
    }

    @Test func aSpoolLeftByTheLastRunIsDrainedByTheNext() async throws {
        let shared = FlakyStore()
        await shared.set(.failing)
        let (first, path) = try await make(shared)
        for record in Fixtures.records.prefix(3) { try await first.append(record) }
        try await first.close()
        await shared.set(.up)
        let second = try await SpoolingUsageStore(shared: shared, spool: try await SQLiteUsageStore.open(path: path),
                                                  timeout: .milliseconds(200), retryInterval: .milliseconds(100))
        try await waitUntilDrained(second)
        #expect(try await shared.inner.records() == Array(Fixtures.records.prefix(3)))
        try await second.close()
    }
}
