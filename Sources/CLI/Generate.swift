// `tally generate`: run the model on one prompt and stream the text to stdout (or print JSON).

import ArgumentParser
import Engine
import Foundation
import GGUF
import ModelRuntime
import Quantizer
import Sampling
import Tokenization

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt with a local model.",
        discussion: "Example: tally generate --prompt 'The capital of France is' --max-tokens 16")

    @Option(help: "GGUF model (default: the model from `tally pull`).") var model: String?
    @Option(help: "The prompt text (special tokens such as <|im_start|> are parsed).") var prompt: String?
    @Option(help: "Read the prompt from this file.") var promptFile: String?
    @Option(help: "Most tokens to generate.") var maxTokens = 128
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(help: "Seed of the sampler's random numbers.") var seed: UInt64?
    @Option(help: "Compute threads (default: the number of cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Keep generating past end-of-generation tokens.") var ignoreEOS = false
    @Option(help: "KV cache values: f16 (llama.cpp's default), f32 or q8_0.") var kvType: KVType = .default
    @Flag(help: "Print one JSON object instead of streaming text.") var json = false
    @Option(help: "Speculative decoding by prompt lookup: up to this many draft tokens per step (0: off); the output is the same.")
    var draftTokens = 0

    func run() throws {
        let text: String
        switch (prompt, promptFile) {
        case (let p?, nil): text = p
        case (nil, let f?): text = try String(contentsOfFile: f, encoding: .utf8)
        default: throw ValidationError("give exactly one of --prompt and --prompt-file")
        }
        let path = try Pull.modelPath(model)
        let llama = try LlamaModel(path: ServableModel.path(for: path, log: printError), threads: threads)
        let tokenizer = try Tokenizer(metadata: llama.file.metadata)
        let promptIDs = tokenizer.encode(text, parseSpecial: true)

        var params = GenerationParams()
        params.maxTokens = maxTokens
        params.sampling.temperature = temperature
        params.sampling.seed = seed
        params.stopTokenIDs = tokenizer.endOfGenerationIDs
        params.ignoreEOS = ignoreEOS
        params.kvType = kvType
        params.draftTokens = draftTokens
        try params.sampling.validate()

        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var output = ""
        let result = try Generator(model: llama).generate(prompt: promptIDs, params: params) { token in
            if !ignoreEOS && tokenizer.endOfGenerationIDs.contains(token) { return true }
            let piece = detokenizer.append(token)
            output += piece
            if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
            return true
        }
        let tail = detokenizer.flush()
        output += tail
        if json {
            let object: [String: Any] = [
                "prompt_ids": result.promptTokens.map(Int.init), "generated_ids": result.generatedTokens.map(Int.init),
                "text": output, "finish_reason": result.finishReason.rawValue, "seed": result.seed,
                "prefill_tokens_per_second": result.prefillTokensPerSecond, "decode_tokens_per_second": result.decodeTokensPerSecond,
                "draft_tokens": result.draftTokens, "accepted_draft_tokens": result.acceptedDraftTokens,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(tail)
            let drafts = result.draftTokens == 0 ? "" : "; \(result.acceptedDraftTokens) of \(result.draftTokens) draft tokens kept"
            printError(String(format: "[%d prompt tokens, %.1f tok/s prefill; %d generated, %.1f tok/s decode; %@%@]",
                              result.promptTokens.count, result.prefillTokensPerSecond, result.generatedTokens.count,
                              result.decodeTokensPerSecond, result.finishReason.rawValue, drafts))
        }
    }
}
