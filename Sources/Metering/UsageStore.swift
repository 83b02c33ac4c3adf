// Where usage records live: the `UsageStore` protocol, the totals it aggregates, and the in-memory store.
// The server appends one record per finished request; reports and budgets query by time range and group.

import Foundation

/// A half-open time range `[since, until)` in Unix microseconds; nil ends are open.
package struct TimeRange: Sendable, Equatable, Hashable {
    package var sinceMicros: Int64?
    package var untilMicros: Int64?

    package init(sinceMicros: Int64? = nil, untilMicros: Int64? = nil) {
        self.sinceMicros = sinceMicros
        self.untilMicros = untilMicros
    }

    package init(since: Date?, until: Date?) {
        self.init(sinceMicros: since.map(UTC.micros), untilMicros: until.map(UTC.micros))
    }

    package static let all = TimeRange()

    /// Whether `[start, end]` meets the range.
    package func overlaps(start: Int64, end: Int64) -> Bool {
        if let sinceMicros, end < sinceMicros { return false }
        if let untilMicros, start >= untilMicros { return false }
        return true
    }

    package func contains(_ micros: Int64) -> Bool {
        if let sinceMicros, micros < sinceMicros { return false }
        if let untilMicros, micros >= untilMicros { return false }
        return true
    }
}

/// What a report or a totals query groups by.
package enum Grouping: String, Sendable, Codable, CaseIterable {
    /// The tenant fingerprint; requests without a key fall in `UsageGroup.noTenant`.
    case tenant
    case model
    /// The UTC day the request finished, `YYYY-MM-DD`.
    case day
    /// Each tag: a request with two tags counts in both groups; untagged ones in `UsageGroup.untagged`.
    case tag
    /// The OpenAI `user` field; requests without one in `UsageGroup.noUser`.
    case user
    /// The `X-Tally-Session` workflow; calls outside one in `UsageGroup.noSession`.
    case session
    /// The replica that served the request (`tally serve --replica`); older records in `UsageGroup.noReplica`.
    case replica
}

/// Sums of the facts of a set of records. Costs that are linear in these (local, API) can be computed on
/// totals; GPU-equivalent cost depends on each request's context length and is summed per record.
package struct UsageTotals: Sendable, Equatable, Hashable, Codable {
    package var requests = 0
    package var promptTokens = 0
    package var cachedTokens = 0
    package var cacheWriteTokens = 0
    package var generatedTokens = 0
    /// Prompt tokens of embedding requests, apart from the generation counts above (promptTokens, cached,
    /// cache writes): APIs bill them at embedding prices, with no cache discount.
    package var embeddingTokens = 0
    package var queueMicros: Int64 = 0
    package var prefillMicros: Int64 = 0
    package var decodeMicros: Int64 = 0
    package var busyShareMicros: Int64 = 0

    package init() {}

    package init<S: Sequence>(_ records: S) where S.Element == UsageRecord {
        for record in records { add(record) }
    }

    package mutating func add(_ record: UsageRecord) {
        requests += 1
        if record.isEmbedding {
            embeddingTokens += record.promptTokens
        } else {
            promptTokens += record.promptTokens
            cachedTokens += record.cachedTokens
            cacheWriteTokens += record.cacheWriteTokens
        }
        generatedTokens += record.generatedTokens
        queueMicros += record.queueMicros
        prefillMicros += record.prefillMicros
        decodeMicros += record.decodeMicros
        busyShareMicros += record.busyShareMicros
    }

    package var uncachedPromptTokens: Int { max(0, promptTokens - cachedTokens) }
    package var totalTokens: Int { promptTokens + generatedTokens + embeddingTokens }
}

/// The totals queries' split of token columns by kind: embedding requests' prompt tokens are summed apart
/// (`UsageTotals.embeddingTokens`). NULL kind is generation.
enum UsageKindSQL {
    static func generation(_ column: String) -> String { "CASE WHEN kind = 'embedding' THEN 0 ELSE \(column) END" }
    static func embedding(_ column: String) -> String { "CASE WHEN kind = 'embedding' THEN \(column) ELSE 0 END" }
}

