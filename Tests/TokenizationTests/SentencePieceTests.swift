// SentencePiece BPE (`tokenizer.ggml.model = llama`) on a small synthetic vocabulary: merges by score
// with leftmost ties, byte fallback to <0xXX>, the "▁" space prefix, special tokens, and decoding.

import GGUF
import Testing
@testable import Tokenization

enum SyntheticSentencePiece {
    /// ids 0-2 <unk> <s> </s>, 3-258 <0x00>...<0xFF>, then scored pieces.
    static let pieces: [(String, Float)] = [
        ("▁", -20), ("h", -21), ("e", -22), ("l", -23), ("o", -24), ("w", -25), ("r", -26), ("d", -27), ("a", -28),
        ("b", -29), ("c", -30), ("▁hello", -1), ("▁world", -1.5), ("hello", -2), ("llo", -3), ("ll", -4), ("he", -5),
        ("▁w", -6), ("or", -7), ("ld", -8), ("▁wor", -9), ("▁h", -10), ("ab", -12), ("bc", -12),
    ]

    static func metadata(addSpacePrefix: Bool = true) -> GGUFMetadata {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Int32] = [2, 3, 3]
        var scores: [Float] = [0, 0, 0]
        for byte in 0..<256 {
            tokens.append("<0x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2) + ">")
            types.append(6)
            scores.append(0)
        }
        for (text, score) in pieces {
            tokens.append(text)
            types.append(1)
            scores.append(score)
        }
        var metadata = GGUFMetadata()
        metadata.set(GGUFKey.tokenizerModel, .string("llama"))
        metadata.set(GGUFKey.tokens, .array(elementType: .string, tokens.map { .string($0) }))
        metadata.set(GGUFKey.tokenTypes, .array(elementType: .int32, types.map { .int32($0) }))
        metadata.set(GGUFKey.scores, .array(elementType: .float32, scores.map { .float32($0) }))
        metadata.set(GGUFKey.bosTokenID, .uint32(1))
        metadata.set(GGUFKey.eosTokenID, .uint32(2))
        metadata.set(GGUFKey.unknownTokenID, .uint32(0))
        metadata.set(GGUFKey.addSpacePrefix, .bool(addSpacePrefix))
        return metadata
    }

    static func id(_ tokenizer: Tokenizer, _ text: String) -> TokenID { tokenizer.tokenID(forText: text)! }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite struct SentencePieceTests {
    let tokenizer: Tokenizer

    init() throws { tokenizer = try Tokenizer(metadata: SyntheticSentencePiece.metadata()) }

    func ids(_ texts: String...) -> [TokenID] { texts.map { SyntheticSentencePiece.id(tokenizer, $0) } }

    @Test func metadataDefaults() {
        #expect(tokenizer.kind == .sentencePiece)
        #expect(tokenizer.addBOS)
        #expect(tokenizer.addSpacePrefix)
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.endOfGenerationIDs == [2])
    }

    /// ll(-4) -> llo(-3) -> he(-5) -> hello(-2) -> ▁hello(-1), then ▁w, or, ld, ▁wor, ▁world.
    @Test func highestScoringPairMergesFirst() {
        #expect(tokenizer.encode("hello world") == ids("▁hello", "▁world"))
        #expect(tokenizer.decode(tokenizer.encode("hello world")) == "hello world")
    }

    @Test func missingCharactersFallBackToBytes() {
        // "i" and "€" are not pieces: <0x69>, then € as E2 82 AC.
        let expected = ids("▁h", "<0x69>", "<0xE2>", "<0x82>", "<0xAC>")
        #expect(tokenizer.encode("hi€") == expected)
        #expect(tokenizer.decode(expected) == "hi€")
    }

    @Test func equalScoresMergeLeftmostFirst() throws {
        let plain = try Tokenizer(metadata: SyntheticSentencePiece.metadata(addSpacePrefix: false))
        #expect(plain.encode("abc") == [SyntheticSentencePiece.id(plain, "ab"), SyntheticSentencePiece.id(plain, "c")])
        #expect(plain.decode(plain.encode("abc")) == "abc")
    }

    @Test func specialTokensSplitTheTextAndRestartTheSpacePrefix() {
        let got = tokenizer.encode("hello</s>world")
        #expect(got == ids("▁hello") + [2] + ids("▁world"))
        #expect(tokenizer.encode("hello</s>world", parseSpecial: false).contains(2) == false)
        #expect(tokenizer.decode(got, renderSpecial: false) == "hello world")
    }

    @Test func roundTripOnVariedText() {
        for text in ["hello", "a b  c", "héllo wörld ✓", "日本", "😀 hello", "  lead", "tab\there\nnew line"] {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text, "\(text.debugDescription)")
        }
    }
}
