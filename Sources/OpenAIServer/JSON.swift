// A small JSON value with ordered object keys, for writing responses and SSE chunks exactly as OpenAI
// shapes them (explicit nulls, stable key order). Requests are read with Codable (WireRequests.swift).

import Tokenization

/// A JSON value. Objects keep their keys in insertion order.
package enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    /// A Float written with Float's shortest digits (-0.1, not -0.10000000149011612).
    case float(Float)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    package static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.float(let x), .float(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// `.string` or `.null`.
    package static func optional(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }

    /// Compact JSON text.
    package var serialized: String {
        var out = ""
        write(into: &out)
        return out
    }

    package func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            // JSON has no infinities or NaN; a -inf log-probability is written as OpenAI does (-9999).
            if d.isFinite { out += "\(d)" } else if d == -.infinity { out += "-9999.0" } else { out += "null" }
        case .float(let f):
            if f.isFinite { out += "\(f)" } else if f == -.infinity { out += "-9999.0" } else { out += "null" }
        case .string(let s): appendJSONString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                appendJSONString(key, to: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }
}

extension JSON {
    /// JSON text as Python's `json.dumps` writes it, which chat templates' `tojson` uses: ", " and ": "
    /// between items, or with `indent`, one item per line (then "," ends a line). Templates show models tool
    /// definitions in this form, so tally writes them so too.
    package func pythonText(indent: Int? = nil) -> String {
        var out = ""
        writePython(into: &out, indent: indent, level: 0)
        return out
    }

    private func writePython(into out: inout String, indent: Int?, level: Int) {
        func items<T>(_ list: [T], _ open: String, _ close: String, _ write: (T, inout String) -> Void) {
            guard !list.isEmpty else { out += open + close; return }
            out += open
            for (i, item) in list.enumerated() {
                if i > 0 { out += indent == nil ? ", " : "," }
                if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                write(item, &out)
            }
            if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
            out += close
        }
        switch self {
        case .array(let list):
            items(list, "[", "]") { item, out in item.writePython(into: &out, indent: indent, level: level + 1) }
        case .object(let members):
            items(members, "{", "}") { member, out in
                JSON.string(member.0).write(into: &out)
                out += ": "
                member.1.writePython(into: &out, indent: indent, level: level + 1)
            }
        default:
            write(into: &out)
        }
    }

    /// Deepest nesting a parsed document may have (Foundation's decoder allows 512).
    static let maxParseDepth = 512

    /// Parses JSON text, keeping object keys in their order (which Foundation's readers do not): a JSON
    /// schema's properties are written in the order the schema lists them.
    /// With `trailing`, text after the value is ignored (a tool call's closing tag).
    package init(parsing bytes: [UInt8], trailing: Bool = false) throws {
        var parser = Parser(bytes: bytes)
        self = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.at == bytes.count || trailing else { throw APIError.malformedJSON("unexpected text after the JSON value") }
    }

    /// An object member by key (nil if absent or not an object).
    package subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0

        mutating func skipWhitespace() {
            while at < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[at]) { at += 1 }
        }

        func fail(_ what: String) -> APIError { .malformedJSON("\(what) at byte \(at)") }

        mutating func value(depth: Int) throws -> JSON {
            guard depth < JSON.maxParseDepth else { throw fail("nesting deeper than \(JSON.maxParseDepth)") }
            skipWhitespace()
            guard at < bytes.count else { throw fail("unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var members: [(String, JSON)] = []
                skipWhitespace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    if try separator("}") { return .object(members) }
                }
            case UInt8(ascii: "["):
                at += 1
                var items: [JSON] = []
                skipWhitespace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if try separator("]") { return .array(items) }
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }

        /// After a member or item: true at the closing bracket, false after a comma.
        mutating func separator(_ close: Unicode.Scalar) throws -> Bool {
            guard at < bytes.count else { throw fail("unexpected end") }
            if bytes[at] == UInt8(ascii: close) { at += 1; return true }
            try expect(",")
            return false
        }

        mutating func expect(_ c: Unicode.Scalar) throws {
            guard at < bytes.count, bytes[at] == UInt8(ascii: c) else { throw fail("expected '\(c)'") }
            at += 1
        }

        mutating func literal(_ text: String) throws {
            let t = Array(text.utf8)
            guard bytes.count - at >= t.count, Array(bytes[at..<at + t.count]) == t else { throw fail("invalid literal") }
            at += t.count
        }

        mutating func number() throws -> JSON {
            let start = at
            var integral = true
            while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) {
                if !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) && bytes[at] != UInt8(ascii: "-") { integral = false }
                at += 1
            }
            let text = String(decoding: bytes[start..<at], as: UTF8.self)
            if integral, let i = Int(text) { return .int(i) }
            guard !text.isEmpty, let d = Double(text), d.isFinite else { at = start; throw fail("invalid value") }
            return .double(d)
        }

        mutating func string() throws -> String {
            try expect("\"")
            var out: [UInt8] = []
            while at < bytes.count {
                let b = bytes[at]
                at += 1
                switch b {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard at < bytes.count else { throw fail("unexpected end") }
                    let e = bytes[at]
                    at += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        // A high surrogate and a low one make one character; a lone half is U+FFFD.
                        if (0xD800..<0xDC00).contains(scalar), bytes.count - at >= 6, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") {
                            at += 2
                            let low = try hex4()
                            if (0xDC00..<0xE000).contains(low) {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                at -= 6  // not its pair: read as an escape of its own
                            }
                        }
                        out += Array(String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8)
                    default: throw fail("invalid escape")
                    }
                case 0..<0x20: throw fail("control character in a string")
                default: out.append(b)
                }
            }
            throw fail("unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard bytes.count - at >= 4, let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else { throw fail("invalid \\u escape") }
            at += 4
            return v
        }
    }
}
