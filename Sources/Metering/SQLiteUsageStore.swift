// The durable usage store: one SQLite file (sqlite-nio) in WAL mode, schema versions in PRAGMA user_version.
// The server awaits `append` before a response's final chunk; reports read the same file.

import Foundation
import SQLiteNIO

/// Usage records in SQLite.
///
/// Writes: `append` queues the record and suspends; one writer at a time (this actor) takes everything
/// queued and inserts it with one multi-row INSERT, which is one transaction and, with
/// `synchronous=FULL`, one fsync of the WAL. Concurrent requests finishing together therefore share a
/// commit (group commit) instead of paying an fsync each. The SQL itself runs on sqlite-nio's thread pool,
/// never on the caller's thread or the engine thread. `append` returns when its batch has committed.
///
/// Durability: WAL with `synchronous=FULL` syncs the WAL on every commit, so a returned `append` survives
/// a power cut as well as `kill -9`. `NORMAL` would only survive process crashes (the WAL may lose the
/// last commits on power loss); the fsync FULL adds is paid once per batch, off the engine thread, and is
/// small next to a request's generation time, so FULL is the default. `.normal` is offered for disks where
/// fsync is slow.
///
/// Schema: `migrations[i]` takes the file from version `i` to `i + 1`, inside one transaction that also
/// sets `PRAGMA user_version`. A file newer than this build is refused, never downgraded.
package actor SQLiteUsageStore: UsageStore {
    package enum Durability: String, Sendable {
        /// `synchronous=FULL`: durable against power loss. The default.
        case full
        /// `synchronous=NORMAL`: durable against process crashes only.
        case normal
    }

    /// Migration `i` moves the schema from version `i` to `i + 1`. Append only; never edit a shipped one.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE usage (
                id TEXT PRIMARY KEY NOT NULL,
                time_us INTEGER NOT NULL,
                model TEXT NOT NULL,
                model_parameters INTEGER NOT NULL,
                model_bytes INTEGER NOT NULL,
                model_layers INTEGER NOT NULL,
                model_attention_width INTEGER NOT NULL,
                model_kv_width INTEGER NOT NULL,
                tenant TEXT,
                end_user TEXT,
                tags TEXT NOT NULL,
                prompt_tokens INTEGER NOT NULL,
                cached_tokens INTEGER NOT NULL,
                cache_write_tokens INTEGER NOT NULL,
                generated_tokens INTEGER NOT NULL,
                queue_us INTEGER NOT NULL,
                prefill_us INTEGER NOT NULL,
                decode_us INTEGER NOT NULL,
                busy_share_us INTEGER NOT NULL,
                finish_reason TEXT NOT NULL
            )
            """,
            "CREATE INDEX usage_time ON usage (time_us)",
            "CREATE INDEX usage_tenant_time ON usage (tenant, time_us)",
        ],
        [
            """
            CREATE TABLE server_runs (
                id TEXT PRIMARY KEY NOT NULL,
                host TEXT NOT NULL,
                start_us INTEGER NOT NULL,
                last_seen_us INTEGER NOT NULL,
                stopped INTEGER NOT NULL
            )
            """,
            "CREATE INDEX server_runs_start ON server_runs (start_us)",
        ],
        [
            "ALTER TABLE usage ADD COLUMN session TEXT",
            "CREATE INDEX usage_tenant_session ON usage (tenant, session)",
            """
            CREATE TABLE outcomes (
                id TEXT PRIMARY KEY NOT NULL,
                time_us INTEGER NOT NULL,
                tenant TEXT,
                request_id TEXT,
                session TEXT,
                label TEXT NOT NULL,
                value REAL
            )
            """,
            "CREATE INDEX outcomes_time ON outcomes (time_us)",
        ],
        ["ALTER TABLE usage ADD COLUMN replica TEXT"],
        ["ALTER TABLE usage ADD COLUMN kind TEXT"],
    ]
    package static var schemaVersion: Int { migrations.count }

    static let columns = [
        "id", "time_us", "model", "model_parameters", "model_bytes", "model_layers", "model_attention_width",
        "model_kv_width", "tenant", "end_user", "tags", "prompt_tokens", "cached_tokens", "cache_write_tokens",
        "generated_tokens", "queue_us", "prefill_us", "decode_us", "busy_share_us", "finish_reason", "session", "replica", "kind",
    ]
    /// Rows per INSERT: 23 binds each, far under SQLite's variable limit.
    static let rowsPerInsert = 500

    package nonisolated let path: String
    package nonisolated var location: String { path }
    private var connection: SQLiteConnection?
    private var pending: [(record: UsageRecord, done: CheckedContinuation<Void, any Error>)] = []
    private var writing = false

    private init(path: String, connection: SQLiteConnection) {
        self.path = path
        self.connection = connection
    }

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    package static func open(path: String, durability: Durability = .full) async throws -> SQLiteUsageStore {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path))
        } catch {
            throw MeteringError.storeFailed(path: path, operation: "open", reason: "\(error)")
        }
        do {
            try await prepare(connection, path: path, durability: durability)
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteUsageStore(path: path, connection: connection)
    }

    private static func prepare(_ db: SQLiteConnection, path: String, durability: Durability) async throws {
        func run(_ sql: String, _ operation: String) async throws -> [SQLiteRow] {
            do { return try await db.query(sql, []) } catch {
                throw MeteringError.storeFailed(path: path, operation: operation, reason: "\(error)")
            }
        }
        let mode = try await run("PRAGMA journal_mode = WAL", "enable WAL").first?.column("journal_mode")?.string
        guard mode?.lowercased() == "wal" else {
            throw MeteringError.storeFailed(path: path, operation: "enable WAL", reason: "journal_mode is \(mode ?? "unknown")")
        }
        _ = try await run("PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")", "set synchronous")
        // BEGIN IMMEDIATE takes the write lock before reading the version, so two processes opening a new
        // file at once cannot both run migration 0.
        _ = try await run("BEGIN IMMEDIATE", "begin migration")
        do {
            let found = Int(try await run("PRAGMA user_version", "read schema version").first?.column("user_version")?.integer ?? 0)
            guard found <= schemaVersion else { throw MeteringError.schemaTooNew(path: path, found: found, known: schemaVersion) }
            for version in found..<schemaVersion {
                for statement in migrations[version] { _ = try await run(statement, "migrate to version \(version + 1)") }
            }
            if found < schemaVersion { _ = try await run("PRAGMA user_version = \(schemaVersion)", "set schema version") }
            _ = try await run("COMMIT", "commit migration")
        } catch {
            _ = try? await db.query("ROLLBACK", [])
            throw error
        }
    }

    /// The schema version stored in the file (`PRAGMA user_version`).
    package func storedSchemaVersion() async throws -> Int {
        Int(try await query("PRAGMA user_version", [], "read schema version").first?.column("user_version")?.integer ?? 0)
    }

    /// The journal mode in force (`wal` once opened).
    package func journalMode() async throws -> String {
        try await query("PRAGMA journal_mode", [], "read journal mode").first?.column("journal_mode")?.string ?? ""
    }

    // MARK: Writing

    package func append(_ record: UsageRecord) async throws {
        guard connection != nil else { throw MeteringError.storeClosed }
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((record, done))
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

    /// Writes batches until nothing is queued. Only one `drain` runs at a time (`writing`).
    private func drain() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                try await insert(batch.map(\.record))
                for item in batch { item.done.resume() }
            } catch {
                for item in batch { item.done.resume(throwing: error) }
            }
        }
        writing = false
    }

    private func insert(_ records: [UsageRecord]) async throws {
        var start = 0
        while start < records.count {
            let chunk = records[start..<min(records.count, start + Self.rowsPerInsert)]
            let row = "(" + Array(repeating: "?", count: Self.columns.count).joined(separator: ", ") + ")"
            // OR IGNORE: a repeated id keeps the first record (the contract's idempotent append).
            let sql = "INSERT OR IGNORE INTO usage (\(Self.columns.joined(separator: ", "))) VALUES "
                + Array(repeating: row, count: chunk.count).joined(separator: ", ")
            _ = try await query(sql, chunk.flatMap(Self.binds), "append \(chunk.count) record(s)")
            start += chunk.count
        }
    }

    static func binds(_ r: UsageRecord) -> [SQLiteData] {
        let tags = (try? JSONEncoder().encode(r.tags)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
        return [
            .text(r.id), .int(r.timeMicros), .text(r.model),
            .int(r.modelShape.parameterCount), .int(r.modelShape.weightBytes),
            .int(Int64(r.modelShape.layerCount)), .int(Int64(r.modelShape.attentionWidth)),
            .int(Int64(r.modelShape.kvWidth)),
            r.tenant.map(SQLiteData.text) ?? .null, r.user.map(SQLiteData.text) ?? .null, .text(tags),
            .int(Int64(r.promptTokens)), .int(Int64(r.cachedTokens)), .int(Int64(r.cacheWriteTokens)),
            .int(Int64(r.generatedTokens)), .int(r.queueMicros), .int(r.prefillMicros),
            .int(r.decodeMicros), .int(r.busyShareMicros), .text(r.finishReason.rawValue),
            r.session.map(SQLiteData.text) ?? .null, r.replica.map(SQLiteData.text) ?? .null,
            r.kind.map { SQLiteData.text($0.rawValue) } ?? .null,
        ]
    }

    /// Deletes the records with these ids (the spool, once they reached the shared store).
    package func remove(ids: [String]) async throws {
        for chunk in stride(from: 0, to: ids.count, by: Self.rowsPerInsert).map({ ids[$0..<min(ids.count, $0 + Self.rowsPerInsert)] }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            _ = try await query("DELETE FROM usage WHERE id IN (\(marks))", chunk.map(SQLiteData.text), "remove \(chunk.count) record(s)")
        }
    }

    package func record(id: String) async throws -> UsageRecord? {
        try await query("SELECT \(Self.columns.joined(separator: ", ")) FROM usage WHERE id = ?", [.text(id)], "read record")
            .first.map(record)
    }

    package func calls(session: String, tenant: String?) async throws -> Int {
        let sql = "SELECT COUNT(*) AS n FROM usage WHERE session = ? AND " + (tenant == nil ? "tenant IS NULL" : "tenant = ?")
        let binds: [SQLiteData] = [.text(session)] + (tenant.map { [.text($0)] } ?? [])
        return Int(try await query(sql, binds, "count session calls").first?.column("n")?.integer ?? 0)
    }

    // MARK: Outcomes

    package func appendOutcome(_ outcome: Outcome) async throws {
        _ = try await query(
            "INSERT OR IGNORE INTO outcomes (id, time_us, tenant, request_id, session, label, value) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(outcome.id), .int(outcome.timeMicros), outcome.tenant.map(SQLiteData.text) ?? .null,
             outcome.requestID.map(SQLiteData.text) ?? .null, outcome.session.map(SQLiteData.text) ?? .null,
             .text(outcome.label), outcome.value.map(SQLiteData.float) ?? .null],
            "append outcome")
    }

    package func outcomes(sinceMicros: Int64?) async throws -> [Outcome] {
        let rows = try await query(
            "SELECT id, time_us, tenant, request_id, session, label, value FROM outcomes"
                + (sinceMicros == nil ? "" : " WHERE time_us >= ?") + " ORDER BY time_us, id",
            sinceMicros.map { [.int($0)] } ?? [], "read outcomes")
        return try rows.map { row in
            func text(_ name: String) -> String? {
                guard let value = row.column(name), !value.isNull else { return nil }
                return value.string
            }
            let id = text("id") ?? "?"
            guard let time = row.column("time_us")?.integer, let label = text("label") else {
                throw MeteringError.corruptRow(path: path, id: id, reason: "an outcome column is missing")
            }
            let value = row.column("value").flatMap { $0.isNull ? nil : $0.double }
            return Outcome(id: id, timeMicros: Int64(time), tenant: text("tenant"), requestID: text("request_id"),
                           session: text("session"), label: label, value: value)
        }
    }

    // MARK: Server runs

    package func startRun(_ run: ServerRun) async throws {
        _ = try await query("INSERT OR IGNORE INTO server_runs (id, host, start_us, last_seen_us, stopped) VALUES (?, ?, ?, ?, ?)",
                            [.text(run.id), .text(run.host), .int(run.startMicros), .int(run.lastSeenMicros), .int(run.stopped ? 1 : 0)],
                            "start server run")
    }

    package func stampRun(id: String, atMicros: Int64, stopped: Bool) async throws {
        _ = try await query("UPDATE server_runs SET last_seen_us = MAX(last_seen_us, ?), stopped = MAX(stopped, ?) WHERE id = ?",
                            [.int(atMicros), .int(stopped ? 1 : 0), .text(id)], "stamp server run")
    }

    package func runs(in range: TimeRange) async throws -> [ServerRun] {
        var clauses: [String] = [], binds: [SQLiteData] = []
        if let since = range.sinceMicros { clauses.append("last_seen_us >= ?"); binds.append(.int(since)) }
        if let until = range.untilMicros { clauses.append("start_us < ?"); binds.append(.int(until)) }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let rows = try await query("SELECT id, host, start_us, last_seen_us, stopped FROM server_runs\(whereSQL) ORDER BY start_us, id",
                                   binds, "read server runs")
        return try rows.map { row in
            let id = row.column("id")?.string ?? "?"
            guard let host = row.column("host")?.string, let start = row.column("start_us")?.integer,
                  let last = row.column("last_seen_us")?.integer, let stopped = row.column("stopped")?.integer else {
                throw MeteringError.corruptRow(path: path, id: id, reason: "a server run column is missing")
            }
            return ServerRun(id: id, host: host, startMicros: Int64(start), lastSeenMicros: Int64(last), stopped: stopped != 0)
        }
    }

    // MARK: Reading

    package func records(in range: TimeRange, tenant: String?) async throws -> [UsageRecord] {
        let (whereSQL, binds) = Self.filter(range, tenant: tenant)
        let rows = try await query(
            "SELECT \(Self.columns.joined(separator: ", ")) FROM usage\(whereSQL) ORDER BY time_us, id", binds, "read records")
        return try rows.map(record)
    }

    package func totals(in range: TimeRange, tenant: String?, by grouping: Grouping?) async throws -> [UsageGroup] {
        let (whereSQL, binds) = Self.filter(range, tenant: tenant)
        let key: String
        var from = "usage"
        switch grouping {
        case nil: key = "'\(UsageGroup.all)'"
        case .tenant: key = "COALESCE(tenant, '\(UsageGroup.noTenant)')"
        case .model: key = "model"
        case .day: key = "strftime('%Y-%m-%d', time_us / 1000000, 'unixepoch')"
        case .tag:
            key = "COALESCE(tag.value, '\(UsageGroup.untagged)')"
            from = "usage LEFT JOIN json_each(usage.tags) AS tag"
        case .user: key = "COALESCE(end_user, '\(UsageGroup.noUser)')"
        case .session: key = "COALESCE(session, '\(UsageGroup.noSession)')"
        case .replica: key = "COALESCE(replica, '\(UsageGroup.noReplica)')"
        }
        let sql = """
            SELECT \(key) AS k, COUNT(*) AS requests, SUM(\(UsageKindSQL.generation("prompt_tokens"))) AS p,
                   SUM(\(UsageKindSQL.generation("cached_tokens"))) AS c, SUM(\(UsageKindSQL.generation("cache_write_tokens"))) AS w,
                   SUM(\(UsageKindSQL.embedding("prompt_tokens"))) AS e, SUM(generated_tokens) AS g, SUM(queue_us) AS q,
                   SUM(prefill_us) AS pf, SUM(decode_us) AS d, SUM(busy_share_us) AS b
            FROM \(from)\(whereSQL) GROUP BY k
            """
        let rows = try await query(sql, binds, "total records")
        return rows.compactMap { row -> UsageGroup? in
            func int(_ name: String) -> Int64 { Int64(row.column(name)?.integer ?? 0) }
            guard let key = row.column("k")?.string, int("requests") > 0 else { return nil }
            var totals = UsageTotals()
            totals.requests = Int(int("requests"))
            totals.promptTokens = Int(int("p"))
            totals.cachedTokens = Int(int("c"))
            totals.cacheWriteTokens = Int(int("w"))
            totals.embeddingTokens = Int(int("e"))
            totals.generatedTokens = Int(int("g"))
            totals.queueMicros = int("q")
            totals.prefillMicros = int("pf")
            totals.decodeMicros = int("d")
            totals.busyShareMicros = int("b")
            return UsageGroup(key: key, totals: totals)
        }.sorted { $0.key < $1.key }
    }

    package func count() async throws -> Int {
        Int(try await query("SELECT COUNT(*) AS n FROM usage", [], "count records").first?.column("n")?.integer ?? 0)
    }

    /// Waits for queued appends, then closes the file. Later calls throw `MeteringError.storeClosed`.
    package func close() async throws {
        while writing || !pending.isEmpty { await Task.yield() }
        guard let connection else { return }
        self.connection = nil
        do { try await connection.close() } catch {
            throw MeteringError.storeFailed(path: path, operation: "close", reason: "\(error)")
        }
    }

    private static func filter(_ range: TimeRange, tenant: String?) -> (String, [SQLiteData]) {
        var clauses: [String] = []
        var binds: [SQLiteData] = []
        if let since = range.sinceMicros { clauses.append("time_us >= ?"); binds.append(.int(since)) }
        if let until = range.untilMicros { clauses.append("time_us < ?"); binds.append(.int(until)) }
        if let tenant { clauses.append("tenant = ?"); binds.append(.text(tenant)) }
        return (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "), binds)
    }

    private func query(_ sql: String, _ binds: [SQLiteData], _ operation: String) async throws -> [SQLiteRow] {
        guard let connection else { throw MeteringError.storeClosed }
        do { return try await connection.query(sql, binds) } catch {
            throw MeteringError.storeFailed(path: path, operation: operation, reason: "\(error)")
        }
    }

    private func record(_ row: SQLiteRow) throws -> UsageRecord {
        let id = row.column("id")?.string ?? "?"
        func int(_ name: String) throws -> Int64 {
            guard let value = row.column(name)?.integer else {
                throw MeteringError.corruptRow(path: path, id: id, reason: "\(name) is not an integer")
            }
            return Int64(value)
        }
        func text(_ name: String) throws -> String {
            guard let value = row.column(name)?.string else {
                throw MeteringError.corruptRow(path: path, id: id, reason: "\(name) is not text")
            }
            return value
        }
        func optionalText(_ name: String) -> String? {
            guard let value = row.column(name), !value.isNull else { return nil }
            return value.string
        }
        guard let tags = try? JSONDecoder().decode([String].self, from: Data(try text("tags").utf8)) else {
            throw MeteringError.corruptRow(path: path, id: id, reason: "tags is not a JSON array of strings")
        }
        guard let finish = UsageOutcome(rawValue: try text("finish_reason")) else {
            throw MeteringError.corruptRow(path: path, id: id, reason: "unknown finish_reason")
        }
        var kind: UsageKind?
        if let name = optionalText("kind") {
            guard let known = UsageKind(rawValue: name) else { throw MeteringError.corruptRow(path: path, id: id, reason: "unknown kind") }
            kind = known
        }
        return UsageRecord(
            id: id, timeMicros: try int("time_us"), model: try text("model"),
            modelShape: ModelShape(
                parameterCount: try int("model_parameters"), weightBytes: try int("model_bytes"),
                layerCount: Int(try int("model_layers")), attentionWidth: Int(try int("model_attention_width")),
                kvWidth: Int(try int("model_kv_width"))),
            tenant: optionalText("tenant"), user: optionalText("end_user"), tags: tags, session: optionalText("session"),
            replica: optionalText("replica"),
            promptTokens: Int(try int("prompt_tokens")), cachedTokens: Int(try int("cached_tokens")),
            cacheWriteTokens: Int(try int("cache_write_tokens")), generatedTokens: Int(try int("generated_tokens")),
            queueMicros: try int("queue_us"), prefillMicros: try int("prefill_us"), decodeMicros: try int("decode_us"),
            busyShareMicros: try int("busy_share_us"), finishReason: finish, kind: kind)
    }
}

extension SQLiteData {
    /// `SQLiteInt64` is `Int` on Linux and `Int64` elsewhere; records use `Int64` throughout.
    static func int(_ value: Int64) -> SQLiteData { .integer(SQLiteInt64(value)) }
}
