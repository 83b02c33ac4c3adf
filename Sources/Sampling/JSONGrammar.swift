// The grammar constrained sampling follows: JSON (RFC 8259) narrowed by a schema. A JSON schema is compiled
// once into a small graph of nodes (an object's properties in order, an array's items, a string's length,
// an integer, an enum's texts, anyOf's alternatives); JSON mode is the grammar of any object.
//
// The recognizer reads bytes (a token may end mid UTF-8 character) and accepts exactly the prefixes that
// can still be completed to a document the grammar allows. It keeps a stack of frames, innermost on top;
// where anyOf's alternatives start alike (two objects) it follows each as its own thread until the bytes
// tell them apart.

/// A JSON grammar: nodes that refer to each other by index (a schema's `$ref` may recurse).
package final class JSONGrammar: Sendable {
    package enum Node: Sendable, Equatable {
        /// Any JSON value.
        case any
        /// An object of any keys, each value of this node.
        case dictionary(values: Int)
        /// An object with exactly these keys, written in this order; a property not required may be left out.
        case object([Property])
        case array(items: Int, minItems: Int, maxItems: Int?)
        /// A string of minLength...maxLength characters (Unicode scalars; an escape is one).
        case string(minLength: Int, maxLength: Int?)
        case number
        case integer
        /// Exactly one of these JSON texts (an enum, a const, a boolean, null).
        case literals([[UInt8]])
        case anyOf([Int])
    }

    package struct Property: Sendable, Equatable {
        /// The key as JSON text, quotes included.
        package var key: [UInt8]
        package var value: Int
        package var required: Bool
        package init(key: [UInt8], value: Int, required: Bool) {
            self.key = key
            self.value = value
            self.required = required
        }
    }

    /// Nodes every grammar starts with, which `.any` is made of.
    package static let builtins: [Node] = [.any, .string(minLength: 0, maxLength: nil), .array(items: 0, minItems: 0, maxItems: nil),
                                           .literals(["true", "false", "null"].map { Array($0.utf8) }), .dictionary(values: 0),
                                           .literals(["true", "false"].map { Array($0.utf8) }), .literals([Array("null".utf8)])]
    package static let anyString = 1, anyArray = 2, anyLiteral = 3, anyDictionary = 4, anyBoolean = 5, null = 6

    let nodes: [Node]
    let root: Int
    /// Per node: literal texts sorted (so texts sharing a prefix are neighbours), and an object's keys as
    /// written after the opening quote (escaped, closing quote included), sorted, with their property index.
    let sortedTexts: [[[UInt8]]]
    let keyTexts: [[[UInt8]]]
    let keyProperties: [[Int]]

    /// `nodes` must begin with `builtins`.
    package init(nodes: [Node], root: Int) {
        precondition(Array(nodes.prefix(Self.builtins.count)) == Self.builtins && nodes.indices.contains(root))
        self.nodes = nodes
        self.root = root
        sortedTexts = nodes.map { node in
            guard case .literals(let texts) = node else { return [] }
            return Array(Set(texts)).sorted { $0.lexicographicallyPrecedes($1) }
        }
        let keys = nodes.map { node -> [(text: [UInt8], property: Int)] in
            guard case .object(let properties) = node else { return [] }
            return properties.enumerated().map { i, p in (Array(p.key.dropFirst()), i) }
                .sorted { $0.text.lexicographicallyPrecedes($1.text) }
        }
        keyTexts = keys.map { $0.map(\.text) }
        keyProperties = keys.map { $0.map(\.property) }
    }

    /// JSON mode: one object of any content.
    package static let anyObject = JSONGrammar(nodes: builtins, root: anyDictionary)
}

