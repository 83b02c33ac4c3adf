// One usage record per finished request (completed, aborted or failed): the facts a cost report is computed
// from. The server builds it when the engine reports `finished`; stores keep it; money is never stored.

import Crypto
import Foundation

/// Why a request ended. Raw values are what the store writes (`finish_reason`).
package enum UsageOutcome: String, Sendable, Codable, CaseIterable {
    /// End of sequence or a stop token/string.
    case stop
    /// `max_tokens` or the context limit.
    case length
    /// The client went away (disconnect) or the request was cancelled.
    case aborted
    /// The engine or server failed the request.
    case error
    /// Refused before any work, for example by a budget (429).
    case rejected
}

/// What kind of work a request was: APIs price generation and embeddings differently. Raw values are what
/// the store writes (`kind`; NULL in records from before embeddings, which were all generation).
package enum UsageKind: String, Sendable, Codable, CaseIterable {
    /// Completions and chat completions: prompt in, tokens out.
    case generation
    /// /v1/embeddings: prompt in, one vector out per input, priced at the APIs' embedding prices.
    case embedding
}

/// What a request's model is, as far as cost goes: stored with each record, so a report needs no model
/// file and a model replaced under the same name keeps its old records right.
package struct ModelShape: Sendable, Equatable, Codable, Hashable {
    /// Weights that take part in a matmul per token (`2 x parameterCount` FLOPs per token).
    package var parameterCount: Int64
    /// Bytes of the weights as served (Q8_0 here); what a decode step reads once per batch.
    package var weightBytes: Int64
    /// `%s.block_count`.
    package var layerCount: Int
    /// `headCount x headDim`: width of the query/attention output, for attention FLOPs.
    package var attentionWidth: Int
    /// `kvHeadCount x headDim`: width of one of K or V per layer, for KV bytes read per decode token.
    package var kvWidth: Int

    package init(parameterCount: Int64, weightBytes: Int64, layerCount: Int, attentionWidth: Int, kvWidth: Int) {
        self.parameterCount = parameterCount
        self.weightBytes = weightBytes
        self.layerCount = layerCount
        self.attentionWidth = attentionWidth
        self.kvWidth = kvWidth
    }

    /// Unknown model: GPU-equivalent cost is zero and the report says the shape was missing.
    package static let unknown = ModelShape(parameterCount: 0, weightBytes: 0, layerCount: 0, attentionWidth: 0, kvWidth: 0)
}

/// The facts of one finished request. No prompt or output text, no API key.
package struct UsageRecord: Sendable, Equatable, Codable, Hashable {
    /// The request id the client saw (`chatcmpl-...`); unique per store.
    package var id: String
    /// When the request finished, Unix time in microseconds (UTC). Arrival is
    /// `timeMicros - queueMicros - prefillMicros - decodeMicros`.
    package var timeMicros: Int64
    /// The served model's name.
    package var model: String
    package var modelShape: ModelShape
    /// `Tenant.fingerprint(apiKey:)` of the caller's key, or nil when the server runs without keys.
    package var tenant: String?
    /// The OpenAI `user` field, as sent.
    package var user: String?
    /// From `X-Tally-Tags`, normalised by `UsageRecord.parseTags`.
    package var tags: [String]
    /// From `X-Tally-Session`: the workflow (task, agent run, conversation) this call belongs to, so a
    /// report can give the cost and calls per workflow; nil when the header was not sent.
    package var session: String?
    /// The replica that served it (`tally serve --replica`, default the host name); nil in records from
    /// before replicas were recorded.
    package var replica: String?
    /// All prompt tokens, cached ones included.
    package var promptTokens: Int
    /// Prompt tokens found in the prefix cache (not computed again).
    package var cachedTokens: Int
    /// Prompt tokens this request added to the prefix cache (new full blocks); priced as cache writes on
    /// APIs that charge for them. 0 when the server does not know.
    package var cacheWriteTokens: Int
    /// Tokens sampled, the finishing one included.
    package var generatedTokens: Int
    package var queueMicros: Int64
    package var prefillMicros: Int64
    package var decodeMicros: Int64
    /// The request's share of engine busy time: each step's duration split among the requests in that step
    /// in proportion to their tokens in it, summed over the request's steps.
    package var busyShareMicros: Int64
    package var finishReason: UsageOutcome
    /// nil: generation (records from before kinds were stored decode that way too).
    package var kind: UsageKind?

    package init(
        id: String, timeMicros: Int64, model: String, modelShape: ModelShape = .unknown,
        tenant: String? = nil, user: String? = nil, tags: [String] = [], session: String? = nil, replica: String? = nil,
        promptTokens: Int, cachedTokens: Int = 0, cacheWriteTokens: Int = 0, generatedTokens: Int,
        queueMicros: Int64 = 0, prefillMicros: Int64 = 0, decodeMicros: Int64 = 0, busyShareMicros: Int64,
        finishReason: UsageOutcome = .stop, kind: UsageKind? = nil
    ) {
        self.id = id
        self.timeMicros = timeMicros
        self.model = model
        self.modelShape = modelShape
        self.tenant = tenant
        self.user = user
        self.tags = tags
        self.session = session
        self.replica = replica
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.generatedTokens = generatedTokens
        self.queueMicros = queueMicros
        self.prefillMicros = prefillMicros
        self.decodeMicros = decodeMicros
        self.busyShareMicros = busyShareMicros
        self.finishReason = finishReason
        self.kind = kind
    }

    package var isEmbedding: Bool { kind == .embedding }

    /// Prompt tokens that had to be computed.
    package var uncachedPromptTokens: Int { max(0, promptTokens - cachedTokens) }
    /// Prompt plus generated tokens: the base of every "per 1M tokens" figure.
    package var totalTokens: Int { promptTokens + generatedTokens }
    package var arrivalMicros: Int64 { timeMicros - queueMicros - prefillMicros - decodeMicros }

    /// Longest session id, label or tenant name kept.
    package static let maxNameLength = 128

    /// Whether `text` is usable as a session id or outcome label: 1...maxNameLength visible ASCII characters
    /// (no spaces or control bytes, so it prints in a table and a CSV cell as sent).
    package static func isValidName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maxNameLength && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// Most tags a request keeps, and the longest tag; longer or further ones are dropped.
    package static let maxTags = 16
    package static let maxTagLength = 64

    /// `X-Tally-Tags: team-a, nightly,team-a` -> `["team-a", "nightly"]`: comma-separated, trimmed, empty ones
    /// and repeats dropped, first-seen order kept, at most `maxTags` of at most `maxTagLength` characters.
    package static func parseTags(header: String?) -> [String] {
        guard let header else { return [] }
        var seen = Set<String>()
        var tags: [String] = []
        for part in header.split(separator: ",") {
            let tag = String(part.trimmingCharacters(in: .whitespaces).prefix(maxTagLength))
            guard !tag.isEmpty, seen.insert(tag).inserted else { continue }
            tags.append(tag)
            if tags.count == maxTags { break }
        }
        return tags
    }
}

/// Who a request is billed to.
package enum Tenant {
    /// Hex digits of SHA-256 kept as the tenant id: 64 bits, plenty to tell keys apart, short in reports.
    package static let fingerprintHexLength = 16

    /// `sha256:` + the first 16 hex digits of SHA-256(key). The key itself is never stored or logged.
    package static func fingerprint(apiKey: String) -> String {
        let digest = SHA256.hash(data: Data(apiKey.utf8))
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        return "sha256:" + hex.prefix(fingerprintHexLength)
    }
}
