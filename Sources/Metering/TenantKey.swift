// API keys and the tenants they bill. A key file line is `KEY`, `NAME:KEY`, `sha256:HEX` or
// `NAME:sha256:HEX` (the key's SHA-256, so the file need not hold the key at all). Records and reports carry the tenant's name when it
// has one and the key's fingerprint otherwise; never the key.

import Crypto
import Foundation

/// One accepted key: its SHA-256 (what a presented key is compared with) and who it bills.
package struct TenantKey: Sendable, Equatable, Hashable {
    /// SHA-256 of the key's UTF-8 bytes.
    package let digest: [UInt8]
    /// The tenant's name from the key file; nil for a bare key.
    package let name: String?

    /// A bare key or `NAME:KEY`.
    package init(key: String, name: String? = nil) {
        digest = Self.digest(of: Array(key.utf8))
        self.name = name
    }

    /// SHA-256 of a presented key's bytes, to compare with `digest`.
    package static func digest(of key: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: key))
    }

    /// A key known only by its SHA-256.
    package init(digest: [UInt8], name: String?) {
        self.digest = digest
        self.name = name
    }

    /// Who records made with this key are billed to: the name, else `Tenant.fingerprint(apiKey:)` of the key.
    package var tenant: String {
        name ?? "sha256:" + digest.map { String(format: "%02x", $0) }.joined().prefix(Tenant.fingerprintHexLength)
    }

    /// One key file line, trimmed and not empty. A name is 1-128 visible ASCII characters without `:`.
    ///
    ///     TenantKey.parse(line: "support:sk-live-123")                 // named "support"
    ///     TenantKey.parse(line: "ci:sha256:9f86d081884c7d65...")       // 64 hex digits
    ///     TenantKey.parse(line: "sk-live-123")                         // unnamed: billed to its fingerprint
    ///     TenantKey.parse(line: "sha256:9f86d081884c7d65...")          // unnamed, by its digest
    package static func parse(line: String) throws(MeteringError) -> TenantKey {
        // `sha256:HEX` alone: an unnamed key known by its digest.
        if line.hasPrefix("sha256:") {
            let hex = Array(line.dropFirst("sha256:".count).utf8)
            guard hex.count == 64, let digest = decodeHex(hex) else {
                throw .invalidKeyFile("sha256: must be followed by 64 hex digits (sha256sum of the key)")
            }
            return TenantKey(digest: digest, name: nil)
        }
        guard let colon = line.firstIndex(of: ":") else { return TenantKey(key: line) }
        let name = String(line[..<colon]), rest = String(line[line.index(after: colon)...])
        guard UsageRecord.isValidName(name) else {
            throw .invalidKeyFile("the tenant name \"\(name.prefix(40))\" must be 1-128 visible ASCII characters without spaces")
        }
        guard !rest.isEmpty else { throw .invalidKeyFile("tenant \(name) has no key after the colon") }
        if rest.hasPrefix("sha256:") {
            let hex = Array(rest.dropFirst("sha256:".count).utf8)
            guard hex.count == 64, let digest = decodeHex(hex) else {
                throw .invalidKeyFile("tenant \(name): sha256: must be followed by 64 hex digits (sha256sum of the key)")
            }
            return TenantKey(digest: digest, name: name)
        }
        return TenantKey(key: rest, name: name)
    }

    /// Every non-empty line of a key file; `#` starts a comment line. Two keys naming the same tenant are
    /// fine (a rotated key); the same key twice is an error, since it could bill only one of them.
    package static func parse(file text: String) throws(MeteringError) -> [TenantKey] {
        var keys: [TenantKey] = []
        for (number, raw) in text.split(whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let key: TenantKey
            do { key = try parse(line: line) } catch { throw .invalidKeyFile("line \(number + 1): \(error.reason)") }
            if keys.contains(where: { $0.digest == key.digest }) { throw .invalidKeyFile("line \(number + 1): the same key is listed twice") }
            keys.append(key)
        }
        return keys
    }

    private static func decodeHex(_ hex: [UInt8]) -> [UInt8]? {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: hex.count, by: 2) {
            guard let high = nibble(hex[i]), let low = nibble(hex[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}

extension TenantKey: ExpressibleByStringLiteral {
    /// A key file line in code and tests: `"support:sk-123"`. Crashes on a malformed literal.
    package init(stringLiteral line: String) {
        self = try! TenantKey.parse(line: line)
    }
}
