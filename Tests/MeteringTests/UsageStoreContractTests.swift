// The one contract every UsageStore keeps, run over the in-memory store, SQLite and PostgreSQL: round trips,
// idempotent appends, half-open time ranges, tenant filters, grouping, concurrent appends, close.

import Foundation
@testable import Metering
import Testing

enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case memory, sqlite, postgres
    var testDescription: String { rawValue }

    /// Every kind this run can test: PostgreSQL needs TALLY_TEST_POSTGRES (a server URL; `.ci/run` starts one
    /// and sets it). In CI (CI set) it is always included, so a missing server fails rather than skips.
    static var allCases: [StoreKind] {
        let env = ProcessInfo.processInfo.environment
        return env["TALLY_TEST_POSTGRES"] != nil || env["CI"] != nil ? [.memory, .sqlite, .postgres] : [.memory, .sqlite]
    }

    /// A fresh, empty store (SQLite in its own temporary directory, PostgreSQL in a database of its own).
    func make() async throws -> any UsageStore {
        switch self {
        case .memory: return InMemoryUsageStore()
        case .sqlite: return try await SQLiteUsageStore.open(path: try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path)
        case .postgres: return try await PostgresUsageStore.open(url: try await PostgresTestServer.freshDatabase())
        }
    }
}

@Suite struct UsageStoreContractTests {
    func filled(_ kind: StoreKind) async throws -> any UsageStore {
        let store = try await kind.make()
        // Reverse order: queries must sort by time, not by insertion.
        for record in Fixtures.records.reversed() { try await store.append(record) }
        return store
    }

    @Test(arguments: StoreKind.allCases) func recordsRoundTripEveryField(kind: StoreKind) async throws {
        let store = try await filled(kind)
        let all = try await store.records()
        #expect(all == Fixtures.records)
        #expect(try await store.count() == 6)
        try await store.close()
    }

