// Key file lines: bare keys bill their fingerprint, named keys their name, and a digest line accepts the
// key whose SHA-256 it holds without the file holding the key.

import Foundation
@testable import Metering
import Testing

@Suite struct TenantKeyTests {
    @Test func linesNameTheirTenant() throws {
        let bare = try TenantKey.parse(line: "sk-live-123")
        #expect(bare.name == nil && bare.tenant == Tenant.fingerprint(apiKey: "sk-live-123"))
        let named = try TenantKey.parse(line: "support:sk-live-123")
        #expect(named.tenant == "support" && named.digest == bare.digest)
        // sha256("sk-live-123"), as `printf %s sk-live-123 | sha256sum` prints it.
        let hex = bare.digest.map { String(format: "%02x", $0) }.joined()
        let hashed = try TenantKey.parse(line: "ci:sha256:" + hex.uppercased())
        #expect(hashed.tenant == "ci" && hashed.digest == bare.digest)
        let unnamed = try TenantKey.parse(line: "sha256:" + hex)
        #expect(unnamed.name == nil && unnamed.digest == bare.digest && unnamed.tenant == bare.tenant)
        // A key may itself contain colons after the name.
        #expect(try TenantKey.parse(line: "ops:a:b").digest == TenantKey(key: "a:b").digest)
    }

    @Test func badLinesAreNamed() {
        for (line, fragment) in [(":key", "tenant name"), ("na me:key", "tenant name"), ("ci:", "no key"),
                                 ("ci:sha256:abc", "64 hex digits"), ("sha256:abc", "64 hex digits"), ("ci:sha256:" + String(repeating: "g", count: 64), "64 hex digits")] {
            #expect(throws: MeteringError.self) { try TenantKey.parse(line: line) }
            do { _ = try TenantKey.parse(line: line) } catch { #expect(error.description.contains(fragment), "\(line): \(error)") }
        }
    }

    @Test func filesSkipCommentsAndRefuseARepeatedKey() throws {
        let keys = try TenantKey.parse(file: "# team keys\nsupport:k1\n\n  ci:k2  \nk3\nsupport:k4\n")
        #expect(keys.map(\.tenant) == ["support", "ci", Tenant.fingerprint(apiKey: "k3"), "support"])
        do {
            _ = try TenantKey.parse(file: "a:k1\nb:k1\n")
            Issue.record("a repeated key was accepted")
        } catch {
            #expect(error.description.contains("line 2") && error.description.contains("twice"))
        }
    }
}
