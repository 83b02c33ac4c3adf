// The tokens a request has accepted, as counts over the penalty window, and the penalties applied to
// logits from them (llama.cpp's penalties sampler: repetition, then frequency and presence).

/// Counts of the last `window` accepted tokens (-1 = all of them, 0 = none).
struct PenaltyState: Sendable {
    let window: Int
    /// Ring of the last `window` tokens when window > 0; `oldest` is the slot the next token overwrites.
    private var recent: [Int32] = []
    private var oldest = 0
    private(set) var counts: [Int32: Int] = [:]

    init(window: Int) { self.window = window }

    mutating func accept(_ token: Int32) {
        if window == 0 { return }
        if window > 0 {
            if recent.count < window {
                recent.append(token)
            } else {
                let evicted = recent[oldest]
                recent[oldest] = token
                oldest = (oldest + 1) % window
                if let count = counts[evicted], count > 1 { counts[evicted] = count - 1 } else { counts[evicted] = nil }
            }
        }
        counts[token, default: 0] += 1
    }

    /// For each token with count c > 0 in the window (llama.cpp `llama_sampler_penalties_apply`):
    ///   logit = logit > 0 ? logit / repetition : logit * repetition
    ///   logit -= c * frequency + presence
    /// Token ids outside the vocabulary are ignored.
    func apply(to logits: UnsafeMutableBufferPointer<Float>, repetition: Float, presence: Float, frequency: Float) {
        for (token, count) in counts where token >= 0 && Int(token) < logits.count {
            var logit = logits[Int(token)]
            if repetition != 1 { logit = logit > 0 ? logit / repetition : logit * repetition }
            logit -= Float(count) * frequency + presence
            logits[Int(token)] = logit
        }
    }
}