    /// An embedding request keeps its kind through the store, and totals count its prompt tokens as
    /// embedding tokens, apart from the generation counts (the SQL split equals the reference's).
    @Test(arguments: StoreKind.allCases) func embeddingRecordsKeepTheirKindAndTotalsApart(kind: StoreKind) async throws {
        let store = try await filled(kind)
        let embedding = UsageRecord(id: "embd-1", timeMicros: Fixtures.nov20 + 10 * Fixtures.hour, model: "smollm2-135m",
                                    modelShape: Fixtures.smol, tenant: Fixtures.tenantA, promptTokens: 700, cachedTokens: 16,
                                    generatedTokens: 0, prefillMicros: 90_000, busyShareMicros: 90_000, kind: .embedding)
        let generation = UsageRecord(id: "req-7", timeMicros: Fixtures.nov20 + 11 * Fixtures.hour, model: "smollm2-135m",
                                     promptTokens: 10, generatedTokens: 5, busyShareMicros: 1_000, kind: .generation)
        try await store.append(embedding)
        try await store.append(generation)
        #expect(try await store.record(id: "embd-1") == embedding)
        #expect(try await store.record(id: "req-7") == generation)
        let all = Fixtures.records + [embedding, generation]
        for grouping in [Grouping?.none, .tenant, .day] {
            #expect(try await store.totals(in: .all, tenant: nil, by: grouping) == UsageGroup.group(all, by: grouping))
        }
        let totals = try #require(try await store.totals(in: .all, tenant: Fixtures.tenantA, by: nil).first?.totals)
        #expect(totals.embeddingTokens == 700)
        #expect(totals.promptTokens == Fixtures.records.filter { $0.tenant == Fixtures.tenantA }.reduce(0) { $0 + $1.promptTokens })
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func unusualTextSurvives(kind: StoreKind) async throws {
        let store = try await kind.make()
        let record = UsageRecord(id: "req-'quote\"", timeMicros: 1, model: "m", tenant: "sha256:00", user: "Zoë; DROP TABLE usage",
                                 tags: ["naïve", "with,comma", "emoji 🙂"], promptTokens: 1, generatedTokens: 1, busyShareMicros: 1)
        try await store.append(record)
        #expect(try await store.records() == [record])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func appendingAnIdAgainKeepsTheFirst(kind: StoreKind) async throws {
        let store = try await kind.make()
        var first = Fixtures.records[0]
        try await store.append(first)
        first.generatedTokens = 999
        try await store.append(first)
        #expect(try await store.records() == [Fixtures.records[0]])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func timeRangeIsHalfOpen(kind: StoreKind) async throws {
        let store = try await filled(kind)
        let req2 = Fixtures.records[1].timeMicros
        let range = TimeRange(sinceMicros: req2, untilMicros: Fixtures.records[3].timeMicros)
        #expect(try await store.records(in: range, tenant: nil).map(\.id) == ["req-2", "req-3"])
        #expect(try await store.records(in: TimeRange(untilMicros: req2), tenant: nil).map(\.id) == ["req-1"])
        #expect(try await store.records(in: TimeRange(sinceMicros: req2 + 1), tenant: nil).count == 4)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func tenantFilter(kind: StoreKind) async throws {
        let store = try await filled(kind)
        #expect(try await store.records(in: .all, tenant: Fixtures.tenantA).map(\.id) == ["req-1", "req-2", "req-6"])
        #expect(try await store.records(in: .all, tenant: "sha256:nobody").isEmpty)
        let totals = try await store.totals(tenant: Fixtures.tenantB, sinceMicros: Fixtures.nov20 + 24 * Fixtures.hour)
        #expect(totals.requests == 1 && totals.promptTokens == 2_000 && totals.cachedTokens == 1_024)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func totalsByDayAreHandComputed(kind: StoreKind) async throws {
        let store = try await filled(kind)
        let groups = try await store.totals(in: .all, tenant: nil, by: .day)
        #expect(groups.map(\.key) == ["2026-11-20", "2026-11-21"])
        var first = UsageTotals()
        first.requests = 3
        first.promptTokens = 2_600
        first.cachedTokens = 960
        first.cacheWriteTokens = 1_088
        first.generatedTokens = 800
        first.queueMicros = 53_000
        first.prefillMicros = 660_000
        first.decodeMicros = 8_000_000
        first.busyShareMicros = 6_300_000
        #expect(groups[0].totals == first)
        #expect(groups[1].totals.requests == 3 && groups[1].totals.busyShareMicros == 820_000)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases, [Grouping?.none, .tenant, .model, .day, .tag, .user, .session, .replica])
    func groupingMatchesTheReference(kind: StoreKind, grouping: Grouping?) async throws {
        let store = try await filled(kind)
        let expected = UsageGroup.group(Fixtures.records, by: grouping)
        #expect(try await store.totals(in: .all, tenant: nil, by: grouping) == expected)
        let range = TimeRange(sinceMicros: Fixtures.records[1].timeMicros, untilMicros: Fixtures.records[5].timeMicros)
        #expect(try await store.totals(in: range, tenant: nil, by: grouping)
            == UsageGroup.group(Fixtures.records.filter { range.contains($0.timeMicros) }, by: grouping))
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func tagGroupsCountARequestInEachOfItsTags(kind: StoreKind) async throws {
        let store = try await filled(kind)
        let groups = try await store.totals(in: .all, tenant: nil, by: .tag)
        #expect(groups.map(\.key) == ["(untagged)", "batch-job", "chat", "team-a"])
        #expect(groups.map(\.totals.requests) == [1, 2, 3, 2])
        let byTenant = try await store.totals(in: .all, tenant: nil, by: .tenant)
        #expect(byTenant.map(\.key) == ["(no key)", Fixtures.tenantA, Fixtures.tenantB].sorted())
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func emptyStoreHasNoGroups(kind: StoreKind) async throws {
        let store = try await kind.make()
        #expect(try await store.totals(in: .all, tenant: nil, by: nil).isEmpty)
        #expect(try await store.totals(tenant: "sha256:x", sinceMicros: 0) == UsageTotals())
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func concurrentAppendsAllLand(kind: StoreKind) async throws {
        let store = try await kind.make()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    try await store.append(UsageRecord(id: "c-\(i)", timeMicros: Int64(i), model: "m", promptTokens: i,
                                                       generatedTokens: 1, busyShareMicros: 10))
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.count() == 200)
        let totals = try await store.totals(in: .all, tenant: nil, by: nil)
        #expect(totals.first?.totals.promptTokens == (0..<200).reduce(0, +))
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func closedStoreRefuses(kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.close()
        await #expect(throws: MeteringError.storeClosed) { try await store.append(Fixtures.records[0]) }
        await #expect(throws: MeteringError.storeClosed) { try await store.records() }
    }

    @Test(arguments: StoreKind.allCases) func serverRunsAreStampedAndFoundByOverlap(kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.startRun(ServerRun(id: "a", host: "box", startMicros: 100))
        try await store.startRun(ServerRun(id: "b", host: "box", startMicros: 1_000))
        try await store.startRun(ServerRun(id: "a", host: "other", startMicros: 5))  // a repeated id keeps the first
        try await store.stampRun(id: "a", atMicros: 400, stopped: false)
        try await store.stampRun(id: "a", atMicros: 300, stopped: false)  // a late stamp never moves a run back
        try await store.stampRun(id: "a", atMicros: 500, stopped: true)
        try await store.stampRun(id: "missing", atMicros: 9, stopped: true)
        #expect(try await store.runs(in: .all) == [
            ServerRun(id: "a", host: "box", startMicros: 100, lastSeenMicros: 500, stopped: true),
            ServerRun(id: "b", host: "box", startMicros: 1_000),
        ])
        #expect(try await store.runs(in: TimeRange(sinceMicros: 501)).map(\.id) == ["b"])
        #expect(try await store.runs(in: TimeRange(sinceMicros: 500, untilMicros: 1_000)).map(\.id) == ["a"])
        #expect(try await store.runs(in: TimeRange(untilMicros: 100)).isEmpty)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func recordsAreFoundByIdAndSessionsCountedPerTenant(kind: StoreKind) async throws {
        let store = try await filled(kind)
        #expect(try await store.record(id: "req-3") == Fixtures.records[2])
        #expect(try await store.record(id: "req-9") == nil)
        #expect(try await store.calls(session: "case-1", tenant: Fixtures.tenantA) == 2)
        #expect(try await store.calls(session: "case-1", tenant: Fixtures.tenantB) == 0)
        #expect(try await store.calls(session: "case-2", tenant: Fixtures.tenantB) == 1)
        #expect(try await store.calls(session: "case-2", tenant: nil) == 0)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases) func outcomesRoundTripOnceEachOldestFirst(kind: StoreKind) async throws {
        let store = try await kind.make()
        let resolved = Outcome(id: "outcome-b", timeMicros: 20, tenant: "support", session: "case-1", label: "resolved", value: 12.5)
        let escalated = Outcome(id: "outcome-a", timeMicros: 10, tenant: nil, requestID: "req-1", label: "escalated")
        try await store.appendOutcome(resolved)
        try await store.appendOutcome(escalated)
        try await store.appendOutcome(Outcome(id: "outcome-a", timeMicros: 30, tenant: nil, label: "again"))  // the first is kept
        #expect(try await store.outcomes(sinceMicros: nil) == [escalated, resolved])
        #expect(try await store.outcomes(sinceMicros: 11) == [resolved])
        try await store.close()
    }
}
