// Errors of the model runtime: every shape or metadata problem found at load, named with its tensor or key.

import GGUF

package enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String)
    case badHyperParameter(key: String, value: String, reason: String)
    case badTensorShape(tensor: String, expected: [Int], found: [Int])
    case unsupportedWeightType(tensor: String, type: String)
    case model(GGUFError)
    case batchTooLarge(tokens: Int, limit: Int)
    case contextExceeded(position: Int, contextLength: Int)

    package var description: String {
        switch self {
        case .unsupportedArchitecture(let arch):
            return "model architecture '\(arch)' is not supported (tally runs \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))); use a GGUF of one of these"
        case .badHyperParameter(let key, let value, let reason):
            return "\(key) = \(value) is invalid: \(reason); the model file is inconsistent, re-convert it"
        case .badTensorShape(let tensor, let expected, let found):
            return "tensor '\(tensor)' has shape \(found), expected \(expected) from the hyper-parameters; the model file is inconsistent, re-convert it"
        case .unsupportedWeightType(let tensor, let type):
            return "tensor '\(tensor)' is \(type), which the runtime cannot use for this role; convert the model with `tally quantize`"
        case .model(let error):
            return error.description
        case .batchTooLarge(let tokens, let limit):
            return "a batch of \(tokens) tokens exceeds the workspace limit of \(limit); split it into smaller steps"
        case .contextExceeded(let position, let contextLength):
            return "position \(position) is beyond the context length \(contextLength); shorten the prompt or the generation"
        }
    }
}
