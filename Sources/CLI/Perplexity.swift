// `tally perplexity`: perplexity of a text file (Engine's Perplexity), and optionally every scored row's
// logits for bench/accuracy, which compares them with a float reference and with llama.cpp.

import ArgumentParser
import Engine
import Foundation
import GGUF
import ModelRuntime
import Quantizer
import Tokenization

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity", abstract: "Measure a model's perplexity on a text file.",
        discussion: """
            The text is read in windows of --context tokens overlapping by half; each window scores its second \
            half, so every scored token is predicted from at least context/2 tokens.

            Example: tally perplexity --file /usr/share/common-licenses/GPL-3 --context 512
            """)

    @Option(help: "GGUF model (default: the model from `tally pull`).") var model: String?
    @Option(help: "The text file.") var file: String
    @Option(help: "Tokens per window.") var context = 512
    @Option(help: "KV cache values: f16 (llama.cpp's default), f32 or q8_0.") var kvType: KVType = .default
    @Option(help: "Compute threads (default: the number of cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Write the tokens and every scored row's logits (float32) to this file, or - for stdout (format in bench/accuracy/README.md).")
    var logits: String?

    func validate() throws {
        guard context >= 4, context % 2 == 0 else { throw ValidationError("--context must be even and at least 4") }
    }

    func run() throws {
        let path = try Pull.modelPath(model)
        let llama = try LlamaModel(path: ServableModel.path(for: path, log: printError), threads: threads)
        guard context <= llama.config.contextLength else {
            throw ValidationError("--context \(context) is longer than the model's context (\(llama.config.contextLength))")
        }
        let tokenizer = try Tokenizer(metadata: llama.file.metadata)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let bos = tokenizer.addBOS ? tokenizer.bosTokenID.map { [$0] } ?? [] : []
        let tokens = bos + tokenizer.encode(text, parseSpecial: false)
        let windows = PerplexityWindows(context: context, tokenCount: tokens.count)
        guard windows.count > 0 else { throw ValidationError("the text has \(tokens.count) tokens; --context \(context) needs at least that many") }

        let out: FileHandle? = try logits.map { path in
            if path == "-" { return .standardOutput }
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("cannot write \(path)") }
            return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        }
        // Header: magic, then little-endian u32 version, context, stride, vocab, token count; the tokens (i32).
        var header = Data("tallylgt".utf8)
        for field in [1, context, windows.stride, llama.config.vocabSize, tokens.count] { header.append(littleEndian: UInt32(field)) }
        for t in tokens { header.append(littleEndian: UInt32(bitPattern: t)) }
        out?.write(header)

        let start = Date()
        let result = try Perplexity.run(model: llama, tokens: tokens, context: context, kvType: kvType) { w, _, rows in
            rows.withUnsafeBytes { out?.write(Data($0)) }
            printError("window \(w + 1)/\(windows.count)")
        }
        try out?.close()
        let summary = String(format: "perplexity %.4f over %d scored tokens (%d tokens, %d windows of %d, KV %@) in %.1f s",
                             result.perplexity, result.scoredTokens, tokens.count, windows.count, context, kvType.rawValue,
                             Date().timeIntervalSince(start))
        if logits == "-" { printError(summary) } else { print(summary) }
    }
}

private extension Data {
    mutating func append(littleEndian value: UInt32) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
