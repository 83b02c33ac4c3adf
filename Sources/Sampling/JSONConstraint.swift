// Constrained sampling for `response_format: {"type": "json_object"}`: before each token is drawn, every
// token whose bytes would take the output off valid JSON is masked out, so the text is always a prefix of
// one JSON object and the request ends (finish_reason "stop") when the object closes.
//
// The recognizer reads bytes (a token may end mid UTF-8 character); the mask tries only the tokens whose
// first byte the recognizer accepts, and inside a string, where nearly every token is valid, it lets the
// tokens of plain string text (no quote, backslash, control byte or partial character) through untried.

/// A byte-at-a-time recognizer of one JSON object (RFC 8259): every prefix it accepts can still be
/// completed to a valid object. Whitespace runs are bounded (a model that keeps emitting spaces or newlines
/// would otherwise never finish), and so is nesting.
package struct JSONRecognizer: Sendable, Equatable {
    enum Expect: UInt8 { case start, value, valueOrEnd, keyOrEnd, key, colon, commaOrEnd, done }
    enum Lexeme: UInt8 { case none, string, number, literal }

    /// Longest run of whitespace between tokens, and deepest nesting.
    package static let maxWhitespace = 24
    package static let maxDepth = 32

    /// Open containers, innermost last: true for an object, false for an array.
    private var objects: [Bool] = []
    private var expect = Expect.start
    private var lexeme = Lexeme.none
    // In a string: whether it is a key, a pending backslash, \u hex digits still to come, UTF-8
    // continuation bytes still to come.
    private var isKey = false
    private var escaped = false
    private var hexLeft: UInt8 = 0
    private var utf8Left: UInt8 = 0
    // In a number: the grammar's state (see numberByte). In a literal: its bytes and how many were read.
    private var numberState: UInt8 = 0
    private var literal: UInt8 = 0  // an index into `literals`
    private var literalRead = 0
    private static let literals: [[UInt8]] = [Array("true".utf8), Array("false".utf8), Array("null".utf8)]
    private var whitespaceRun = 0

    package init() {}

    /// The top-level object has closed: nothing more may follow.
    package var isComplete: Bool { expect == .done }

    /// Inside a string with nothing pending: any plain text byte is accepted.
    var inPlainString: Bool { lexeme == .string && !escaped && hexLeft == 0 && utf8Left == 0 }

    /// Takes one byte; false (and the state is then unspecified) if no valid object continues with it.
    package mutating func accept(_ b: UInt8) -> Bool {
        switch lexeme {
        case .string: return stringByte(b)
        case .literal:
            let text = Self.literals[Int(literal)]
            guard b == text[literalRead] else { return false }
            literalRead += 1
            if literalRead == text.count { lexeme = .none; afterValue() }
            return true
        case .number:
            if numberByte(b) { return true }
            // The number ends here: if it can, the byte is read as what follows it.
            guard [1, 2, 4, 7].contains(numberState) else { return false }
            lexeme = .none
            afterValue()
            return structural(b)
        case .none:
            return structural(b)
        }
    }

    private mutating func structural(_ b: UInt8) -> Bool {
        if b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D {
            guard expect != .done else { return false }
            whitespaceRun += 1
            return whitespaceRun <= Self.maxWhitespace
        }
        whitespaceRun = 0
        switch expect {
        case .start:
            guard b == UInt8(ascii: "{") else { return false }
            return open(object: true)
        case .valueOrEnd where b == UInt8(ascii: "]"):
            return close()
        case .value, .valueOrEnd:
            return beginValue(b)
        case .keyOrEnd where b == UInt8(ascii: "}"):
            return close()
        case .keyOrEnd, .key:
            guard b == UInt8(ascii: "\"") else { return false }
            lexeme = .string
            isKey = true
            return true
        case .colon:
            guard b == UInt8(ascii: ":") else { return false }
            expect = .value
            return true
        case .commaOrEnd:
            let object = objects.last!
            if b == UInt8(ascii: ",") {
                expect = object ? .key : .value
                return true
            }
            guard b == UInt8(ascii: object ? "}" : "]") else { return false }
            return close()
        case .done:
            return false
        }
    }

    private mutating func beginValue(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "{"): return open(object: true)
        case UInt8(ascii: "["): return open(object: false)
        case UInt8(ascii: "\""):
            lexeme = .string
            isKey = false
        case UInt8(ascii: "-"):
            lexeme = .number
            numberState = 0
        case UInt8(ascii: "0"):
            lexeme = .number
            numberState = 1
        case UInt8(ascii: "1")...UInt8(ascii: "9"):
            lexeme = .number
            numberState = 2
        case UInt8(ascii: "t"): startLiteral(0)
        case UInt8(ascii: "f"): startLiteral(1)
        case UInt8(ascii: "n"): startLiteral(2)
        default: return false
        }
        return true
    }

    private mutating func startLiteral(_ index: UInt8) {
        lexeme = .literal
        literal = index
        literalRead = 1
    }

    private mutating func open(object: Bool) -> Bool {
        guard objects.count < Self.maxDepth else { return false }
        objects.append(object)
        expect = object ? .keyOrEnd : .valueOrEnd
        return true
    }

    private mutating func close() -> Bool {
        objects.removeLast()
        afterValue()
        return true
    }

    private mutating func afterValue() {
        expect = objects.isEmpty ? .done : .commaOrEnd
    }

    private mutating func stringByte(_ b: UInt8) -> Bool {
        if utf8Left > 0 {
            guard b & 0xC0 == 0x80 else { return false }
            utf8Left -= 1
            return true
        }
        if hexLeft > 0 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b | 0x20) else { return false }
            hexLeft -= 1
            return true
        }
        if escaped {
            escaped = false
            switch b {
            case UInt8(ascii: "u"): hexLeft = 4
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): break
            default: return false
            }
            return true
        }
        switch b {
        case UInt8(ascii: "\""):
            lexeme = .none
            if isKey { expect = .colon } else { afterValue() }
        case UInt8(ascii: "\\"): escaped = true
        case 0..<0x20: return false
        case 0x20..<0x80: break
        case 0xC2...0xDF: utf8Left = 1
        case 0xE0...0xEF: utf8Left = 2
        case 0xF0...0xF4: utf8Left = 3
        default: return false
        }
        return true
    }

    /// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, states: 0 after '-', 1 after a leading 0,
    /// 2 in the integer digits, 3 after '.', 4 in the fraction, 5 after 'e', 6 after its sign, 7 in the
    /// exponent. A number may end in states 1, 2, 4 and 7.
    private mutating func numberByte(_ b: UInt8) -> Bool {
        let digit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
        let next: UInt8? = switch (numberState, b) {
        case (0, UInt8(ascii: "0")): 1
        case (0, _) where digit: 2
        case (1, UInt8(ascii: ".")), (2, UInt8(ascii: ".")): 3
        case (1, UInt8(ascii: "e")), (1, UInt8(ascii: "E")), (2, UInt8(ascii: "e")), (2, UInt8(ascii: "E")),
             (4, UInt8(ascii: "e")), (4, UInt8(ascii: "E")): 5
        case (2, _) where digit: 2
        case (3, _) where digit, (4, _) where digit: 4
        case (5, UInt8(ascii: "+")), (5, UInt8(ascii: "-")): 6
        case (5, _) where digit, (6, _) where digit, (7, _) where digit: 7
        default: nil
        }
        guard let next else { return false }
        numberState = next
        return true
    }
}

