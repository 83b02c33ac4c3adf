// The fleet's usage store: PostgreSQL through postgres-nio, behind the same `UsageStore` contract as SQLite,
// so every replica's records land in one place (`--db postgres://user[:password]@host[:port]/database`).
//
// Schema: the same tables as SQLiteUsageStore in PostgreSQL's types, versioned in `tally_schema`.
// Migration `i` takes the database from version `i` to `i + 1`; replicas starting together migrate one at a
// time under a transaction-scoped advisory lock. A database newer than this build is refused.
// Writes: like SQLite's, `append` joins a queue and one writer inserts all that is queued with one
// multi-row INSERT ... ON CONFLICT (id) DO NOTHING (idempotent by request id: a retried write never counts
// twice); it returns once the transaction has committed, which PostgreSQL makes durable (synchronous_commit).

import Foundation
import Logging
import PostgresNIO

package actor PostgresUsageStore: UsageStore {
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE usage (
                id TEXT PRIMARY KEY,
                time_us BIGINT NOT NULL,
                model TEXT NOT NULL,
                model_parameters BIGINT NOT NULL,
                model_bytes BIGINT NOT NULL,
                model_layers BIGINT NOT NULL,
                model_attention_width BIGINT NOT NULL,
                model_kv_width BIGINT NOT NULL,
                tenant TEXT,
                end_user TEXT,
                tags TEXT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                cache_write_tokens BIGINT NOT NULL,
                generated_tokens BIGINT NOT NULL,
                queue_us BIGINT NOT NULL,
                prefill_us BIGINT NOT NULL,
                decode_us BIGINT NOT NULL,
                busy_share_us BIGINT NOT NULL,
                finish_reason TEXT NOT NULL,
                session TEXT
            )
            """,
            "CREATE INDEX usage_time ON usage (time_us)",
            "CREATE INDEX usage_tenant_time ON usage (tenant, time_us)",
            "CREATE INDEX usage_tenant_session ON usage (tenant, session)",
            """
            CREATE TABLE server_runs (
                id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                start_us BIGINT NOT NULL,
                last_seen_us BIGINT NOT NULL,
                stopped BOOLEAN NOT NULL
            )
            """,
            "CREATE INDEX server_runs_start ON server_runs (start_us)",
            """
            CREATE TABLE outcomes (
                id TEXT PRIMARY KEY,
                time_us BIGINT NOT NULL,
                tenant TEXT,
                request_id TEXT,
                session TEXT,
                label TEXT NOT NULL,
                value DOUBLE PRECISION
            )
            """,
            "CREATE INDEX outcomes_time ON outcomes (time_us)",
        ],
        ["ALTER TABLE usage ADD COLUMN replica TEXT"],
        ["ALTER TABLE usage ADD COLUMN kind TEXT"],
    ]
    package static var schemaVersion: Int { migrations.count }
    /// The advisory lock key migrations hold ("tally" in ASCII).
    static let migrationLock: Int64 = 0x74616C6C79
    static let columns = SQLiteUsageStore.columns
    /// Rows per INSERT: 22 binds each, under PostgreSQL's 65,535.
    static let rowsPerInsert = 1000

    /// The URL with any password left out, for messages.
    package nonisolated let location: String
    private var client: PostgresClient?
    private var runner: Task<Void, Never>?
    private var pending: [(record: UsageRecord, done: CheckedContinuation<Void, any Error>)] = []
    private var writing = false

    private init(location: String, client: PostgresClient, runner: Task<Void, Never>) {
        self.location = location
        self.client = client
        self.runner = runner
    }

    /// Whether `--db` names a PostgreSQL database rather than a SQLite file.
    package static func isURL(_ db: String) -> Bool { db.hasPrefix("postgres://") || db.hasPrefix("postgresql://") }

    /// A parsed `postgres://user[:password]@host[:port]/database` (TLS is not used: loopback or a private network).
    package struct Address: Sendable {
        var host: String, port: Int, user: String, password: String?, database: String?
        /// The URL without the password, for messages.
        package var location: String { "postgres://\(user)@\(host):\(port)/\(database ?? "")" }

        package init(url: String) throws {
            guard PostgresUsageStore.isURL(url), let u = URLComponents(string: url), let host = u.host, !host.isEmpty,
                  let user = u.user, !user.isEmpty else {
                throw MeteringError.storeFailed(path: url, operation: "parse the URL",
                                                reason: "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            }
            let database = String(u.path.drop { $0 == "/" })
            (self.host, port, self.user, password, self.database) = (host, u.port ?? 5432, user, u.password, database.isEmpty ? nil : database)
        }

        package var clientConfiguration: PostgresClient.Configuration {
            var c = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
            c.options.connectTimeout = .seconds(5)
            c.options.maximumConnections = 4
            return c
        }

        var connectionConfiguration: PostgresConnection.Configuration {
            var c = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
            c.options.connectTimeout = .seconds(5)
            return c
        }
    }

    static let quiet = Logger(label: "tally.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects to the database at `url` and brings its schema up to date. The migration runs on a
    /// connection of its own first, so an unreachable server is reported at once (the pool would retry).
    package static func open(url: String) async throws -> PostgresUsageStore {
        let address = try Address(url: url)
        do {
            let connection = try await PostgresConnection.connect(configuration: address.connectionConfiguration, id: 0, logger: quiet)
            do {
                try await migrate(connection, location: address.location)
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch let error as MeteringError {
            throw error
        } catch {
            throw MeteringError.storeFailed(path: address.location, operation: "connect", reason: describe(error))
        }
        let client = PostgresClient(configuration: address.clientConfiguration, backgroundLogger: quiet)
        let runner = Task { await client.run() }
        return PostgresUsageStore(location: address.location, client: client, runner: runner)
    }

    private static func migrate(_ connection: PostgresConnection, location: String) async throws {
        let logger = quiet
        do {
            try await connection.withTransaction(logger: logger) { db in
                try await db.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
                try await db.query("CREATE TABLE IF NOT EXISTS tally_schema (version BIGINT NOT NULL)", logger: logger)
                var found = 0
                for try await (version) in try await db.query("SELECT version FROM tally_schema", logger: logger).decode(Int64.self) {
                    found = Int(version)
                }
                guard found <= schemaVersion else { throw MeteringError.schemaTooNew(path: location, found: found, known: schemaVersion) }
                for version in found..<schemaVersion {
                    for statement in migrations[version] { try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                }
                if found < schemaVersion {
                    try await db.query("DELETE FROM tally_schema", logger: logger)
                    try await db.query("INSERT INTO tally_schema (version) VALUES (\(Int64(schemaVersion)))", logger: logger)
                }
            }
        } catch let error as MeteringError {
            throw error
        } catch {
            throw MeteringError.storeFailed(path: location, operation: "migrate", reason: describe(error))
        }
    }

    /// The schema version stored in the database.
    package func storedSchemaVersion() async throws -> Int {
        let rows = try await query("SELECT version FROM tally_schema", "read schema version")
        return rows.first.flatMap { try? $0["version"].decode(Int64.self) }.map(Int.init) ?? 0
    }

    // MARK: Writing

    package func append(_ record: UsageRecord) async throws {
        guard client != nil else { throw MeteringError.storeClosed }
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((record, done))
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

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
            var binds = PostgresBindings(capacity: chunk.count * Self.columns.count)
            var rows: [String] = []
            for record in chunk {
                let first = binds.count
                Self.bind(record, into: &binds)
                rows.append("(" + (first + 1...binds.count).map { "$\($0)" }.joined(separator: ", ") + ")")
            }
            let sql = "INSERT INTO usage (\(Self.columns.joined(separator: ", "))) VALUES \(rows.joined(separator: ", ")) ON CONFLICT (id) DO NOTHING"
            _ = try await query(PostgresQuery(unsafeSQL: sql, binds: binds), "append \(chunk.count) record(s)")
            start += chunk.count
        }
    }

    static func bind(_ r: UsageRecord, into binds: inout PostgresBindings) {
        let tags = (try? JSONEncoder().encode(r.tags)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
        binds.append(r.id); binds.append(r.timeMicros); binds.append(r.model)
        binds.append(r.modelShape.parameterCount); binds.append(r.modelShape.weightBytes)
        binds.append(Int64(r.modelShape.layerCount)); binds.append(Int64(r.modelShape.attentionWidth)); binds.append(Int64(r.modelShape.kvWidth))
        binds.append(r.tenant); binds.append(r.user); binds.append(tags)
        binds.append(Int64(r.promptTokens)); binds.append(Int64(r.cachedTokens)); binds.append(Int64(r.cacheWriteTokens))
        binds.append(Int64(r.generatedTokens)); binds.append(r.queueMicros); binds.append(r.prefillMicros)
        binds.append(r.decodeMicros); binds.append(r.busyShareMicros); binds.append(r.finishReason.rawValue)
        binds.append(r.session); binds.append(r.replica); binds.append(r.kind?.rawValue)
    }

    package func record(id: String) async throws -> UsageRecord? {
        try await query("SELECT \(unescaped: Self.columns.joined(separator: ", ")) FROM usage WHERE id = \(id)", "read record")
            .first.map(record)
    }

    package func calls(session: String, tenant: String?) async throws -> Int {
        let q: PostgresQuery = tenant.map { "SELECT COUNT(*) AS n FROM usage WHERE session = \(session) AND tenant = \($0)" }
            ?? "SELECT COUNT(*) AS n FROM usage WHERE session = \(session) AND tenant IS NULL"
        return Int(try await query(q, "count session calls").first.map { try $0["n"].decode(Int64.self) } ?? 0)
    }

    // MARK: Outcomes

    package func appendOutcome(_ o: Outcome) async throws {
        _ = try await query("""
            INSERT INTO outcomes (id, time_us, tenant, request_id, session, label, value)
            VALUES (\(o.id), \(o.timeMicros), \(o.tenant), \(o.requestID), \(o.session), \(o.label), \(o.value))
            ON CONFLICT (id) DO NOTHING
            """, "append outcome")
    }

    package func outcomes(sinceMicros: Int64?) async throws -> [Outcome] {
        let q: PostgresQuery = sinceMicros.map {
            "SELECT id, time_us, tenant, request_id, session, label, value FROM outcomes WHERE time_us >= \($0) ORDER BY time_us, id COLLATE \"C\""
        } ?? "SELECT id, time_us, tenant, request_id, session, label, value FROM outcomes ORDER BY time_us, id COLLATE \"C\""
        return try await query(q, "read outcomes").map { row in
            let id = (try? row["id"].decode(String.self)) ?? "?"
            do {
                return Outcome(id: id, timeMicros: try row["time_us"].decode(Int64.self), tenant: try row["tenant"].decode(String?.self),
                               requestID: try row["request_id"].decode(String?.self), session: try row["session"].decode(String?.self),
                               label: try row["label"].decode(String.self), value: try row["value"].decode(Double?.self))
            } catch {
                throw MeteringError.corruptRow(path: location, id: id, reason: "an outcome column cannot be read: \(Self.describe(error))")
            }
        }
    }

    // MARK: Server runs

    package func startRun(_ run: ServerRun) async throws {
        _ = try await query("""
            INSERT INTO server_runs (id, host, start_us, last_seen_us, stopped)
            VALUES (\(run.id), \(run.host), \(run.startMicros), \(run.lastSeenMicros), \(run.stopped)) ON CONFLICT (id) DO NOTHING
            """, "start server run")
    }

    package func stampRun(id: String, atMicros: Int64, stopped: Bool) async throws {
        _ = try await query("""
            UPDATE server_runs SET last_seen_us = GREATEST(last_seen_us, \(atMicros)), stopped = stopped OR \(stopped) WHERE id = \(id)
            """, "stamp server run")
    }

    package func runs(in range: TimeRange) async throws -> [ServerRun] {
        var clauses: [String] = [], binds = PostgresBindings()
        if let since = range.sinceMicros { binds.append(since); clauses.append("last_seen_us >= $\(binds.count)") }
        if let until = range.untilMicros { binds.append(until); clauses.append("start_us < $\(binds.count)") }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let rows = try await query(PostgresQuery(unsafeSQL: "SELECT id, host, start_us, last_seen_us, stopped FROM server_runs\(whereSQL) ORDER BY start_us, id",
                                                 binds: binds), "read server runs")
        return try rows.map { row in
            let id = (try? row["id"].decode(String.self)) ?? "?"
            do {
                return ServerRun(id: id, host: try row["host"].decode(String.self), startMicros: try row["start_us"].decode(Int64.self),
                                 lastSeenMicros: try row["last_seen_us"].decode(Int64.self), stopped: try row["stopped"].decode(Bool.self))
            } catch {
                throw MeteringError.corruptRow(path: location, id: id, reason: "a server run column cannot be read: \(Self.describe(error))")
            }
        }
    }

    // MARK: Reading

    package func records(in range: TimeRange, tenant: String?) async throws -> [UsageRecord] {
        let (whereSQL, binds) = Self.filter(range, tenant: tenant)
        let rows = try await query(PostgresQuery(unsafeSQL: "SELECT \(Self.columns.joined(separator: ", ")) FROM usage\(whereSQL) ORDER BY time_us, id COLLATE \"C\"",
                                                 binds: binds), "read records")
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
        // Floor division, so times before 1970 fall on their own day as in UTC.day.
        case .day: key = "to_char(TIMESTAMP 'epoch' + floor(time_us / 1000000.0) * INTERVAL '1 second', 'YYYY-MM-DD')"
        case .tag:
            key = "COALESCE(tag.value, '\(UsageGroup.untagged)')"
            from = "usage LEFT JOIN LATERAL jsonb_array_elements_text(usage.tags::jsonb) AS tag(value) ON true"
        case .user: key = "COALESCE(end_user, '\(UsageGroup.noUser)')"
        case .session: key = "COALESCE(session, '\(UsageGroup.noSession)')"
        case .replica: key = "COALESCE(replica, '\(UsageGroup.noReplica)')"
        }
        let sql = """
            SELECT \(key) AS k, COUNT(*)::BIGINT AS requests, SUM(\(UsageKindSQL.generation("prompt_tokens")))::BIGINT AS p,
                   SUM(\(UsageKindSQL.generation("cached_tokens")))::BIGINT AS c, SUM(\(UsageKindSQL.generation("cache_write_tokens")))::BIGINT AS w,
                   SUM(\(UsageKindSQL.embedding("prompt_tokens")))::BIGINT AS e, SUM(generated_tokens)::BIGINT AS g, SUM(queue_us)::BIGINT AS q,
                   SUM(prefill_us)::BIGINT AS pf, SUM(decode_us)::BIGINT AS d, SUM(busy_share_us)::BIGINT AS b
            FROM \(from)\(whereSQL) GROUP BY k
            """
        let rows = try await query(PostgresQuery(unsafeSQL: sql, binds: binds), "total records")
        return try rows.compactMap { row -> UsageGroup? in
            func int(_ name: String) throws -> Int64 { try row[name].decode(Int64?.self) ?? 0 }
            guard let key = try row["k"].decode(String?.self), try int("requests") > 0 else { return nil }
            var totals = UsageTotals()
            totals.requests = Int(try int("requests"))
            totals.promptTokens = Int(try int("p"))
            totals.cachedTokens = Int(try int("c"))
            totals.cacheWriteTokens = Int(try int("w"))
            totals.embeddingTokens = Int(try int("e"))
            totals.generatedTokens = Int(try int("g"))
            totals.queueMicros = try int("q")
            totals.prefillMicros = try int("pf")
            totals.decodeMicros = try int("d")
            totals.busyShareMicros = try int("b")
            return UsageGroup(key: key, totals: totals)
        }.sorted { $0.key < $1.key }
    }

    package func count() async throws -> Int {
        Int(try await query("SELECT COUNT(*) AS n FROM usage", "count records").first.map { try $0["n"].decode(Int64.self) } ?? 0)
    }

    /// Waits for queued appends, then closes the connections. Later calls throw `MeteringError.storeClosed`.
    package func close() async throws {
        while writing || !pending.isEmpty { await Task.yield() }
        guard client != nil else { return }
        client = nil
        runner?.cancel()
        runner = nil
    }

    private static func filter(_ range: TimeRange, tenant: String?) -> (String, PostgresBindings) {
        var clauses: [String] = []
        var binds = PostgresBindings()
        if let since = range.sinceMicros { binds.append(since); clauses.append("time_us >= $\(binds.count)") }
        if let until = range.untilMicros { binds.append(until); clauses.append("time_us < $\(binds.count)") }
        if let tenant { binds.append(tenant); clauses.append("tenant = $\(binds.count)") }
        return (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "), binds)
    }

    private func query(_ q: PostgresQuery, _ operation: String) async throws -> [PostgresRandomAccessRow] {
        guard let client else { throw MeteringError.storeClosed }
        do {
            var rows: [PostgresRandomAccessRow] = []
            for try await row in try await client.query(q) { rows.append(row.makeRandomAccess()) }
            return rows
        } catch {
            throw MeteringError.storeFailed(path: location, operation: operation, reason: Self.describe(error))
        }
    }

    /// PSQLError's description hides the server's message unless asked for it.
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            return "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
        }
        return String(describing: error)
    }

    private func record(_ row: PostgresRandomAccessRow) throws -> UsageRecord {
        let id = (try? row["id"].decode(String.self)) ?? "?"
        do {
            func int(_ name: String) throws -> Int64 { try row[name].decode(Int64.self) }
            func text(_ name: String) throws -> String { try row[name].decode(String.self) }
            func optionalText(_ name: String) throws -> String? { try row[name].decode(String?.self) }
            guard let tags = try? JSONDecoder().decode([String].self, from: Data(try text("tags").utf8)) else {
                throw MeteringError.corruptRow(path: location, id: id, reason: "tags is not a JSON array of strings")
            }
            guard let finish = UsageOutcome(rawValue: try text("finish_reason")) else {
                throw MeteringError.corruptRow(path: location, id: id, reason: "unknown finish_reason")
            }
            var kind: UsageKind?
            if let name = try optionalText("kind") {
                guard let known = UsageKind(rawValue: name) else { throw MeteringError.corruptRow(path: location, id: id, reason: "unknown kind") }
                kind = known
            }
            return UsageRecord(
                id: id, timeMicros: try int("time_us"), model: try text("model"),
                modelShape: ModelShape(
                    parameterCount: try int("model_parameters"), weightBytes: try int("model_bytes"),
                    layerCount: Int(try int("model_layers")), attentionWidth: Int(try int("model_attention_width")),
                    kvWidth: Int(try int("model_kv_width"))),
                tenant: try optionalText("tenant"), user: try optionalText("end_user"), tags: tags, session: try optionalText("session"),
                replica: try optionalText("replica"),
                promptTokens: Int(try int("prompt_tokens")), cachedTokens: Int(try int("cached_tokens")),
                cacheWriteTokens: Int(try int("cache_write_tokens")), generatedTokens: Int(try int("generated_tokens")),
                queueMicros: try int("queue_us"), prefillMicros: try int("prefill_us"), decodeMicros: try int("decode_us"),
                busyShareMicros: try int("busy_share_us"), finishReason: finish, kind: kind)
        } catch let error as MeteringError {
            throw error
        } catch {
            throw MeteringError.corruptRow(path: location, id: id, reason: Self.describe(error))
        }
    }
}
