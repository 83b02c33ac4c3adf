// A benchmark workload, read from a JSON file under bench/workloads/: what prompts to send, how many at
// once, and the bounds every run keeps. Prompts are built here, once, before any request is sent.

import Foundation
import GGUF
import Sampling
import Tokenization

package struct Workload: Sendable, Equatable {
    /// Which OpenAI route an HTTP run uses: raw prompts (`/v1/completions`, token counts stay exact) or
    /// chat messages (`/v1/chat/completions`, the server adds its chat template).
    package enum API: String, Sendable, Codable { case completions, chat }

    package var name: String
    package var description: String
    /// Prompt lengths in tokens, used in turn (request i gets `syntheticTokens[i % count]`).
    package var syntheticTokens: [Int]
    /// A text file of prompts, one per line, used in turn; relative to the workload file. Replaces synthetic prompts.
    package var promptFile: String?
    /// Fraction of each synthetic prompt that is one prefix shared by every request (exercises prefix caches).
    package var sharedPrefixShare: Double
    /// Closed loop: this many clients each send their next request when the last one finished. One run per level.
    package var concurrency: [Int]
    /// Open loop instead: requests arrive as a Poisson process of this many per second.
    package var arrivalRate: Double?
    package var maxTokens: Int
    /// Ask for exactly `maxTokens` (servers that support `ignore_eos`: tally, llama-server, vLLM).
    package var ignoreEOS: Bool
    /// Requests per run and the run's time bound; both are required and capped by `RunGuard`.
    package var requests: Int
    package var timeLimitSeconds: Double
    package var api: API
    package var seed: UInt64

    package init(name: String, description: String = "", syntheticTokens: [Int] = [64], promptFile: String? = nil,
                 sharedPrefixShare: Double = 0, concurrency: [Int] = [1], arrivalRate: Double? = nil, maxTokens: Int = 32,
                 ignoreEOS: Bool = true, requests: Int = 16, timeLimitSeconds: Double = 60, api: API = .completions,
                 seed: UInt64 = 1) {
        self.name = name
        self.description = description
        self.syntheticTokens = syntheticTokens
        self.promptFile = promptFile
        self.sharedPrefixShare = sharedPrefixShare
        self.concurrency = concurrency
        self.arrivalRate = arrivalRate
        self.maxTokens = maxTokens
        self.ignoreEOS = ignoreEOS
        self.requests = requests
        self.timeLimitSeconds = timeLimitSeconds
        self.api = api
        self.seed = seed
    }
}

extension Workload: Codable {
    enum CodingKeys: String, CodingKey {
        case name, description, api, seed, requests, concurrency
        case syntheticTokens = "synthetic_tokens", promptFile = "prompt_file", sharedPrefixShare = "shared_prefix_share"
        case arrivalRate = "arrival_rate", maxTokens = "max_tokens", ignoreEOS = "ignore_eos"
        case timeLimitSeconds = "time_limit_seconds"
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = Workload(name: "")
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        syntheticTokens = try c.decodeIfPresent([Int].self, forKey: .syntheticTokens) ?? defaults.syntheticTokens
        promptFile = try c.decodeIfPresent(String.self, forKey: .promptFile)
        sharedPrefixShare = try c.decodeIfPresent(Double.self, forKey: .sharedPrefixShare) ?? 0
        concurrency = try c.decodeIfPresent([Int].self, forKey: .concurrency) ?? defaults.concurrency
        arrivalRate = try c.decodeIfPresent(Double.self, forKey: .arrivalRate)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? defaults.maxTokens
        ignoreEOS = try c.decodeIfPresent(Bool.self, forKey: .ignoreEOS) ?? defaults.ignoreEOS
        // No default for the bounds: a workload file states how long it may run.
        requests = try c.decode(Int.self, forKey: .requests)
        timeLimitSeconds = try c.decode(Double.self, forKey: .timeLimitSeconds)
        api = try c.decodeIfPresent(API.self, forKey: .api) ?? .completions
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 1
    }

    package static func load(path: String) throws -> Workload {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BenchError.badWorkload(path: path, reason: "cannot read the file")
        }
        var workload: Workload
        do { workload = try JSONDecoder().decode(Workload.self, from: data) } catch {
            throw BenchError.badWorkload(path: path, reason: "\(error)")
        }
        if let file = workload.promptFile, !file.hasPrefix("/") {
            workload.promptFile = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(file)
        }
        try workload.validate(path: path)
        return workload
    }

    package func validate(path: String = "workload") throws {
        func bad(_ reason: String) -> BenchError { .badWorkload(path: path, reason: reason) }
        if promptFile == nil && (syntheticTokens.isEmpty || syntheticTokens.contains(where: { $0 < 1 })) {
            throw bad("synthetic_tokens needs at least one length >= 1")
        }
        if !(0...1).contains(sharedPrefixShare) { throw bad("shared_prefix_share must be in 0...1") }
        if concurrency.isEmpty || concurrency.contains(where: { $0 < 1 }) { throw bad("concurrency levels must be >= 1") }
        if let rate = arrivalRate, !(rate > 0) { throw bad("arrival_rate must be > 0") }
        if maxTokens < 1 { throw bad("max_tokens must be >= 1") }
        try RunGuard.check(requests: requests, timeLimitSeconds: timeLimitSeconds)
    }
}

