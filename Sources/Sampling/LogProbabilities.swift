// Log-probabilities for the OpenAI `logprobs` / `top_logprobs` fields: log-softmax of the raw logits
// (before penalties and temperature, as the model produced them).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Sampler {
    /// log p_i = logit_i - (m + ln sum_j exp(logit_j - m)), m = max logit; the sum in Double.
    /// Returns the chosen token's log-probability and the `n` most likely tokens, logprob descending
    /// (ties by lower id). NaN logits count as -infinity; if the largest logit is not finite (all -inf, or
    /// a +inf) every answer is -infinity.
    package static func logProbabilities(
        _ logits: UnsafeBufferPointer<Float>, chosen: Int32, top n: Int
    ) -> (chosen: Float, top: [(token: Int32, logprob: Float)]) {
        precondition(chosen >= 0 && Int(chosen) < logits.count, "chosen token \(chosen) is outside the vocabulary")
        var maxLogit = -Float.infinity
        for value in logits where value > maxLogit { maxLogit = value }

        let logNormaliser: Double
        if maxLogit.isFinite {
            let m = Double(maxLogit)
            var total = 0.0
            for value in logits where !value.isNaN { total += exp(Double(value) - m) }
            logNormaliser = m + log(total)
        } else {
            logNormaliser = .infinity
        }
        func logprob(_ logit: Float) -> Float {
            if logit.isNaN || !logNormaliser.isFinite { return -.infinity }
            return Float(Double(logit) - logNormaliser)
        }

        var best: [Candidate] = []
        Candidate.selectFirst(n, of: logits, into: &best)
        return (logprob(logits[Int(chosen)]), best.map { (token: $0.id, logprob: logprob($0.logit)) })
    }
}
