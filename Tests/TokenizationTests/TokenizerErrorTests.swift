// Metadata tally cannot tokenize with is refused by name with what to do next; special-token cutting
// follows llama.cpp's longest-first order; long words encode and round-trip (their exact ids are in the goldens).

import GGUF
import Testing
@testable import Tokenization

@Suite struct TokenizerErrorTests {
    func fixtureMetadata() throws -> GGUFMetadata { try PreTokenizerProbe.fixtureMetadata.get() }

    @Test func unknownPreTokenizerIsRefusedByName() throws {
        var metadata = try fixtureMetadata()
        metadata.set(GGUFKey.tokenizerPre, .string("deepseek-coder"))
        #expect {
            try Tokenizer(metadata: metadata)
        } throws: { error in
            guard case TokenizationError.unknownPreTokenizer("deepseek-coder", let supported) = error else { return false }
            return supported.contains("smollm") && (error as? TokenizationError)?.description.contains("PreTokenizer.swift") == true
        }
    }

    @Test func unsupportedModelAndMissingKeys() throws {
        var metadata = try fixtureMetadata()
        metadata.set(GGUFKey.tokenizerModel, .string("bert"))
        #expect(throws: TokenizationError.unsupportedModel("bert")) { try Tokenizer(metadata: metadata) }

        metadata = try fixtureMetadata()
        metadata.remove(GGUFKey.merges)
        #expect(throws: TokenizationError.missingKey(GGUFKey.merges)) { try Tokenizer(metadata: metadata) }

        #expect(throws: TokenizationError.missingKey(GGUFKey.tokenizerModel)) { try Tokenizer(metadata: GGUFMetadata()) }

        metadata = try fixtureMetadata()
        metadata.set(GGUFKey.bosTokenID, .uint32(1_000_000))
        #expect(throws: TokenizationError.self) { try Tokenizer(metadata: metadata) }

        metadata = try fixtureMetadata()
        metadata.set(GGUFKey.tokens, .string("not a list"))
        #expect {
            try Tokenizer(metadata: metadata)
        } throws: { error in
            guard case TokenizationError.badMetadata(key: GGUFKey.tokens, _) = error else { return false }
            return true
        }
        #expect(throws: TokenizationError.self) { try Tokenizer(modelPath: "/nonexistent/model.gguf") }
    }

    @Test func longerSpecialTokensWinEvenWhenAShorterOneStartsEarlier() throws {
        var metadata = try fixtureMetadata()
        var tokens = try metadata.stringArray(GGUFKey.tokens)
        var types = try metadata.int32Array(GGUFKey.tokenTypes)
        // Make "ab" and "bcd" (normal SmolLM2 tokens if present, else appended) control tokens.
        for text in ["ab", "bcd"] {
            if let i = tokens.firstIndex(of: text) { types[i] = 3 } else { tokens.append(text); types.append(3) }
        }
        metadata.set(GGUFKey.tokens, .array(elementType: .string, tokens.map { .string($0) }))
        metadata.set(GGUFKey.tokenTypes, .array(elementType: .int32, types.map { .int32($0) }))
        let tokenizer = try Tokenizer(metadata: metadata)
        let ab = try #require(tokenizer.tokenID(forText: "ab")), bcd = try #require(tokenizer.tokenID(forText: "bcd"))
        let ids = tokenizer.encode("abcd")
        // llama.cpp: "bcd" (longer) is cut first, leaving "a".
        #expect(ids == tokenizer.encode("a", parseSpecial: false) + [bcd])
        #expect(!ids.contains(ab))
        #expect(tokenizer.encode("ab ab") == [ab] + tokenizer.encode(" ", parseSpecial: false) + [ab])
    }

    @Test func veryLongWordsEncodeAndRoundTrip() throws {
        let tokenizer = try TokenizerFixtures.fixtureTokenizer()
        for text in [String(repeating: "a", count: 20_000), String(repeating: "ab", count: 10_000),
                     String(repeating: "é", count: 5_000), String(repeating: "😀", count: 2_000)] {
            let ids = tokenizer.encode(text)
            #expect(tokenizer.decode(ids) == text)
            #expect(!ids.isEmpty && ids.count <= text.utf8.count)
        }
    }
}