/// Reads one document of a grammar byte by byte: every prefix it accepts can still be completed to a
/// document the grammar allows. Whitespace runs between tokens are bounded (a model that keeps emitting
/// spaces or newlines would otherwise never finish), and so are nesting and a number's length.
package struct JSONRecognizer: Sendable {
    /// Longest run of whitespace between tokens, deepest nesting, longest number.
    package static let maxWhitespace = 24
    package static let maxDepth = 32
    package static let maxNumberBytes = 32
    /// Most anyOf threads followed at once; beyond, the later alternatives are dropped.
    static let maxThreads = 16

    private let grammar: JSONGrammar
    private var thread: Thread
    /// More threads, while anyOf alternatives that start alike are still told apart (usually none).
    private var others: [Thread] = []

    /// JSON mode's recognizer: one object of any content.
    package init() { self.init(grammar: .anyObject) }

    package init(grammar: JSONGrammar) {
        self.grammar = grammar
        thread = Thread(below: [.end], top: .value(grammar.root))
    }

    /// The document is complete: nothing more may follow.
    package var isComplete: Bool { others.isEmpty && thread.top == .end }

    /// Inside a string with nothing pending, the room left for plain characters (Int.max if unbounded);
    /// nil elsewhere. The mask lets tokens of that many plain characters or fewer through untried.
    var plainStringRoom: Int? {
        guard others.isEmpty, case .string(let node, let lexer) = thread.top, lexer.pending == 0 else { return nil }
        guard case .string(_, let maxLength) = grammar.nodes[node] else { return nil }
        return maxLength.map { $0 - lexer.length } ?? Int.max
    }

    /// Takes one byte; false (and the state is then unspecified) if no allowed document continues with it.
    package mutating func accept(_ b: UInt8) -> Bool {
        if others.isEmpty {
            switch thread.step(b, grammar) {
            case .rejected: return false
            case .accepted: return true
            case .forked(let threads):
                thread = threads[0]
                others = Array(threads.dropFirst().prefix(Self.maxThreads - 1))
                return true
            }
        }
        var kept: [Thread] = []
        for var t in [thread] + others {
            switch t.step(b, grammar) {
            case .rejected: break
            case .accepted: kept.append(t)
            case .forked(let threads): kept += threads
            }
        }
        guard let first = kept.first else { return false }
        thread = first
        others = Array(kept.dropFirst().prefix(Self.maxThreads - 1))
        return true
    }
}

/// A string's lexical state: escapes and UTF-8 continuation bytes still to come, characters read.
struct StringLexer: Equatable {
    /// 1 after a backslash, 1...4 for \u hex digits still to come (as 4 + n), continuation bytes to come.
    var escaped = false
    var hexLeft: UInt8 = 0
    var utf8Left: UInt8 = 0
    var length = 0

    var pending: Int { (escaped ? 1 : 0) + Int(hexLeft) + Int(utf8Left) }

    enum Result { case rejected, accepted, closed }

    /// Reads one byte of a string's content or its closing quote, counting characters up to `maxLength`.
    mutating func read(_ b: UInt8, maxLength: Int?) -> Result {
        if utf8Left > 0 {
            guard b & 0xC0 == 0x80 else { return .rejected }
            utf8Left -= 1
            return .accepted
        }
        if hexLeft > 0 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b | 0x20) else { return .rejected }
            hexLeft -= 1
            return .accepted
        }
        if escaped {
            escaped = false
            switch b {
            case UInt8(ascii: "u"): hexLeft = 4
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): break
            default: return .rejected
            }
            return .accepted
        }
        if b == UInt8(ascii: "\"") { return .closed }
        // Any other byte starts a character.
        if let maxLength, length >= maxLength { return .rejected }
        switch b {
        case UInt8(ascii: "\\"): escaped = true
        case 0..<0x20: return .rejected
        case 0x20..<0x80: break
        case 0xC2...0xDF: utf8Left = 1
        case 0xE0...0xEF: utf8Left = 2
        case 0xF0...0xF4: utf8Left = 3
        default: return .rejected
        }
        length += 1
        return .accepted
    }
}

/// One reading of the document so far: the frames of the values open, innermost on top.
private struct Thread: Equatable {
    enum Phase: UInt8 { case open, key, colon, value, afterValue, comma }

