// Records' small parts: tag parsing, the tenant fingerprint, UTC calendar arithmetic.

import Foundation
@testable import Metering
import Testing

@Suite struct RecordTests {
    @Test func tagsAreTrimmedDedupedAndBounded() {
        #expect(UsageRecord.parseTags(header: " team-a, nightly,team-a ,, ") == ["team-a", "nightly"])
        #expect(UsageRecord.parseTags(header: nil) == [])
        let many = (0..<40).map { "t\($0)" }.joined(separator: ",")
        #expect(UsageRecord.parseTags(header: many).count == UsageRecord.maxTags)
        #expect(UsageRecord.parseTags(header: String(repeating: "x", count: 100)) == [String(repeating: "x", count: 64)])
    }

    @Test func fingerprintIsSHA256PrefixNeverTheKey() {
        // printf 'sk-test' | sha256sum -> f3abf2a6cc4f0098...
        let fingerprint = Tenant.fingerprint(apiKey: "sk-test")
        #expect(fingerprint == "sha256:" + "f3abf2a6cc4f0098")
        #expect(!fingerprint.contains("sk-test"))
        #expect(Tenant.fingerprint(apiKey: "sk-tesu") != fingerprint)
    }

    static let timestamps: [(Int64, String)] = [
        (0, "1970-01-01T00:00:00Z"),
        (Fixtures.nov20, "2026-11-20T00:00:00Z"),
        (Fixtures.nov20 + 86_399_999_999, "2026-11-20T23:59:59Z"),
        (951_782_400_000_000, "2000-02-29T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
    ]

    @Test(arguments: timestamps)
    func utcTimestamps(micros: Int64, text: String) {
        #expect(UTC.timestamp(micros: micros) == text)
        #expect(UTC.day(micros: micros) == String(text.prefix(10)))
    }

    @Test func utcParsingAndPeriods() {
        #expect(UTC.parse("2026-11-20") == Fixtures.nov20)
        #expect(UTC.parse("2026-11-20T09:00:30Z") == Fixtures.nov20 + 9 * Fixtures.hour + 30 * Fixtures.second)
        #expect(UTC.parse("2026-13-01") == nil)
        #expect(UTC.parse("yesterday") == nil)
        #expect(UTC.parse("2026-11-20T09:00:30") == nil)
        let t = Fixtures.nov20 + 5 * Fixtures.hour
        #expect(UTC.timestamp(micros: SpendPeriod.month.start(containing: t)) == "2026-11-01T00:00:00Z")
        #expect(UTC.timestamp(micros: SpendPeriod.month.end(containing: t)) == "2026-12-01T00:00:00Z")
        #expect(UTC.timestamp(micros: SpendPeriod.month.end(containing: UTC.parse("2026-12-31T23:00:00Z")!)) == "2027-01-01T00:00:00Z")
        #expect(UTC.timestamp(micros: SpendPeriod.day.end(containing: t)) == "2026-11-21T00:00:00Z")
    }
}
