// What the Engine offers the layers above it (OpenAIServer, BenchKit): submit a request of token ids,
// receive its events as an async stream. Token ids only: no strings, no JSON, no HTTP.

import Foundation
import GGUF
import Sampling

package typealias RequestID = String

package enum Priority: Sendable, Equatable { case interactive, batch }

package struct EngineRequest: Sendable {
    package var id: RequestID
    package var promptTokens: [TokenID]
    package var sampling: SamplingParams
    package var maxTokens: Int
    /// End-of-generation token ids; generation stops after emitting one (unless ignoreEOS).
    package var stopTokenIDs: Set<TokenID>
    /// Keep generating past end-of-generation: those ids are masked out (llama.cpp's --ignore-eos).
    package var ignoreEOS: Bool
    /// Return the log-probability of each chosen token and of this many top alternatives (nil: none).
    /// Log-probabilities are the model's distribution as computed: before sampling's temperature and
    /// filters, and before ignoreEOS masks the end-of-generation tokens.
    package var topLogprobs: Int?
    /// Also return the log-probability of every prompt token after the first, given the tokens before it,
    /// with this many top alternatives (nil: none): what `echo` with `logprobs` scores. Such a request
    /// takes nothing from the prefix cache, since a cached token's logits were never computed.
    package var promptLogprobs: Int?
    /// An embedding request: the prompt is computed (batched with everyone else's work, as a prefill) and
    /// pooled into one L2-normalised vector, sent as `.embedding` before `.finished(.stop)`; no token is
    /// generated and maxTokens must be 0. Mean and first pooling take nothing from the prefix cache (they
    /// need every pooled position's state); last pooling does, as its last position is always computed.
    package var pooling: Pooling?
    /// JSON mode (`response_format: json_object`): each token is drawn from those that keep the output a
    /// prefix of one JSON object, and the request finishes (`.stop`) when the object closes.
    package var constraint: JSONConstraint?
    /// When the request reached the server; queue time counts from here.
    package var arrival: ContinuousClock.Instant
    /// `.batch` (a line of a /v1/batches job): admitted only after every waiting interactive request,
    /// paused (its blocks kept, nothing computed) while any interactive request runs or waits, and the
    /// first to give its place and blocks to an interactive request that needs them.
    package var priority = Priority.interactive
    /// Prefix-cache scope: only requests with the same salt share cached blocks (nil: the shared scope). The
    /// server salts with the tenant, so one tenant cannot learn another's prompts from `cached_tokens` or
    /// time to first token (vLLM's `cache_salt`).
    package var cacheSalt: String?
    /// Called on the engine thread once, however the request ends (also when its stream was cancelled and
    /// nobody reads `.finished` any more): how metering hears of aborted requests. Keep it quick.
    package var onFinish: (@Sendable (FinishReason, RequestStats) -> Void)?
    /// Called on the engine thread with each generated token, before it is yielded to the stream: how a
    /// caller that drives `EngineCore` itself (`Generator`) sees tokens without an async stream.
    package var onToken: (@Sendable (TokenID) -> Void)?

    package init(id: RequestID, promptTokens: [TokenID], sampling: SamplingParams = SamplingParams(), maxTokens: Int,
                 stopTokenIDs: Set<TokenID> = [], ignoreEOS: Bool = false, topLogprobs: Int? = nil,
                 arrival: ContinuousClock.Instant = .now) {
        self.id = id
        self.promptTokens = promptTokens
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stopTokenIDs = stopTokenIDs
        self.ignoreEOS = ignoreEOS
        self.topLogprobs = topLogprobs
        self.arrival = arrival
    }
}

/// How an embedding request turns its prompt's final hidden states into one vector: GGUF's
/// `<arch>.pooling_type` (1 mean, 2 cls, 3 last), which embedding models carry.
package enum Pooling: String, Sendable, CaseIterable {
    /// The mean over every prompt position.
    case mean
    /// The first position's (BERT's CLS token).
    case cls
    /// The last position's: in a causal model the only one that has seen the whole input, so what vLLM
    /// pools for decoder models that carry no pooling type.
    case last

    /// The pooling a GGUF's `pooling_type` names; nil for none (0), rank (4) or a value outside them.
    package init?(ggufPoolingType value: Int) {
        switch value {
        case 1: self = .mean
        case 2: self = .cls
        case 3: self = .last
        default: return nil
        }
    }

    /// The pooling a model's metadata names (`<architecture>.pooling_type`, as embedding models carry it);
    /// nil when it names none.
    package init?(metadata: GGUFMetadata, architecture: String) {
        guard let value = try? metadata.integer("\(architecture).pooling_type") else { return nil }
        self.init(ggufPoolingType: value)
    }
}