    enum Frame: Equatable {
        /// Below the root: on top once the document is complete.
        case end
        /// A value of this node comes next (after whitespace).
        case value(Int)
        /// An object of `.object` properties: the next property that may be written, and while a key is
        /// read, the range of sorted keys it still matches and the bytes read.
        case object(node: Int, next: Int, phase: Phase, lo: Int, hi: Int, read: Int)
        case dictionary(node: Int, phase: Phase)
        case array(node: Int, count: Int, phase: Phase)
        case string(node: Int, StringLexer)
        /// A number's grammar state (see numberByte) and its bytes so far.
        case number(integer: Bool, state: UInt8, length: Int)
        /// Matching a `.literals` node: the range of sorted texts still matched and the bytes read.
        case literal(node: Int, lo: Int, hi: Int, read: Int)
    }

    enum Step { case rejected, accepted, forked([Thread]) }

    var below: [Frame]
    var top: Frame
    var depth = 0
    var whitespace = 0

    private static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D }

    /// Whether whitespace may come next: between tokens, not inside one.
    private var betweenTokens: Bool {
        switch top {
        case .value: true
        case .object(_, _, let phase, _, _, _), .dictionary(_, let phase), .array(_, _, let phase): phase != .key
        case .end, .string, .number, .literal: false
        }
    }

    mutating func step(_ b: UInt8, _ g: JSONGrammar) -> Step {
        if !Self.isWhitespace(b) { whitespace = 0 }
        // Each pass either settles the byte or ends the top value before it (a number ends at the byte
        // after it) and hands the byte to the frame below.
        while true {
            if Self.isWhitespace(b) && betweenTokens {
                whitespace += 1
                return whitespace <= JSONRecognizer.maxWhitespace ? .accepted : .rejected
            }
            switch top {
            case .end:
                return .rejected
            case .value(let node):
                return begin(node, b, g)
            case .string(let node, var lexer):
                guard case .string(let minLength, let maxLength) = g.nodes[node] else { return .rejected }
                switch lexer.read(b, maxLength: maxLength) {
                case .rejected: return .rejected
                case .accepted:
                    top = .string(node: node, lexer)
                    return .accepted
                case .closed:
                    guard lexer.length >= minLength else { return .rejected }
                    finishValue()
                    return .accepted
                }
            case .number(let integer, let state, let length):
                if let next = Self.numberByte(state, b, integer: integer), length < JSONRecognizer.maxNumberBytes {
                    top = .number(integer: integer, state: next, length: length + 1)
                    return .accepted
                }
                guard [1, 2, 4, 7].contains(state) else { return .rejected }
                finishValue()
            case .literal(let node, let lo, let hi, let read):
                let texts = g.sortedTexts[node]
                guard let (newLo, newHi) = Self.narrow(texts, lo, hi, read, b) else {
                    // A number literal (1 among 1 and 12) ends at the byte after it.
                    guard (lo..<hi).contains(where: { texts[$0].count == read }) else { return .rejected }
                    finishValue()
                    continue
                }
                top = .literal(node: node, lo: newLo, hi: newHi, read: read + 1)
                if newHi - newLo == 1, texts[newLo].count == read + 1, !Self.isDigit(texts[newLo][read]) { finishValue() }
                return .accepted
            case .array(let node, let count, let phase):
                guard case .array(let items, let minItems, let maxItems) = g.nodes[node] else { return .rejected }
                if b == UInt8(ascii: "]"), phase == .open || phase == .afterValue, count >= minItems {
                    depth -= 1
                    finishValue()
                    return .accepted
                }
                if b == UInt8(ascii: ","), phase == .afterValue, count < maxItems ?? Int.max {
                    top = .array(node: node, count: count, phase: .comma)
                    return .accepted
                }
                guard phase == .open || phase == .comma, count < maxItems ?? Int.max else { return .rejected }
                top = .array(node: node, count: count, phase: .value)
                push(.value(items))
            case .dictionary(let node, let phase):
                guard case .dictionary(let values) = g.nodes[node] else { return .rejected }
                switch (phase, b) {
                case (.open, UInt8(ascii: "}")), (.afterValue, UInt8(ascii: "}")):
                    depth -= 1
                    finishValue()
                case (.open, UInt8(ascii: "\"")), (.comma, UInt8(ascii: "\"")):
                    top = .dictionary(node: node, phase: .key)
                    push(.string(node: JSONGrammar.anyString, StringLexer()))
                case (.colon, UInt8(ascii: ":")):
                    top = .dictionary(node: node, phase: .value)
                    push(.value(values))
                case (.afterValue, UInt8(ascii: ",")):
                    top = .dictionary(node: node, phase: .comma)
                default:
                    return .rejected
                }
                return .accepted
            case .object(let node, let next, let phase, let lo, let hi, let read):
                return objectByte(b, node: node, next: next, phase: phase, lo: lo, hi: hi, read: read, g)
            }
        }
    }

    private mutating func objectByte(_ b: UInt8, node: Int, next: Int, phase: Phase, lo: Int, hi: Int, read: Int, _ g: JSONGrammar) -> Step {
        guard case .object(let properties) = g.nodes[node] else { return .rejected }
        let keys = g.keyTexts[node], keyProperties = g.keyProperties[node]
        // Properties at next...last may be written next: up to and including the first required one.
        let last = properties[next...].firstIndex(where: \.required) ?? properties.count - 1
        func allowed(_ lo: Int, _ hi: Int) -> Bool { (lo..<hi).contains { (next...last).contains(keyProperties[$0]) } }
        switch (phase, b) {
        case (.open, UInt8(ascii: "}")), (.afterValue, UInt8(ascii: "}")):
            guard !properties[next...].contains(where: \.required) else { return .rejected }
            depth -= 1
            finishValue()
        case (.open, UInt8(ascii: "\"")), (.comma, UInt8(ascii: "\"")):
            guard next < properties.count, allowed(0, keys.count) else { return .rejected }
            top = .object(node: node, next: next, phase: .key, lo: 0, hi: keys.count, read: 0)
        case (.key, _):
            guard let (newLo, newHi) = Self.narrow(keys, lo, hi, read, b), allowed(newLo, newHi) else { return .rejected }
            if let done = (newLo..<newHi).first(where: { keys[$0].count == read + 1 }) {
                // The key's closing quote: the properties before it are skipped.
                top = .object(node: node, next: keyProperties[done], phase: .colon, lo: 0, hi: 0, read: 0)
            } else {
                top = .object(node: node, next: next, phase: .key, lo: newLo, hi: newHi, read: read + 1)
            }
        case (.colon, UInt8(ascii: ":")):
            top = .object(node: node, next: next + 1, phase: .value, lo: 0, hi: 0, read: 0)
            push(.value(properties[next].value))
        case (.afterValue, UInt8(ascii: ",")):
            guard next < properties.count else { return .rejected }
            top = .object(node: node, next: next, phase: .comma, lo: 0, hi: 0, read: 0)
        default:
            return .rejected
        }
        return .accepted
    }

    /// The first byte of a value of `node`.
    private mutating func begin(_ node: Int, _ b: UInt8, _ g: JSONGrammar) -> Step {
        switch g.nodes[node] {
        case .anyOf(let alternatives):
            var threads: [Thread] = []
            for alternative in alternatives where threads.count < JSONRecognizer.maxThreads {
                var t = self
                t.top = .value(alternative)
                switch t.begin(alternative, b, g) {
                case .rejected: break
                case .accepted: threads.append(t)
                case .forked(let more): threads += more
                }
            }
            if threads.count == 1 { self = threads[0]; return .accepted }
            return threads.isEmpty ? .rejected : .forked(threads)
        case .any:
            switch b {
            case UInt8(ascii: "{"): return open(.dictionary(node: JSONGrammar.anyDictionary, phase: .open))
            case UInt8(ascii: "["): return open(.array(node: JSONGrammar.anyArray, count: 0, phase: .open))
            case UInt8(ascii: "\""): top = .string(node: JSONGrammar.anyString, StringLexer())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return beginNumber(b, integer: false)
            default: return beginLiteral(JSONGrammar.anyLiteral, b, g)
            }
            return .accepted
        case .dictionary:
            return b == UInt8(ascii: "{") ? open(.dictionary(node: node, phase: .open)) : .rejected
        case .object:
            return b == UInt8(ascii: "{") ? open(.object(node: node, next: 0, phase: .open, lo: 0, hi: 0, read: 0)) : .rejected
        case .array:
            return b == UInt8(ascii: "[") ? open(.array(node: node, count: 0, phase: .open)) : .rejected
        case .string:
            guard b == UInt8(ascii: "\"") else { return .rejected }
            top = .string(node: node, StringLexer())
            return .accepted
        case .number: return beginNumber(b, integer: false)
        case .integer: return beginNumber(b, integer: true)
        case .literals: return beginLiteral(node, b, g)
        }
    }

    private mutating func beginNumber(_ b: UInt8, integer: Bool) -> Step {
        guard let state = Self.numberByte(nil, b, integer: integer) else { return .rejected }
        top = .number(integer: integer, state: state, length: 1)
        return .accepted
    }

    private mutating func beginLiteral(_ node: Int, _ b: UInt8, _ g: JSONGrammar) -> Step {
        let texts = g.sortedTexts[node]
        guard let (lo, hi) = Self.narrow(texts, 0, texts.count, 0, b) else { return .rejected }
        top = .literal(node: node, lo: lo, hi: hi, read: 1)
        return .accepted
    }

    private mutating func open(_ frame: Frame) -> Step {
        guard depth < JSONRecognizer.maxDepth else { return .rejected }
        depth += 1
        top = frame
        return .accepted
    }

    private mutating func push(_ frame: Frame) {
        below.append(top)
        top = frame
    }

    /// The top value is complete: back to the frame that holds it.
    private mutating func finishValue() {
        top = below.removeLast()
        switch top {
        case .object(let node, let next, .value, _, _, _): top = .object(node: node, next: next, phase: .afterValue, lo: 0, hi: 0, read: 0)
        case .dictionary(let node, .key): top = .dictionary(node: node, phase: .colon)
        case .dictionary(let node, .value): top = .dictionary(node: node, phase: .afterValue)
        case .array(let node, let count, .value): top = .array(node: node, count: count + 1, phase: .afterValue)
        default: break  // .end: the document is complete
        }
    }

    /// The sub-range of `texts[lo..<hi]` (sorted, sharing their first `read` bytes) whose next byte is b.
    private static func narrow(_ texts: [[UInt8]], _ lo: Int, _ hi: Int, _ read: Int, _ b: UInt8) -> (Int, Int)? {
        var first: Int?, end = lo
        for i in lo..<hi where texts[i].count > read {
            if texts[i][read] == b {
                if first == nil { first = i }
                end = i + 1
            } else if first != nil {
                break
            }
        }
        return first.map { ($0, end) }
    }

    private static func isDigit(_ b: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) }

    /// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, states: nil before the number, 0 after '-',
    /// 1 after a leading 0, 2 in the integer digits, 3 after '.', 4 in the fraction, 5 after 'e', 6 after
    /// its sign, 7 in the exponent. A number may end in states 1, 2, 4 and 7; an integer has no '.' or 'e'.
    private static func numberByte(_ state: UInt8?, _ b: UInt8, integer: Bool) -> UInt8? {
        let digit = isDigit(b)
        switch (state, b) {
        case (nil, UInt8(ascii: "-")): return 0
        case (nil, UInt8(ascii: "0")), (0, UInt8(ascii: "0")): return 1
        case (nil, _) where digit, (0, _) where digit, (2, _) where digit: return 2
        case (1, UInt8(ascii: ".")) where !integer, (2, UInt8(ascii: ".")) where !integer: return 3
        case (1, UInt8(ascii: "e")) where !integer, (1, UInt8(ascii: "E")) where !integer, (2, UInt8(ascii: "e")) where !integer,
             (2, UInt8(ascii: "E")) where !integer, (4, UInt8(ascii: "e")), (4, UInt8(ascii: "E")): return 5
        case (3, _) where digit, (4, _) where digit: return 4
        case (5, UInt8(ascii: "+")), (5, UInt8(ascii: "-")): return 6
        case (5, _) where digit, (6, _) where digit, (7, _) where digit: return 7
        default: return nil
        }
    }
}
