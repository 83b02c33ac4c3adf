// What only the SQLite store promises: WAL, numbered migrations, refusing newer schemas, and records that
// outlive the process that wrote them.

import Foundation
@testable import Metering
import SQLiteNIO
import Testing

@Suite struct SQLiteUsageStoreTests {
    @Test func newFileIsWALAtTheLatestSchema() async throws {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path
        let store = try await SQLiteUsageStore.open(path: path)
        #expect(try await store.journalMode() == "wal")
        #expect(try await store.storedSchemaVersion() == SQLiteUsageStore.schemaVersion)
        #expect(SQLiteUsageStore.schemaVersion == 5)
        try await store.close()
    }

    @Test func recordsSurviveReopening() async throws {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path
        let store = try await SQLiteUsageStore.open(path: path)
        for record in Fixtures.records { try await store.append(record) }
        try await store.close()
        let again = try await SQLiteUsageStore.open(path: path, durability: .normal)
        #expect(try await again.records() == Fixtures.records)
        try await again.close()
    }

    @Test func appendedRecordIsVisibleToAnotherConnectionAtOnce() async throws {
        // What `append` returning means: committed, so a second reader (another process in real life) sees it.
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path
        let writer = try await SQLiteUsageStore.open(path: path)
        let reader = try await SQLiteUsageStore.open(path: path)
        try await writer.append(Fixtures.records[0])
        #expect(try await reader.records() == [Fixtures.records[0]])
        try await writer.close()
        try await reader.close()
    }

    @Test func aVersionZeroFileIsMigrated() async throws {
        // An existing SQLite file with no tally tables (user_version 0) gets migration 1.
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path
        let raw = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await raw.query("CREATE TABLE unrelated (x INTEGER)")
        try await raw.close()
        let store = try await SQLiteUsageStore.open(path: path)
        #expect(try await store.storedSchemaVersion() == SQLiteUsageStore.schemaVersion)
        try await store.append(Fixtures.records[0])
        #expect(try await store.count() == 1)
        try await store.close()
    }

    @Test func aVersionOneFileKeepsItsRecordsAndGainsServerRunsSessionsAndOutcomes() async throws {
        // A file written by a build before server runs existed: migration 2 adds the table, migration 3 the
        // session column and outcomes, migration 4 the replica column, migration 5 the kind column; records
        // stay (with none of them: kind nil reads as generation).
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path
        let raw = try await SQLiteConnection.open(storage: .file(path: path))
        for statement in SQLiteUsageStore.migrations[0] { _ = try await raw.query(statement) }
        _ = try await raw.query("PRAGMA user_version = 1")
        let columns = SQLiteUsageStore.columns.dropLast(3)  // version 1 had no session, replica or kind
        _ = try await raw.query("INSERT INTO usage (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))",
                                SQLiteUsageStore.binds(Fixtures.records[0]).dropLast(3))
        try await raw.close()
        let store = try await SQLiteUsageStore.open(path: path)
        #expect(try await store.storedSchemaVersion() == 5)
        var old = Fixtures.records[0]
        old.session = nil
        old.replica = nil
        #expect(try await store.records() == [old])
        try await store.startRun(ServerRun(id: "r1", host: "a", startMicros: 5))
        #expect(try await store.runs(in: .all).map(\.id) == ["r1"])
        try await store.appendOutcome(Outcome(id: "o", timeMicros: 1, tenant: nil, requestID: old.id, label: "resolved"))
        #expect(try await store.outcomes(sinceMicros: nil).count == 1)
        try await store.close()
    }

    @Test func aNewerSchemaIsRefused() async throws {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("usage.db").path
        let raw = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await raw.query("PRAGMA user_version = 7")
        try await raw.close()
        await #expect(throws: MeteringError.schemaTooNew(path: path, found: 7, known: SQLiteUsageStore.schemaVersion)) {
            _ = try await SQLiteUsageStore.open(path: path)
        }
    }

    @Test func anUnopenablePathNamesTheFile() async throws {
        let path = "/nonexistent-dir-\(UUID().uuidString)/usage.db"
        do {
            _ = try await SQLiteUsageStore.open(path: path)
            Issue.record("opened a file in a missing directory")
        } catch let error as MeteringError {
            guard case .storeFailed(let failedPath, _, _) = error else { Issue.record("\(error)"); return }
            #expect(failedPath == path)
            #expect(error.description.contains("--db"))
        }
    }
}
