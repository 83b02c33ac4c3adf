// Constrained sampling for `response_format` `json_object` and `json_schema`: before each token is drawn,
// every token whose bytes would take the output off the grammar (JSONGrammar.swift) is masked out, so the
// text is always a prefix of an allowed document and the request ends (finish_reason "stop") when the
// document closes.
//
// The mask tries only the tokens whose first byte the recognizer accepts, and inside a string, where
// nearly every token is valid, it lets the tokens of plain string text (no quote, backslash, control byte
// or partial character) through untried when the string has room for them.

/// The vocabulary as the mask reads it, made once per model: each token's bytes (none for control tokens,
/// which JSON text never contains), the tokens by first byte, and which tokens are plain string text.
package final class ConstraintVocabulary: Sendable {
    let bytes: [[UInt8]]
    /// Tokens whose first byte is b, for each b.
    let byFirstByte: [[Int32]]
    /// Token i is plain string text: printable bytes other than '"' and '\', whole UTF-8 characters.
    let plain: [Bool]
    /// Characters in token i, if plain.
    let plainLength: [Int32]
    /// The tokens that are not plain (tried one by one inside strings).
    let notPlain: [Int32]

    /// `bytes[i]` is token i's text; empty for tokens the output may never contain.
    package init(tokenBytes bytes: [[UInt8]]) {
        self.bytes = bytes
        var buckets = [[Int32]](repeating: [], count: 256)
        var plain = [Bool](repeating: false, count: bytes.count)
        var plainLength = [Int32](repeating: 0, count: bytes.count)
        var notPlain: [Int32] = []
        for (i, token) in bytes.enumerated() where !token.isEmpty {
            buckets[Int(token[0])].append(Int32(i))
            var lexer = StringLexer()
            plain[i] = token.allSatisfy { $0 != UInt8(ascii: "\\") && lexer.read($0, maxLength: nil) == .accepted } && lexer.pending == 0
            if plain[i] { plainLength[i] = Int32(lexer.length) } else { notPlain.append(Int32(i)) }
        }
        byFirstByte = buckets
        self.plain = plain
        self.plainLength = plainLength
        self.notPlain = notPlain
    }

    package var count: Int { bytes.count }
}

/// One request's JSON constraint: its recognizer, advanced by every token the request keeps. Used by one
/// request's sampling only (on whichever compute thread draws its token).
package final class JSONConstraint: @unchecked Sendable {
    private let vocabulary: ConstraintVocabulary
    private var state: JSONRecognizer
    private var allowed: [Bool]
    /// With a trigger (a tool call's opening, when the model may call a tool or answer in text), tokens are
    /// free until the output contains it, and constrained from there; `triggerStartsDocument` when the
    /// trigger is the document's own beginning (Llama 3.1's `{"name"`).
    private let trigger: [UInt8]
    private let triggerStartsDocument: Bool
    /// The output's last bytes while waiting for the trigger (nil once it came).
    private var waiting: [UInt8]?
    /// A token that completed the trigger went on past what the grammar allows: constraining has stopped.
    private var broken = false

    /// JSON mode by default: one object of any content.
    package init(vocabulary: ConstraintVocabulary, grammar: JSONGrammar = .anyObject, trigger: String = "", triggerStartsDocument: Bool = false) {
        self.vocabulary = vocabulary
        state = JSONRecognizer(grammar: grammar)
        allowed = [Bool](repeating: false, count: vocabulary.count)
        self.trigger = Array(trigger.utf8)
        self.triggerStartsDocument = triggerStartsDocument
        waiting = trigger.isEmpty ? nil : []
    }

    /// The document has closed: the request is done.
    package var isComplete: Bool { waiting == nil && !broken && state.isComplete }

    /// The trigger came (always true without one).
    package var isTriggered: Bool { waiting == nil }

    /// Sets every token that cannot continue an allowed document to -infinity in `logits` (the vocabulary's
    /// size). Returns false, leaving the logits alone, if no token could: only a vocabulary without JSON's
    /// punctuation could do that.
    @discardableResult
    package func mask(_ logits: UnsafeMutableBufferPointer<Float>) -> Bool {
        guard waiting == nil && !broken else { return true }
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
        if let room = state.plainStringRoom {
            for i in 0..<n where v.plain[i] && Int(v.plainLength[i]) <= room { allowed[i] = true; any = true }
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
        if var seen = waiting {
            guard token >= 0, Int(token) < vocabulary.count else { return true }
            seen += vocabulary.bytes[Int(token)]
            guard let found = seen.firstRange(of: trigger) else {
                waiting = Array(seen.suffix(trigger.count))
                return true
            }
            waiting = nil
            for b in seen[(triggerStartsDocument ? found.lowerBound : found.upperBound)...] where !broken {
                broken = !state.accept(b)
            }
            return !broken
        }
        if broken { return true }
        guard token >= 0, Int(token) < vocabulary.count, !vocabulary.bytes[Int(token)].isEmpty else { return false }
        var s = state
        for b in vocabulary.bytes[Int(token)] {
            if !s.accept(b) { return false }
        }
        state = s
        return true
    }
}
