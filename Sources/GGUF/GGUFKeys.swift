// Every GGUF metadata key string tally reads or writes, and the value type each must have.
// A grep for a key string anywhere else in the package should find nothing.

package enum GGUFKey {
    package static let architecture = "general.architecture"
    package static let alignment = "general.alignment"
    package static let name = "general.name"
    package static let fileType = "general.file_type"
    package static let quantizationVersion = "general.quantization_version"

    // Hyper-parameters are prefixed with the architecture: `llama.block_count`.
    package static func contextLength(_ arch: String) -> String { "\(arch).context_length" }
    package static func embeddingLength(_ arch: String) -> String { "\(arch).embedding_length" }
    package static func blockCount(_ arch: String) -> String { "\(arch).block_count" }
    package static func feedForwardLength(_ arch: String) -> String { "\(arch).feed_forward_length" }
    package static func headCount(_ arch: String) -> String { "\(arch).attention.head_count" }
    package static func kvHeadCount(_ arch: String) -> String { "\(arch).attention.head_count_kv" }
    package static func rmsNormEpsilon(_ arch: String) -> String { "\(arch).attention.layer_norm_rms_epsilon" }
    package static func keyLength(_ arch: String) -> String { "\(arch).attention.key_length" }
    package static func valueLength(_ arch: String) -> String { "\(arch).attention.value_length" }
    package static func ropeFreqBase(_ arch: String) -> String { "\(arch).rope.freq_base" }
    package static func ropeDimensionCount(_ arch: String) -> String { "\(arch).rope.dimension_count" }
    package static func vocabSize(_ arch: String) -> String { "\(arch).vocab_size" }

    package static let tokenizerModel = "tokenizer.ggml.model"
    package static let tokenizerPre = "tokenizer.ggml.pre"
    package static let tokens = "tokenizer.ggml.tokens"
    package static let tokenTypes = "tokenizer.ggml.token_type"
    package static let scores = "tokenizer.ggml.scores"
    package static let merges = "tokenizer.ggml.merges"
    package static let bosTokenID = "tokenizer.ggml.bos_token_id"
    package static let eosTokenID = "tokenizer.ggml.eos_token_id"
    package static let eotTokenID = "tokenizer.ggml.eot_token_id"
    package static let eomTokenID = "tokenizer.ggml.eom_token_id"
    package static let unknownTokenID = "tokenizer.ggml.unknown_token_id"
    package static let paddingTokenID = "tokenizer.ggml.padding_token_id"
    package static let addBOS = "tokenizer.ggml.add_bos_token"
    package static let addEOS = "tokenizer.ggml.add_eos_token"
    package static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
    package static let chatTemplate = "tokenizer.chat_template"

    /// The value type a key must have; checked when a file is read, as llama.cpp does, so a wrong
    /// type fails at load with the key's name rather than later with a confusing shape error.
    package enum Expected: Equatable, Sendable {
        case scalar(GGUFValueType)
        case array(of: GGUFValueType)

        package var name: String {
            switch self {
            case .scalar(let type): return type.name
            case .array(let type): return "[\(type.name)]"
            }
        }
    }

    package static let expectedTypes: [String: Expected] = [
        architecture: .scalar(.string), alignment: .scalar(.uint32), name: .scalar(.string),
        fileType: .scalar(.uint32), quantizationVersion: .scalar(.uint32),
        tokenizerModel: .scalar(.string), tokenizerPre: .scalar(.string),
        tokens: .array(of: .string), tokenTypes: .array(of: .int32), scores: .array(of: .float32),
        merges: .array(of: .string), bosTokenID: .scalar(.uint32), eosTokenID: .scalar(.uint32),
        eotTokenID: .scalar(.uint32), eomTokenID: .scalar(.uint32), unknownTokenID: .scalar(.uint32),
        paddingTokenID: .scalar(.uint32), addBOS: .scalar(.bool), addEOS: .scalar(.bool),
        addSpacePrefix: .scalar(.bool), chatTemplate: .scalar(.string),
    ]

    /// Expected types of the architecture-prefixed keys.
    package static func expectedTypes(architecture arch: String) -> [String: Expected] {
        [
            contextLength(arch): .scalar(.uint32), embeddingLength(arch): .scalar(.uint32),
            blockCount(arch): .scalar(.uint32), feedForwardLength(arch): .scalar(.uint32),
            headCount(arch): .scalar(.uint32), kvHeadCount(arch): .scalar(.uint32),
            rmsNormEpsilon(arch): .scalar(.float32), keyLength(arch): .scalar(.uint32),
            valueLength(arch): .scalar(.uint32), ropeFreqBase(arch): .scalar(.float32),
            ropeDimensionCount(arch): .scalar(.uint32), vocabSize(arch): .scalar(.uint32),
        ]
    }
}
