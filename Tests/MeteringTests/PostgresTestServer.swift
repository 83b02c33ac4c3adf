// The PostgreSQL server the store tests use: TALLY_TEST_POSTGRES, a URL whose user may create databases
// (`.ci/run` starts a server on loopback and sets it). Each store test gets a new, empty database.

import Foundation
import Logging
@testable import Metering
import PostgresNIO

enum PostgresTestServer {
    struct Missing: Error, CustomStringConvertible {
        var description: String { "TALLY_TEST_POSTGRES is not set: start PostgreSQL and set it to postgres://USER@HOST:PORT/DB (.ci/run does)" }
    }

    /// The URL of a database created for one test.
    static func freshDatabase() async throws -> String {
        guard let admin = ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES"] else { throw Missing() }
        let client = PostgresClient(configuration: try PostgresUsageStore.Address(url: admin).clientConfiguration, backgroundLogger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let name = "tally_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        var url = URLComponents(string: admin)!
        url.path = "/" + name
        return url.string!
    }
}
