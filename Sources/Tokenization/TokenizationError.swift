// Errors of the Tokenization module: a GGUF whose tokenizer metadata is missing, malformed or of a kind
// tally does not implement, and unknown chat-template names. Every message ends with what to do next.

import GGUF

package enum TokenizationError: Error, Equatable, CustomStringConvertible {
    /// A required tokenizer key is absent.
    case missingKey(String)
    /// A key is present but unusable (wrong type, wrong length, out-of-range id).
    case badMetadata(key: String, reason: String)
    /// `tokenizer.ggml.model` names a tokenizer family tally does not implement.
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer tally does not implement.
    case unknownPreTokenizer(String, supported: [String])
    /// `--chat-template NAME` names no template tally can render.
    case unknownChatTemplate(String, known: [String])
    /// The model file could not be read.
    case cannotRead(path: String, reason: String)

    package var description: String {
        switch self {
        case .missingKey(let key):
            return "the GGUF has no '\(key)': it carries no usable tokenizer; use a GGUF converted together with its tokenizer (llama.cpp convert_hf_to_gguf.py or tally pull)"
        case .badMetadata(let key, let reason):
            return "tokenizer metadata '\(key)' is unusable: \(reason); re-convert the model with a current llama.cpp or gguf-py"
        case .unsupportedModel(let name):
            return "tokenizer model '\(name)' is not supported (tally implements 'gpt2' byte-level BPE and 'llama' SentencePiece BPE); use a model with one of those tokenizers"
        case .unknownPreTokenizer(let name, let supported):
            return "pre-tokenizer '\(name)' (tokenizer.ggml.pre) is not supported; supported: \(supported.joined(separator: ", ")). Its split rules differ, so tokens would be wrong: use a model with a supported pre-tokenizer or add its rules to PreTokenizer.swift"
        case .unknownChatTemplate(let name, let known):
            return "unknown chat template '\(name)'; known names: \(known.joined(separator: ", ")); pass one of them to --chat-template or omit it to use the model's own"
        case .cannotRead(let path, let reason):
            return "cannot read tokenizer from '\(path)': \(reason); check the path points to a GGUF model file"
        }
    }

    init(_ error: GGUFError, key: String) {
        if case .missingKey(let missing) = error {
            self = .missingKey(missing)
        } else {
            self = .badMetadata(key: key, reason: error.description)
        }
    }
}
