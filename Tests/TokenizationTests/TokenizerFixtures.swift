// Where the tokenization tests get their tokenizers: the committed vocab-only SmolLM2 fixture (always
// there), and the real model when present (models/ in the package, or TALLY_MODEL), else a skip.

import Foundation
import GGUF
import Testing
@testable import Tokenization

enum TokenizerFixtures {
    static let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let regenerate = "regenerate with: python3 Tests/TokenizationTests/Fixtures/make_vocab_fixture.py && python3 Tests/TokenizationTests/Fixtures/make_goldens.py"

    /// Loaded once: building a 49k-token tokenizer in a debug build takes a moment.
    static let fixture: Result<Tokenizer, any Error> = Result {
        try Tokenizer(modelPath: fixturesDirectory.appendingPathComponent("smollm2-vocab.gguf").path)
    }

    static func fixtureTokenizer() throws -> Tokenizer { try fixture.get() }

    /// The real SmolLM2 GGUF: $TALLY_MODEL, else models/SmolLM2-135M-Instruct-Q8_0.gguf.
    static let realModelPath: String? = {
        if let path = ProcessInfo.processInfo.environment["TALLY_MODEL"], FileManager.default.fileExists(atPath: path) {
            return path
        }
        let path = packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct-Q8_0.gguf").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }()

    static let realModelMissing = "real SmolLM2 model absent: put it at models/SmolLM2-135M-Instruct-Q8_0.gguf (tally pull) or set TALLY_MODEL=<any SmolLM2 GGUF>"

    static let real: Result<Tokenizer, any Error>? = realModelPath.map { path in
        Result { try Tokenizer(modelPath: path) }
    }

    struct Golden: Decodable {
        let text: String
        let ids: [TokenID]
        let ids_no_special: [TokenID]?
        let pre: [String: [String]]
        let pre_ids: [String: [TokenID]]
    }

    struct GoldenFile: Decodable {
        let format_version: Int
        let cases: [Golden]
    }

    static let goldens: Result<GoldenFile, any Error> = Result {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent("goldens.json"))
        return try JSONDecoder().decode(GoldenFile.self, from: data)
    }

    static func goldenCases() throws -> [Golden] {
        let file = try goldens.get()
        try #require(file.format_version == 1, "goldens.json format \(file.format_version), tests expect 1; \(regenerate)")
        return file.cases
    }
}

/// The nine llama.cpp llama-tokenize references of shared/reference/smollm2-135m.md (no BOS, specials parsed).
enum LlamaCppReference {
    static let cases: [(String, [TokenID])] = [
        ("Hello world! 123 naïve café\n\tcode()", [19556, 905, 17, 216, 33, 34, 35, 15486, 46494, 37366, 198, 197, 4635, 1000]),
        ("The capital of France is", [504, 3575, 282, 4649, 314]),
        ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
         [1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]),
        ("   leading spaces,   multiple   spaces and trailing  ", [256, 2899, 5600, 28, 256, 2701, 256, 5600, 284, 35079, 256]),
        ("3.14159 1000000 2024-11-22 $1,234.56 0x1F",
         [35, 30, 33, 36, 33, 37, 41, 216, 33, 32, 32, 32, 32, 32, 32, 216, 34, 32, 34, 36, 29, 33, 33, 29, 34, 34, 1885,
          33, 28, 34, 35, 36, 30, 37, 38, 216, 32, 104, 33, 54]),
        ("日本語のテキスト 😀 Ελληνικά Привет",
         [23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 40303, 218, 5664, 239,
          17162, 17162, 25723, 11517, 12001, 21118, 26112, 5470, 249, 46879, 16464, 32547]),
        ("def f(x):\n    return x**2  # comment\n", [1604, 275, 24, 104, 727, 472, 1003, 1792, 828, 34, 216, 907, 5189, 198]),
        ("I'm you're they'll we've don't HELLO", [57, 5248, 346, 2316, 502, 3060, 392, 3543, 1326, 982, 407, 4210, 6426]),
        ("\n\n\n", [16506]),
    ]

    static let piecesOfFirst = ["Hello", " world", "!", " ", "1", "2", "3", " na", "ïve", " café", "\n", "\t", "code", "()"]

    static let chatPrompt = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
}