/// One prompt as text (HTTP) and, when a tokenizer built it, as token ids (in-process).
package struct BenchPrompt: Sendable, Equatable {
    package var text: String
    package var tokens: [TokenID]?

    package init(text: String, tokens: [TokenID]? = nil) {
        self.text = text
        self.tokens = tokens
    }
}

extension Workload {
    /// The prompts of one run, `requests` of them, built deterministically from `seed`.
    ///
    /// Synthetic prompts are random words from a fixed list. With a tokenizer, each prompt is cut to its exact
    /// token length and its text is the decoded tokens, so a server with the same tokenizer sees about the same
    /// count (a word may merge differently at the cut). Without one, a word stands for a token.
    /// The shared prefix is the first `share x length` tokens of one random sequence, identical in every prompt.
    /// `run` numbers the runs of a sweep: each gets fresh unique parts, so a later run finds only the shared
    /// prefix in a server's cache, not the whole prompts of the run before.
    package func prompts(tokenizer: Tokenizer?, run: Int = 0) throws -> [BenchPrompt] {
        if let promptFile {
            guard let text = try? String(contentsOfFile: promptFile, encoding: .utf8) else {
                throw BenchError.badWorkload(path: promptFile, reason: "cannot read the prompt file")
            }
            let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
            guard !lines.isEmpty else { throw BenchError.badWorkload(path: promptFile, reason: "the prompt file has no prompts") }
            return (0..<requests).map { i in
                let line = lines[i % lines.count]
                return BenchPrompt(text: line, tokens: tokenizer.map { promptTokens(line, $0) })
            }
        }
        var sharedRNG = SplitMix64(seed: seed)
        let longest = syntheticTokens.max() ?? 1
        let shared = randomTokens(longest, tokenizer: tokenizer, rng: &sharedRNG)
        var rng = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(run + 1))
        return (0..<requests).map { i in
            let length = syntheticTokens[i % syntheticTokens.count]
            let prefixCount = Int((sharedPrefixShare * Double(length)).rounded())
            let unique = randomTokens(length - prefixCount, tokenizer: tokenizer, rng: &rng)
            let pieces = Array(shared.prefix(prefixCount)) + unique
            guard let tokenizer else { return BenchPrompt(text: pieces.map { Self.words[Int($0)] }.joined()) }
            let bos = tokenizer.addBOS ? tokenizer.bosTokenID.map { [$0] } ?? [] : []
            return BenchPrompt(text: tokenizer.decode(pieces, renderSpecial: false), tokens: bos + pieces)
        }
    }

    private func promptTokens(_ text: String, _ tokenizer: Tokenizer) -> [TokenID] {
        let bos = tokenizer.addBOS ? tokenizer.bosTokenID.map { [$0] } ?? [] : []
        return bos + tokenizer.encode(text, parseSpecial: false)
    }

    /// `count` tokens of random words. Without a tokenizer the "tokens" are indices into `words`.
    private func randomTokens(_ count: Int, tokenizer: Tokenizer?, rng: inout SplitMix64) -> [TokenID] {
        guard count > 0 else { return [] }
        guard let tokenizer else {
            return (0..<count).map { _ in TokenID(Int.random(in: 0..<Self.words.count, using: &rng)) }
        }
        var tokens: [TokenID] = []
        while tokens.count < count {
            let text = (0..<64).map { _ in Self.words[Int.random(in: 0..<Self.words.count, using: &rng)] }.joined()
            tokens += tokenizer.encode(text, parseSpecial: false)
        }
        return Array(tokens.prefix(count))
    }

    /// Plain English words, each with its leading space, so a word boundary is a token boundary in byte-level BPE.
    static let words: [String] = """
        the of and to in is was for on that with as by at from his her they which this be or had not are but \
        have one all were there when an their would been more has time who about out up into some could them \
        other then its only over new years these two may first also after most where many through people \
        city water river house garden market engine server request token model cache price machine number \
        morning evening letter window mountain island station bridge school music paper story table \
        quickly slowly simply often always never together again almost perhaps during before between under
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { " " + $0 }
}
