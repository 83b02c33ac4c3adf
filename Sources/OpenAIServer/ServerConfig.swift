// What the server is started with (the CLI fills it from flags), the readiness flag /health reads,
// and the hook through which Metering (issue 7) adds a `cost` object to every response's usage.

import Engine
import Synchronization

package struct ServerConfig: Sendable {
    package var host = "127.0.0.1"
    /// 0 picks a free port (tests).
    package var port = 8080
    /// Accepted bearer tokens; empty = no authentication.
    package var apiKeys: [String] = []
    /// Larger request bodies are refused with 413.
    package var maxBodyBytes = 4 << 20
    /// A chat template name (`ChatTemplate.names`) used instead of the model's `tokenizer.chat_template`.
    package var chatTemplateOverride: String?
    /// Whether the model is loaded: /health answers 503 and generation routes refuse until it is.
    package var readiness = Readiness(true)
    /// Seconds sent in Retry-After with a 429 (engine queue full).
    package var retryAfterSeconds = 1
    /// How long in-flight requests may run after SIGTERM/SIGINT before they are cancelled.
    package var shutdownGracePeriod: Duration = .seconds(30)
    /// Log-probabilities of at most this many alternatives per token (`logprobs`, `top_logprobs`).
    package var maxTopLogprobs = 20

    // MARK: Metering hook (issue 7)
    /// Called once for every finished generation. Metering stores the usage record here and returns the
    /// `cost` object that is added to the response's `usage` (nil: no `cost` key). Runs on the request's
    /// task: keep it quick (hand the record to a store's queue).
    package var costForUsage: (@Sendable (UsageEvent) -> JSON?)?

    package init() {}
}

/// One finished generation, as Metering sees it.
package struct UsageEvent: Sendable {
    /// The response's id ("cmpl-...", "chatcmpl-...").
    package var requestID: String
    /// "completions" or "chat.completions".
    package var endpoint: String
    package var model: String
    /// The request's `user` field (the tenant), if any.
    package var user: String?
    /// Index into `ServerConfig.apiKeys` of the key that authorised the request (nil: no keys configured).
    package var apiKeyIndex: Int?
    package var finishReason: String
    package var stats: RequestStats
}

/// A thread-safe flag: false while the model loads, true once requests can be served.
package final class Readiness: Sendable {
    private let flag: Atomic<Bool>

    package init(_ ready: Bool) { flag = Atomic(ready) }

    package var isReady: Bool { flag.load(ordering: .acquiring) }

    package func set(_ ready: Bool) { flag.store(ready, ordering: .releasing) }
}
