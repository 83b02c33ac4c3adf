// 388 strings (scripts, code, JSON, URLs, numbers, whitespace runs, CRLF, ZWJ emoji, upper-case
// contractions, control-token text, "") against ids from HF tokenizers built from the same GGUF
// (Fixtures/make_goldens.py), and decode(encode(s)) == s on all of them.

import GGUF
import Testing
@testable import Tokenization

@Suite struct GoldenTests {
    @Test func goldenSetIsLargeAndDiverse() throws {
        let cases = try TokenizerFixtures.goldenCases()
        #expect(cases.count >= 300)
        #expect(cases.contains { $0.text.isEmpty })
        #expect(cases.contains { $0.text.contains("\r\n") })
        #expect(cases.contains { $0.text.contains("\u{200D}") })
        #expect(cases.contains { $0.text.contains("<|im_start|>") })
    }

    @Test func smollmIdsMatchHFTokenizers() throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        var failures = 0
        for golden in try TokenizerFixtures.goldenCases() {
            let ids = tokenizer.encode(golden.text)
            if ids != golden.ids { failures += 1 }
            #expect(ids == golden.ids, "\(golden.text.debugDescription); \(TokenizerFixtures.regenerate)")
            if let plain = golden.ids_no_special {
                #expect(tokenizer.encode(golden.text, parseSpecial: false) == plain, "no special: \(golden.text.debugDescription)")
            }
        }
        #expect(failures == 0)
    }

    @Test func roundTripOnEveryGolden() throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        for golden in try TokenizerFixtures.goldenCases() {
            #expect(tokenizer.decode(tokenizer.encode(golden.text)) == golden.text, "\(golden.text.debugDescription)")
            #expect(tokenizer.decode(tokenizer.encode(golden.text, parseSpecial: false)) == golden.text)
        }
    }

    @Test(arguments: [PreTokenizer.gpt2, .llama3, .qwen2])
    func preTokenizerSplitsMatchHFRegex(pre: PreTokenizer) throws {
        for golden in try TokenizerFixtures.goldenCases() {
            let words = PreTokenizerProbe.split(golden.text, pre)
            #expect(words == golden.pre[pre.rawValue], "\(pre): \(golden.text.debugDescription)")
        }
    }

    @Test(arguments: [PreTokenizer.gpt2, .llama3, .qwen2])
    func otherPreTokenizersGiveHFIdsOnTheSameVocabulary(pre: PreTokenizer) throws {
        let tokenizer = try PreTokenizerProbe.tokenizer(with: pre)
        #expect(tokenizer.kind == .bytePairEncoding(pre))
        for golden in try TokenizerFixtures.goldenCases() {
            #expect(tokenizer.encode(golden.text) == golden.pre_ids[pre.rawValue], "\(pre): \(golden.text.debugDescription)")
        }
    }
}

/// Runs one pre-tokenizer on a whole string (no special-token cutting), as the goldens' "pre" splits do.
enum PreTokenizerProbe {
    static func split(_ text: String, _ pre: PreTokenizer) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        let classes = scalars.map(UnicodeClasses.classify)
        var words: [Range<Int>] = []
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in pre.split(s, c, into: &words) }
        }
        let all = Array(text.unicodeScalars)
        return words.map { range in
            var out = String.UnicodeScalarView()
            out.append(contentsOf: all[range])
            return String(out)
        }
    }

    /// The fixture's vocabulary with another `tokenizer.ggml.pre`.
    static func tokenizer(with pre: PreTokenizer) throws -> Tokenizer {
        var metadata = try fixtureMetadata.get()
        metadata.set(GGUFKey.tokenizerPre, .string(pre.rawValue))
        return try Tokenizer(metadata: metadata)
    }

    static let fixtureMetadata: Result<GGUFMetadata, any Error> = Result {
        try GGUFFile(path: TokenizerFixtures.fixturesDirectory.appendingPathComponent("smollm2-vocab.gguf").path).metadata
    }
}
