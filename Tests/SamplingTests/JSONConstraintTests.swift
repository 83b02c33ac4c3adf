// JSON mode's recognizer and token mask. The recognizer accepts every prefix of a valid object and nothing
// else (checked against Foundation's parser on documents and on their every cut), and the mask allows
// exactly the tokens a byte-by-byte check allows, on a vocabulary with tokens that cross JSON's boundaries.

import Foundation
import Sampling
import Testing

@Suite struct JSONConstraintTests {
    static let valid = [
        #"{}"#, #"{"a":1}"#, #"{ "a" : [1, 2.5, -3e+2, 0, -0.0e-1, 1E9], "b": {"c": null, "d": true, "e": false} }"#,
        #"{"s":"esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00","k":[]}"#, "{\"π\": \"日本語 😀\"}",
        #"{"nested":[[[{"x":[{}]}]]],"n":123456789012345678901234567890}"#, "{\n  \"a\": [\n    1\n  ]\n}",
    ]
    static let invalid = [
        #"[1]"#, #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"{'a':1}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#,
        #"{"a":tru}"#, #"{"a":"\x"}"#, #"{"a":"\u12G4"}"#, "{\"a\":\"tab\there\"}", #"{"a":1}}"#, #"{"a":[1}"#,
        #"{"a":--1}"#, #"{"a":1e}"#, #"{"a":1}x"#, #"{a:1}"#,
    ]

    /// Feeds bytes; returns how many were accepted and whether the object was complete after them.
    func run(_ bytes: [UInt8]) -> (accepted: Int, complete: Bool) {
        var r = JSONRecognizer()
        for (i, b) in bytes.enumerated() where !r.accept(b) { return (i, r.isComplete) }
        return (bytes.count, r.isComplete)
    }

    @Test func validObjectsAreAcceptedAndCompleteOnlyAtTheEnd() throws {
        for text in Self.valid {
            let bytes = Array(text.utf8)
            #expect(try JSONSerialization.jsonObject(with: Data(bytes)) is [String: Any], "\(text) is a JSON object")
            let (accepted, complete) = run(bytes)
            #expect(accepted == bytes.count && complete, "\(text): accepted \(accepted) of \(bytes.count)")
            for cut in 0..<bytes.count {
                #expect(run(Array(bytes[..<cut])) == (cut, false) as (Int, Bool), "\(text) cut at \(cut) is an incomplete prefix")
            }
        }
    }

    @Test func invalidTextIsRefusedOrNeverCompletes() {
        for text in Self.invalid {
            let bytes = Array(text.utf8)
            // RFC 8259 is the judge here: Foundation's reader is lenient (it takes a trailing comma).
            if !text.hasSuffix(",}") {
                #expect((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] == nil, "Foundation reads \(text) as a JSON object")
            }
            let (accepted, complete) = run(bytes)
            #expect(accepted < bytes.count || !complete, "\(text) must not be accepted whole")
        }
    }

    @Test func whitespaceRunsAndNestingAreBounded() {
        #expect(run(Array(("{" + String(repeating: " ", count: JSONRecognizer.maxWhitespace)).utf8)).accepted == 1 + JSONRecognizer.maxWhitespace)
        #expect(run(Array(("{" + String(repeating: " ", count: JSONRecognizer.maxWhitespace + 1)).utf8)).accepted == 1 + JSONRecognizer.maxWhitespace)
        let deep = #"{"a":"# + String(repeating: "[", count: 40)
        #expect(run(Array(deep.utf8)).accepted == 5 + JSONRecognizer.maxDepth - 1)
    }

    /// A vocabulary of single bytes, JSON fragments that cross boundaries ("\":", "},{", "1}"), plain words,
    /// split UTF-8 and a control token; after each prefix of a document, the mask allows exactly the tokens
    /// a byte-by-byte check accepts.
    @Test func theMaskAllowsExactlyTheTokensThatKeepTheOutputValid() {
        var tokens: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        tokens += [#"":"#, #"},{"#, "1}", " the", "hello world", #"\n"#, #"\"#, "true", "{\"", "\"}", "é", "😀"].map { Array($0.utf8) }
        tokens += [[0xE6, 0x97], [0xA5], [0xF0], []]  // split characters; the last: a control token with no text
        let vocabulary = ConstraintVocabulary(tokenBytes: tokens)
        let document = Array("{\"key\": [1, \"a é 😀\\n\", {\"x\": true}], \"b\": -2.5e3}".utf8)
        for cut in 0...document.count {
            let constraint = JSONConstraint(vocabulary: vocabulary)
            var state = JSONRecognizer()
            for b in document[..<cut] {
                #expect(constraint.accept(Int32(b)))  // token b is the single byte b
                _ = state.accept(b)
            }
            var logits = [Float](repeating: 0, count: tokens.count)
            let any = logits.withUnsafeMutableBufferPointer { constraint.mask($0) }
            let want = tokens.map { bytes -> Bool in
                guard !bytes.isEmpty else { return false }
                var s = state
                return bytes.allSatisfy { s.accept($0) }
            }
            #expect(any == want.contains(true))
            if any { #expect(logits.map { $0 == 0 } == want, "after \(cut) bytes") }
        }
    }

    /// With a trigger (auto tool choice), tokens are free until the output contains it, constrained after;
    /// the trigger may be split across tokens, and a token that completes it may carry the JSON's start.
    @Test func aTriggerStartsTheConstraint() {
        var tokens: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        tokens += ["<tool", "_call>", ">\n{", #"{"name""#].map { Array($0.utf8) }
        let vocabulary = ConstraintVocabulary(tokenBytes: tokens)
        func id(_ text: String) -> Int32 { Int32(tokens.firstIndex(of: Array(text.utf8))!) }
        func free(_ c: JSONConstraint) -> Bool {
            var logits = [Float](repeating: 0, count: tokens.count)
            _ = logits.withUnsafeMutableBufferPointer { c.mask($0) }
            return !logits.contains(-.infinity)
        }
        let hermes = JSONConstraint(vocabulary: vocabulary, trigger: "<tool_call>")
        for t in "Sure: ".utf8 { #expect(hermes.accept(Int32(t)) && free(hermes)) }
        #expect(hermes.accept(id("<tool")) && free(hermes) && !hermes.isTriggered)
        for t in "_call".utf8 { #expect(hermes.accept(Int32(t))) }
        #expect(hermes.accept(id(">\n{")) && hermes.isTriggered && !free(hermes))
        for t in #""a":1}"#.utf8 { #expect(hermes.accept(Int32(t))) }
        #expect(hermes.isComplete)

        // Llama 3.1: the trigger is the document's own start.
        let llama = JSONConstraint(vocabulary: vocabulary, trigger: #"{"name""#, triggerStartsDocument: true)
        #expect(llama.accept(id(#"{"name""#)) && llama.isTriggered && !llama.isComplete)
        #expect(!llama.accept(Int32(UInt8(ascii: "}"))))  // a colon must follow the key
        // A token completing the trigger with bytes the grammar refuses: constraining stops, nothing completes.
        let broken = JSONConstraint(vocabulary: vocabulary, trigger: "_call")
        #expect(!broken.accept(id("_call>")))
        #expect(broken.accept(Int32(UInt8(ascii: "}"))) && free(broken) && !broken.isComplete)
    }
}
