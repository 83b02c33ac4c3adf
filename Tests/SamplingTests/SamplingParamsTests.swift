// Parameter validation (every error names the wire parameter and says what to do) and decoding defaults.

import Foundation
import Sampling
import Testing

@Suite struct SamplingParamsTests {
    @Test func defaultsAreValidAndSwitchEverythingOff() throws {
        let params = SamplingParams()
        try params.validate()
        #expect(params == SamplingParams(temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1,
                                         presencePenalty: 0, frequencyPenalty: 0, penaltyWindow: 64, seed: nil))
    }

    @Test func boundaryValuesAreAccepted() throws {
        try SamplingParams(temperature: 0, topK: 0, topP: 1, minP: 0, presencePenalty: -2, frequencyPenalty: -2,
                           penaltyWindow: -1).validate()
        try SamplingParams(temperature: 2, topK: 1_000_000, topP: 0.0001, minP: 1, repetitionPenalty: 0.01,
                           presencePenalty: 2, frequencyPenalty: 2, penaltyWindow: 0).validate()
    }

    static let invalid: [(String, SamplingParams)] = [
        ("temperature", SamplingParams(temperature: -0.1)),
        ("temperature", SamplingParams(temperature: 2.01)),
        ("temperature", SamplingParams(temperature: .nan)),
        ("top_k", SamplingParams(topK: -1)),
        ("top_p", SamplingParams(topP: 0)),
        ("top_p", SamplingParams(topP: 1.5)),
        ("min_p", SamplingParams(minP: -0.1)),
        ("min_p", SamplingParams(minP: 1.1)),
        ("repetition_penalty", SamplingParams(repetitionPenalty: 0)),
        ("repetition_penalty", SamplingParams(repetitionPenalty: .infinity)),
        ("presence_penalty", SamplingParams(presencePenalty: 2.5)),
        ("frequency_penalty", SamplingParams(frequencyPenalty: -3)),
        ("frequency_penalty", SamplingParams(frequencyPenalty: .nan)),
        ("penalty_window", SamplingParams(penaltyWindow: -2)),
    ]

    @Test(arguments: invalid)
    func invalidValueNamesItsParameter(expected: String, params: SamplingParams) {
        #expect {
            try params.validate()
        } throws: { error in
            guard let error = error as? SamplingError else { return false }
            return error.parameter == expected && error.description.hasPrefix(expected + " is ")
                && error.description.hasSuffix("omit \(expected) to use its default")
        }
    }

    @Test func messageSaysValueRangeAndWhatToDo() {
        let error = SamplingError.invalidParameter(parameter: "top_p", value: "1.5", allowed: "greater than 0 and at most 1")
        #expect(error.description
            == "top_p is 1.5 but must be greater than 0 and at most 1; send a value in that range or omit top_p to use its default")
    }

    @Test func decodingFillsMissingKeysWithDefaults() throws {
        let params = try JSONDecoder().decode(SamplingParams.self, from: Data(#"{"topK": 40, "seed": 7}"#.utf8))
        #expect(params == SamplingParams(topK: 40, seed: 7))
        let empty = try JSONDecoder().decode(SamplingParams.self, from: Data("{}".utf8))
        #expect(empty == SamplingParams())
    }

    @Test func encodingRoundTrips() throws {
        let params = SamplingParams(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1,
                                    presencePenalty: 0.5, frequencyPenalty: -0.5, penaltyWindow: -1, seed: .max)
        let decoded = try JSONDecoder().decode(SamplingParams.self, from: JSONEncoder().encode(params))
        #expect(decoded == params)
    }
}