/// One group of a totals query.
package struct UsageGroup: Sendable, Equatable, Hashable, Codable {
    package var key: String
    package var totals: UsageTotals

    package init(key: String, totals: UsageTotals) {
        self.key = key
        self.totals = totals
    }

    /// Key of the single group when a query is not grouped.
    package static let all = "all"
    /// Tenant key of requests made without an API key.
    package static let noTenant = "(no key)"
    /// Tag key of requests without tags.
    package static let untagged = "(untagged)"
    package static let noUser = "(no user)"
    package static let noSession = "(no session)"
    package static let noReplica = "(no replica)"
    /// The report's line of calls that no outcome marks.
    package static let noOutcome = "(no outcome)"

    /// The keys a record falls under for a grouping (several for `.tag`).
    package static func keys(of record: UsageRecord, by grouping: Grouping?) -> [String] {
        switch grouping {
        case nil: return [all]
        case .tenant: return [record.tenant ?? noTenant]
        case .model: return [record.model]
        case .day: return [UTC.day(micros: record.timeMicros)]
        case .tag: return record.tags.isEmpty ? [untagged] : record.tags
        case .user: return [record.user ?? noUser]
        case .session: return [record.session ?? noSession]
        case .replica: return [record.replica ?? noReplica]
        }
    }

    /// Groups records in memory, sorted by key; the reference the SQL grouping is tested against.
    package static func group<S: Sequence>(_ records: S, by grouping: Grouping?) -> [UsageGroup] where S.Element == UsageRecord {
        var byKey: [String: UsageTotals] = [:]
        for record in records {
            for key in keys(of: record, by: grouping) { byKey[key, default: UsageTotals()].add(record) }
        }
        return byKey.map { UsageGroup(key: $0.key, totals: $0.value) }.sorted { $0.key < $1.key }
    }
}

/// Append-only storage of usage records. Every implementation passes `UsageStoreContract` in the tests.
///
/// - `append` returns only once the record is durable (for SQLite: committed and synced), so the server can
///   await it before it sends a response's final chunk. Appending an id that is already stored keeps the
///   first record and succeeds, so a retry after an unknown outcome never duplicates a request.
/// - Queries return records ordered by `(timeMicros, id)` and groups ordered by key.
///
/// Server runs (`ServerRun`) are stored beside the records: `startRun` when a server starts, `stampRun` at
/// each heartbeat and at stop (a stamp never moves `lastSeenMicros` back), `runs` for a report's bill.
/// Outcomes (`Outcome`) mark what a call or a workflow achieved; `appendOutcome` is idempotent by id too.
package protocol UsageStore: Sendable {
    /// Where the records are, for messages: a file path or a URL without its password.
    var location: String { get }
    func append(_ record: UsageRecord) async throws
    /// The record with this id, if stored.
    func record(id: String) async throws -> UsageRecord?
    /// How many records of `tenant` (nil: of requests without a key) carry this session.
    func calls(session: String, tenant: String?) async throws -> Int
    func appendOutcome(_ outcome: Outcome) async throws
    /// Outcomes posted at or after `sinceMicros` (nil: all), oldest first.
    func outcomes(sinceMicros: Int64?) async throws -> [Outcome]
    func startRun(_ run: ServerRun) async throws
    func stampRun(id: String, atMicros: Int64, stopped: Bool) async throws
    /// Runs that were up at some time in `range` (ordered by start).
    func runs(in range: TimeRange) async throws -> [ServerRun]
    func records(in range: TimeRange, tenant: String?) async throws -> [UsageRecord]
    func totals(in range: TimeRange, tenant: String?, by grouping: Grouping?) async throws -> [UsageGroup]
    func count() async throws -> Int
    func close() async throws
}

extension UsageStore {
    package func records(in range: TimeRange = .all) async throws -> [UsageRecord] {
        try await records(in: range, tenant: nil)
    }

    /// The totals of one tenant since a time: what `BudgetCheck` needs (`tenant: nil` means keyless requests
    /// are not a tenant, so it returns everyone's totals; pass a fingerprint).
    package func totals(tenant: String?, sinceMicros: Int64) async throws -> UsageTotals {
        try await totals(in: TimeRange(sinceMicros: sinceMicros), tenant: tenant, by: nil).first?.totals ?? UsageTotals()
    }
}

/// Opens the store `--db` names: a PostgreSQL URL (`postgres://...`, shared by a fleet of replicas) or a
/// SQLite file path (the embedded default).
package func openUsageStore(_ db: String) async throws -> any UsageStore {
    if PostgresUsageStore.isURL(db) { return try await PostgresUsageStore.open(url: db) }
    return try await SQLiteUsageStore.open(path: db)
}

