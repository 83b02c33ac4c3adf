// One request's sampling settings, as the engine receives them, and their validation. Wire names in
// errors: OpenAI's where OpenAI has the parameter, vLLM's for top_k, min_p and repetition_penalty.

/// Settings for one request. Defaults switch every filter and penalty off and sample at temperature 1.
/// Decoding accepts any subset of the keys (Swift property names); missing keys take the defaults.
package struct SamplingParams: Sendable, Equatable, Codable {
    /// Divides logits before the draw; 0 means greedy (argmax, ties to the lowest token id). Wire: `temperature`, 0...2.
    package var temperature: Float
    /// Keep only the k most likely tokens; 0 = off. Wire: `top_k`, >= 0.
    package var topK: Int
    /// Keep the smallest most-likely prefix whose probability reaches p; 1 = off. Wire: `top_p`, (0, 1].
    package var topP: Float
    /// Keep tokens with probability >= minP * (the top token's probability); 0 = off. Wire: `min_p`, 0...1.
    package var minP: Float
    /// llama.cpp repeat penalty on tokens in the window: logit > 0 ? logit / r : logit * r; 1 = off.
    /// Wire: `repetition_penalty`, > 0.
    package var repetitionPenalty: Float
    /// OpenAI: logit -= presencePenalty if the token occurs in the window. Wire: `presence_penalty`, -2...2.
    package var presencePenalty: Float
    /// OpenAI: logit -= frequencyPenalty * (occurrences in the window). Wire: `frequency_penalty`, -2...2.
    package var frequencyPenalty: Float
    /// How many of the most recently accepted tokens the three penalties look at; -1 = all, 0 = none.
    /// Wire: `penalty_window`, >= -1 (llama.cpp calls it `repeat_last_n`).
    package var penaltyWindow: Int
    /// Seed of the request's PRNG; nil = the sampler draws one from the system RNG. Wire: `seed`.
    package var seed: UInt64?

    package init(
        temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0,
        repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
        penaltyWindow: Int = 64, seed: UInt64? = nil
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.penaltyWindow = penaltyWindow
        self.seed = seed
    }

    /// Greedy requests: the sampler takes the argmax and draws no random number.
    package static let greedy = SamplingParams(temperature: 0)

    /// Throws `SamplingError.invalidParameter` naming the first out-of-range parameter. NaN is out of
    /// every range.
    package func validate() throws(SamplingError) {
        if !(temperature >= 0 && temperature <= 2) {
            throw .invalidParameter(parameter: "temperature", value: "\(temperature)", allowed: "between 0 and 2")
        }
        if topK < 0 {
            throw .invalidParameter(parameter: "top_k", value: "\(topK)", allowed: "0 (off) or a positive integer")
        }
        if !(topP > 0 && topP <= 1) {
            throw .invalidParameter(parameter: "top_p", value: "\(topP)", allowed: "greater than 0 and at most 1")
        }
        if !(minP >= 0 && minP <= 1) {
            throw .invalidParameter(parameter: "min_p", value: "\(minP)", allowed: "between 0 and 1")
        }
        if !(repetitionPenalty > 0 && repetitionPenalty.isFinite) {
            throw .invalidParameter(parameter: "repetition_penalty", value: "\(repetitionPenalty)",
                                    allowed: "a finite number greater than 0 (1 = off)")
        }
        if !(presencePenalty >= -2 && presencePenalty <= 2) {
            throw .invalidParameter(parameter: "presence_penalty", value: "\(presencePenalty)", allowed: "between -2 and 2")
        }
        if !(frequencyPenalty >= -2 && frequencyPenalty <= 2) {
            throw .invalidParameter(parameter: "frequency_penalty", value: "\(frequencyPenalty)", allowed: "between -2 and 2")
        }
        if penaltyWindow < -1 {
            throw .invalidParameter(parameter: "penalty_window", value: "\(penaltyWindow)", allowed: "-1 (all tokens) or at least 0")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case temperature, topK, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty, penaltyWindow, seed
    }

    package init(from decoder: any Decoder) throws {
        let defaults = SamplingParams()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? defaults.temperature
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? defaults.topK
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? defaults.topP
        minP = try c.decodeIfPresent(Float.self, forKey: .minP) ?? defaults.minP
        repetitionPenalty = try c.decodeIfPresent(Float.self, forKey: .repetitionPenalty) ?? defaults.repetitionPenalty
        presencePenalty = try c.decodeIfPresent(Float.self, forKey: .presencePenalty) ?? defaults.presencePenalty
        frequencyPenalty = try c.decodeIfPresent(Float.self, forKey: .frequencyPenalty) ?? defaults.frequencyPenalty
        penaltyWindow = try c.decodeIfPresent(Int.self, forKey: .penaltyWindow) ?? defaults.penaltyWindow
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed)
    }
}
