// Per-key rate limits: requests and tokens per minute for each tenant (`--rpm`, `--tpm`), over a sliding
// 60-second window, answered with 429 and the seconds until the request would fit (Retry-After). Tokens
// are counted at admission as OpenAI does: the prompt plus the most the request may generate.

import Synchronization

package struct RateLimits: Sendable, Equatable {
    /// Requests each tenant may start per 60 seconds; nil: no limit.
    package var requestsPerMinute: Int?
    /// Prompt plus maximum output tokens each tenant may ask for per 60 seconds; nil: no limit.
    package var tokensPerMinute: Int?

    package init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }

    package var isUnlimited: Bool { requestsPerMinute == nil && tokensPerMinute == nil }
}

final class RateLimiter: Sendable {
    enum Decision: Equatable {
        case admit
        /// Refused: why, and whole seconds until it would be admitted (nil: never, the request alone is too big).
        case refuse(String, retryAfterSeconds: Int?)
    }

    static let windowMicros: Int64 = 60_000_000
    private let limits: RateLimits
    private let now: @Sendable () -> Int64
    /// Per tenant, the admitted requests of the last window: (time µs, tokens), oldest first.
    private let admitted = Mutex<[String: [(time: Int64, tokens: Int)]]>([:])

    init(_ limits: RateLimits, now: @escaping @Sendable () -> Int64) {
        self.limits = limits
        self.now = now
    }

    /// Admits and counts the request, or says when it would fit. Requests without a key share one bucket.
    func admit(tenant: String?, tokens: Int) -> Decision {
        guard !limits.isUnlimited else { return .admit }
        let time = now()
        return admitted.withLock { byTenant in
            var window = byTenant[tenant ?? "", default: []]
            window.removeAll { $0.time <= time - Self.windowMicros }
            func secondsUntil(_ entry: Int) -> Int {
                Int((window[entry].time + Self.windowMicros - time + 999_999) / 1_000_000)
            }
            if let rpm = limits.requestsPerMinute, window.count >= rpm {
                byTenant[tenant ?? ""] = window
                return .refuse("this API key may start \(rpm) requests per minute", retryAfterSeconds: secondsUntil(window.count - rpm))
            }
            if let tpm = limits.tokensPerMinute {
                guard tokens <= tpm else {
                    byTenant[tenant ?? ""] = window
                    return .refuse("this request asks for \(tokens) tokens (prompt plus max_tokens) but this API key may use \(tpm) per minute; lower max_tokens", retryAfterSeconds: nil)
                }
                var used = window.reduce(0) { $0 + $1.tokens }, entry = 0
                if used + tokens > tpm {
                    // The oldest entries leave the window first: wait until enough have.
                    while used + tokens > tpm { used -= window[entry].tokens; entry += 1 }
                    byTenant[tenant ?? ""] = window
                    return .refuse("this API key may use \(tpm) tokens (prompt plus max_tokens) per minute", retryAfterSeconds: secondsUntil(entry - 1))
                }
            }
            window.append((time, tokens))
            byTenant[tenant ?? ""] = window
            return .admit
        }
    }
}
