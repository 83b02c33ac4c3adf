// What the server is started with (the CLI fills it from flags), the readiness flag /health reads,
// and the meter that records usage and adds a `cost` object to every response's usage (issue 7).

import Foundation
import Engine
import Logging
import Metering
import Synchronization

package struct ServerConfig: Sendable {
    /// Where request lines go (`tally serve` bootstraps swift-log with --log-level and --log-format).
    package var logger = Logger(label: "tally")
    package var host = "127.0.0.1"
    /// 0 picks a free port (tests).
    package var port = 8080
    /// Accepted bearer tokens and the tenants they bill (`TenantKey.parse(file:)`); empty = no authentication.
    package var apiKeys: [TenantKey] = []
    /// Larger request bodies are refused with 413.
    package var maxBodyBytes = 4 << 20
    /// Largest file /v1/files takes (a batch's input).
    package var maxFileBytes = 100 << 20
    /// Where /v1/files and /v1/batches keep files and batches (nil: no batch API).
    package var batchDirectory: URL?
    /// Batch lines in flight at once (`--batch-slots`).
    package var batchSlots = 4
    /// Request headers larger than this in total are refused with 400 and the connection closed.
    package var maxHeaderBytes = 32 << 10
    /// A connection with no request in progress for this long is closed (`--idle-timeout`), so idle
    /// connections and headers that trickle in (slowloris) do not hold the server's sockets forever.
    package var idleTimeout: Duration = .seconds(60)
    /// A response that cannot be written for this long (the client stopped reading) closes its connection
    /// and aborts its request (`--write-timeout`).
    package var writeTimeout: Duration = .seconds(30)
    /// SO_SNDBUF of each connection (`--socket-send-buffer`); nil keeps the kernel's autotuning.
    package var socketSendBuffer: Int?
    /// A chat template name (`ChatTemplate.names`) used instead of the model's `tokenizer.chat_template`.
    package var chatTemplateOverride: String?
    /// Whether the model is loaded: /health answers 503 and generation routes refuse until it is.
    package var readiness = Readiness(true)
    /// Seconds sent in Retry-After with a 429 (engine queue full).
    package var retryAfterSeconds = 1
    /// How long in-flight requests may run after SIGTERM/SIGINT before they are cancelled.
    package var shutdownGracePeriod: Duration = .seconds(30)
    /// Other names a request's `model` may give for the served model (`--alias`); any other name is a 404.
    package var modelAliases: [String] = []
    /// Share prefix-cache blocks across tenants (`--shared-prefix-cache`). Off: with API keys, each tenant's
    /// blocks are salted with the tenant, so no tenant can time or count another's cached prompt.
    package var sharedPrefixCache = false
    /// When set, GET /metrics needs `Authorization: Bearer` this key (`--metrics-key`): the figures show
    /// load and spend an outsider should not read.
    package var metricsKey: TenantKey?
    /// Requests and tokens per minute per API key (`--rpm`, `--tpm`); unlimited by default.
    package var rateLimits = RateLimits()
    /// Microseconds on a monotonic clock, for rate-limit windows (tests move it by hand).
    package var clockMicros: @Sendable () -> Int64 = { MonotonicClock().nowMicros() }
    /// Log-probabilities of at most this many alternatives per token (`logprobs`, `top_logprobs`).
    package var maxTopLogprobs = 20

    // MARK: Metering (issue 7)
    /// Budgets before, a durable usage record and its `cost` after every request; nil: no metering.
    package var meter: Meter?
    /// Answer 503 rather than serve while usage records cannot be written (`--require-metering`).
    package var requireMetering = false
    /// What the served model is for the GPU-equivalent cost (stored in each record).
    package var modelShape: ModelShape = .unknown
    /// This server's name in a fleet (`--replica`, default the host name), stored with each usage record.
    package var replica: String?

    // MARK: Embeddings
    /// How /v1/embeddings pools a prompt's hidden states (`--pooling`; default the model's
    /// `pooling_type`, else last).
    package var embeddingPooling: Pooling = .last
    /// Values per embedding (the model's embedding length); 0: unknown, `dimensions` is not checked.
    package var embeddingWidth = 0

    package init() {}
}

/// A thread-safe flag: false while the model loads, true once requests can be served.
package final class Readiness: Sendable {
    private let flag: Atomic<Bool>

    package init(_ ready: Bool) { flag = Atomic(ready) }

    package var isReady: Bool { flag.load(ordering: .acquiring) }

    package func set(_ ready: Bool) { flag.store(ready, ordering: .releasing) }
}
