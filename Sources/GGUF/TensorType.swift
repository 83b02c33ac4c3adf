// ggml tensor types as GGUF stores them: the ones tally reads, block layouts, and the names of
// the others so a refusal can say which type it met.

package enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q2_k = 10
    case q3_k = 11
    case q4_k = 12
    case q5_k = 13
    case q6_k = 14
    case iq4_nl = 20
    case bf16 = 30

    package var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q2_k: "Q2_K"
        case .q3_k: "Q3_K"
        case .q4_k: "Q4_K"
        case .q5_k: "Q5_K"
        case .q6_k: "Q6_K"
        case .iq4_nl: "IQ4_NL"
        case .bf16: "BF16"
        }
    }

    /// Elements per block: 256 for the K-quants (a super-block of sub-blocks), 32 for the other
    /// block-quantized types, 1 for plain floats.
    package var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl: 32
        case .q2_k, .q3_k, .q4_k, .q5_k, .q6_k: 256
        }
    }

    /// Bytes per block, as ggml's block structs (TensorCodec.swift gives each layout).
    package var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0, .iq4_nl: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q2_k: 84
        case .q3_k: 110
        case .q4_k: 144
        case .q5_k: 176
        case .q6_k: 210
        }
    }

    /// Bytes of `elementCount` elements; elementCount must be a multiple of blockSize.
    package func byteCount(elements elementCount: Int) -> Int { elementCount / blockSize * blockBytes }

    /// Parses a name as `--type` takes it: "q8_0", "F16", ...
    package init?(name: String) {
        guard let type = GGMLType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = type
    }

    /// ggml's names for the types tally does not read, so refusals are specific.
    package static func knownName(raw: UInt32) -> String? {
        if let type = GGMLType(rawValue: raw) { return type.name }
        let others: [UInt32: String] = [
            4: "Q4_2 (removed)", 5: "Q4_3 (removed)", 9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
            18: "IQ3_XXS", 19: "IQ1_S", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
            27: "I64", 28: "F64", 29: "IQ1_M", 31: "Q4_0_4_4 (removed)", 32: "Q4_0_4_8 (removed)",
            33: "Q4_0_8_8 (removed)", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
        ]
        return others[raw]
    }
}