/// The vocabulary as the mask reads it, made once per model: each token's bytes (none for control tokens,
/// which JSON text never contains), the tokens by first byte, and which tokens are plain string text.
package final class ConstraintVocabulary: Sendable {
    let bytes: [[UInt8]]
    /// Tokens whose first byte is b, for each b.
    let byFirstByte: [[Int32]]
    /// Token i is plain string text: printable bytes other than '"' and '\', whole UTF-8 characters.
    let plain: [Bool]
    /// The tokens that are not plain (tried one by one inside strings).
    let notPlain: [Int32]

    /// `bytes[i]` is token i's text; empty for tokens the output may never contain.
    package init(tokenBytes bytes: [[UInt8]]) {
        self.bytes = bytes
        var buckets = [[Int32]](repeating: [], count: 256)
        var plain = [Bool](repeating: false, count: bytes.count)
        var notPlain: [Int32] = []
        for (i, token) in bytes.enumerated() where !token.isEmpty {
            buckets[Int(token[0])].append(Int32(i))
            var state = JSONRecognizer()
            for b in Array("{\"".utf8) { _ = state.accept(b) }
            var accepted = true
            for b in token where accepted { accepted = b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") && state.accept(b) }
            plain[i] = accepted && state.inPlainString
            if !plain[i] { notPlain.append(Int32(i)) }
        }
        byFirstByte = buckets
        self.plain = plain
        self.notPlain = notPlain
    }

    package var count: Int { bytes.count }
}

/// One request's JSON constraint: its recognizer, advanced by every token the request keeps. Used by one
/// request's sampling only (on whichever compute thread draws its token).
package final class JSONConstraint: @unchecked Sendable {
    private let vocabulary: ConstraintVocabulary
    private var state = JSONRecognizer()
    private var allowed: [Bool]

    package init(vocabulary: ConstraintVocabulary) {
        self.vocabulary = vocabulary
        allowed = [Bool](repeating: false, count: vocabulary.count)
    }

    /// The object has closed: the request is done.
    package var isComplete: Bool { state.isComplete }

    /// Sets every token that cannot continue valid JSON to -infinity in `logits` (the vocabulary's
    /// size). Returns false, leaving the logits alone, if no token could: only a vocabulary without JSON's
    /// punctuation could do that.
    @discardableResult
    package func mask(_ logits: UnsafeMutableBufferPointer<Float>) -> Bool {
        let v = vocabulary, n = min(logits.count, v.count)
        for i in 0..<n { allowed[i] = false }
        var any = false
        func tryToken(_ t: Int32) {
            var s = state
            for b in v.bytes[Int(t)] {
                if !s.accept(b) { return }
            }
            allowed[Int(t)] = true
            any = true
        }
        if state.inPlainString {
            for i in 0..<n where v.plain[i] { allowed[i] = true; any = true }
            for t in v.notPlain { tryToken(t) }
        } else {
            for b in 0..<256 {
                var s = state
                guard s.accept(UInt8(b)) else { continue }
                for t in v.byFirstByte[b] { tryToken(t) }
            }
        }
        guard any else { return false }
        for i in 0..<logits.count where i >= n || !allowed[i] { logits[i] = -.infinity }
        return true
    }

    /// Advances past a drawn token; false if it was not one the mask allowed.
    @discardableResult
    package func accept(_ token: Int32) -> Bool {
        guard token >= 0, Int(token) < vocabulary.count, !vocabulary.bytes[Int(token)].isEmpty else { return false }
        var s = state
        for b in vocabulary.bytes[Int(token)] {
            if !s.accept(b) { return false }
        }
        state = s
        return true
    }
}