/// Records in an array: for tests and for `serve` without `--db`. Lost on exit.
package actor InMemoryUsageStore: UsageStore {
    private var stored: [UsageRecord] = []
    private var ids = Set<String>()
    private var serverRuns: [String: ServerRun] = [:]
    private var storedOutcomes: [Outcome] = []
    private var closed = false
    package nonisolated let location = "memory"

    package init(records: [UsageRecord] = []) {
        for record in records where ids.insert(record.id).inserted { stored.append(record) }
    }

    package func append(_ record: UsageRecord) throws {
        guard !closed else { throw MeteringError.storeClosed }
        if ids.insert(record.id).inserted { stored.append(record) }
    }

    package func record(id: String) throws -> UsageRecord? {
        guard !closed else { throw MeteringError.storeClosed }
        return stored.first { $0.id == id }
    }

    package func calls(session: String, tenant: String?) throws -> Int {
        guard !closed else { throw MeteringError.storeClosed }
        return stored.count(where: { $0.session == session && $0.tenant == tenant })
    }

    package func appendOutcome(_ outcome: Outcome) throws {
        guard !closed else { throw MeteringError.storeClosed }
        if !storedOutcomes.contains(where: { $0.id == outcome.id }) { storedOutcomes.append(outcome) }
    }

    package func outcomes(sinceMicros: Int64?) throws -> [Outcome] {
        guard !closed else { throw MeteringError.storeClosed }
        return storedOutcomes.filter { $0.timeMicros >= (sinceMicros ?? .min) }
            .sorted { ($0.timeMicros, $0.id) < ($1.timeMicros, $1.id) }
    }

    package func startRun(_ run: ServerRun) throws {
        guard !closed else { throw MeteringError.storeClosed }
        if serverRuns[run.id] == nil { serverRuns[run.id] = run }
    }

    package func stampRun(id: String, atMicros: Int64, stopped: Bool) throws {
        guard !closed else { throw MeteringError.storeClosed }
        guard var run = serverRuns[id] else { return }
        run.lastSeenMicros = max(run.lastSeenMicros, atMicros)
        run.stopped = run.stopped || stopped
        serverRuns[id] = run
    }

    package func runs(in range: TimeRange) throws -> [ServerRun] {
        guard !closed else { throw MeteringError.storeClosed }
        return serverRuns.values.filter { range.overlaps(start: $0.startMicros, end: $0.lastSeenMicros) }
            .sorted { ($0.startMicros, $0.id) < ($1.startMicros, $1.id) }
    }

    package func records(in range: TimeRange, tenant: String?) throws -> [UsageRecord] {
        guard !closed else { throw MeteringError.storeClosed }
        return stored
            .filter { range.contains($0.timeMicros) && (tenant == nil || $0.tenant == tenant) }
            .sorted { ($0.timeMicros, $0.id) < ($1.timeMicros, $1.id) }
    }

    package func totals(in range: TimeRange, tenant: String?, by grouping: Grouping?) throws -> [UsageGroup] {
        UsageGroup.group(try records(in: range, tenant: tenant), by: grouping)
    }

    package func count() throws -> Int {
        guard !closed else { throw MeteringError.storeClosed }
        return stored.count
    }

    package func close() {
        closed = true
    }
}

/// UTC calendar arithmetic on Unix microseconds, without Foundation's calendar (exact and fast).
package enum UTC {
    package static let microsPerSecond: Int64 = 1_000_000
    package static let microsPerDay: Int64 = 86_400 * microsPerSecond

    package static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    package static func date(micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }

    /// Days since 1970-01-01 (floor, so times before 1970 land on the right day).
    package static func dayNumber(micros: Int64) -> Int64 {
        micros >= 0 ? micros / microsPerDay : -((-micros - 1) / microsPerDay) - 1
    }

    /// (year, month 1-12, day 1-31) of a day number; Howard Hinnant's `civil_from_days`.
    package static func civil(dayNumber: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Day number of a civil date; Howard Hinnant's `days_from_civil`.
    package static func dayNumber(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM-DD` of the UTC day containing `micros`.
    package static func day(micros: Int64) -> String {
        let (y, m, d) = civil(dayNumber: dayNumber(micros: micros))
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, seconds truncated.
    package static func timestamp(micros: Int64) -> String {
        let dayNo = dayNumber(micros: micros)
        let secondOfDay = (micros - dayNo * microsPerDay) / microsPerSecond
        return day(micros: micros) + "T" + pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":"
            + pad(secondOfDay % 60, 2) + "Z"
    }

    /// Start of the UTC day containing `micros`.
    package static func startOfDay(micros: Int64) -> Int64 {
        dayNumber(micros: micros) * microsPerDay
    }

    /// Start of the UTC calendar month containing `micros`.
    package static func startOfMonth(micros: Int64) -> Int64 {
        let (y, m, _) = civil(dayNumber: dayNumber(micros: micros))
        return dayNumber(year: y, month: m, day: 1) * microsPerDay
    }

    /// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`; nil otherwise. For `--since`/`--until`.
    package static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: "T", maxSplits: 1)
        let date = parts[0].split(separator: "-").compactMap { Int64($0) }
        guard date.count == 3, (1...12).contains(date[1]), (1...31).contains(date[2]) else { return nil }
        var micros = dayNumber(year: date[0], month: date[1], day: date[2]) * microsPerDay
        if parts.count == 2 {
            guard parts[1].hasSuffix("Z") else { return nil }
            let time = parts[1].dropLast().split(separator: ":").compactMap { Int64($0) }
            guard time.count == 3, time[0] < 24, time[1] < 60, time[2] < 61 else { return nil }
            micros += ((time[0] * 60 + time[1]) * 60 + time[2]) * microsPerSecond
        }
        return micros
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
