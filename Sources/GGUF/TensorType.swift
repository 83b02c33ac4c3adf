// ggml tensor types as GGUF stores them: the six tally reads, block layouts, and the names of
// the others so a refusal can say which type it met.

package enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q8_0 = 8
    case bf16 = 30

    package var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q8_0: "Q8_0"
        case .bf16: "BF16"
        }
    }

    /// Elements per block: 32 for the block-quantized types, 1 for plain floats.
    package var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q8_0: 32
        }
    }

    /// Bytes per block. Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]}, Q8_0 {f16 d; i8 qs[32]}.
    package var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q8_0: 34
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
            4: "Q4_2 (removed)", 5: "Q4_3 (removed)", 6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
            12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
            19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
            27: "I64", 28: "F64", 29: "IQ1_M", 31: "Q4_0_4_4 (removed)", 32: "Q4_0_4_8 (removed)",
            33: "Q4_0_8_8 (removed)", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
        ]
        return others[raw]
    }
}