package struct TokenLogprob: Sendable, Equatable {
    package var logprob: Float
    package var top: [(token: TokenID, logprob: Float)]

    package init(logprob: Float, top: [(token: TokenID, logprob: Float)]) {
        self.logprob = logprob
        self.top = top
    }

    package static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.logprob == b.logprob && a.top.count == b.top.count && zip(a.top, b.top).allSatisfy { $0.token == $1.token && $0.logprob == $1.logprob }
    }
}

package enum FinishReason: String, Sendable, Codable {
    /// An end-of-generation token (or the caller stopped it: a stop string matched).
    case stop
    /// maxTokens or the context length reached.
    case length
    /// The client went away or the request was cancelled.
    case abort
}

/// Facts about a finished request; cost is computed from these later (Metering).
package struct RequestStats: Sendable, Equatable {
    package var promptTokens = 0
    /// Prompt tokens whose KV came from the prefix cache (not computed for this request).
    package var cachedTokens = 0
    /// Prompt tokens in full blocks this request added to the prefix cache (APIs bill these as cache writes).
    package var cacheWriteTokens = 0
    package var generatedTokens = 0
    /// Arrival to first scheduled step.
    package var queueMicros: Int64 = 0
    /// First scheduled step to first generated token.
    package var prefillMicros: Int64 = 0
    /// First generated token to the last.
    package var decodeMicros: Int64 = 0
    /// This request's share of engine busy time: each step's duration split among its requests by tokens.
    package var busyShareMicros: Int64 = 0
    /// Times the request was preempted (its KV dropped and recomputed later).
    package var preemptions = 0
    package var seed: UInt64 = 0
    /// Prompt-lookup drafts (EngineConfig.draftTokens): tokens proposed, and those the model agreed with.
    package var draftTokens = 0
    package var acceptedDraftTokens = 0

    package init() {}
}

package enum EngineEvent: Sendable {
    /// With `promptLogprobs`: prompt tokens 1..<count scored, once, before the first `.token`.
    case promptLogprobs([TokenLogprob])
    case token(TokenID, TokenLogprob?)
    /// With `pooling`: the prompt's vector, L2-normalised, once, before `.finished`.
    case embedding([Float])
    case finished(FinishReason, RequestStats)
}

package enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    case queueFull(limit: Int)
    case promptTooLong(tokens: Int, limit: Int)
    case emptyPrompt
    case shuttingDown
    case internalError(String)

    package var description: String {
        switch self {
        case .queueFull(let limit): return "the server's queue is full (\(limit) requests waiting); retry after a short wait"
        case .promptTooLong(let tokens, let limit): return "the prompt has \(tokens) tokens but at most \(limit) fit (context and KV capacity minus max_tokens); shorten the prompt or lower max_tokens"
        case .emptyPrompt: return "the prompt is empty; send at least one token"
        case .shuttingDown: return "the server is shutting down; retry against another instance"
        case .internalError(let message): return "internal engine error: \(message); this is a bug, please report it"
        }
    }
}

/// A point-in-time view of the engine for /metrics and /health.
package struct EngineSnapshot: Sendable, Equatable {
    package var running = 0
    package var waiting = 0
    package var kvBlocksUsed = 0
    package var kvBlocksTotal = 0
    /// Prompt tokens looked up in the prefix cache, and those found, since start.
    package var prefixCacheQueriedTokens = 0
    package var prefixCacheHitTokens = 0
    package var steps = 0
    package var preemptions = 0
    /// Draft tokens proposed and accepted since start (speculative decoding).
    package var draftTokens = 0
    package var acceptedDraftTokens = 0

    package init() {}
}

/// The seam between the server and the engine: the real Engine, or a fake in router tests.
package protocol InferenceEngine: Sendable {
    /// Queues a request. Ending (or dropping) the stream's consumer aborts it and frees its blocks.
    func submit(_ request: EngineRequest) throws(EngineError) -> AsyncThrowingStream<EngineEvent, Error>
    /// Ends a request early as finished with `reason` (a stop string matched): its stream still gets
    /// `.finished` with the engine's stats, so usage is complete. Unknown or finished ids are ignored.
    func end(_ id: RequestID, reason: FinishReason)
    func snapshot() -> EngineSnapshot
    /// Longest prompt + max_tokens a request may have.
    var contextLength: Int { get }
}
