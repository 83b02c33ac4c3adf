// Errors of the Sampling module: a request's sampling parameter is out of range. The HTTP layer maps
// these to 400s, using `parameter` (the wire name) and `description`.

package enum SamplingError: Error, Equatable, CustomStringConvertible {
    /// `parameter` is the wire name (`top_p`, not `topP`); `allowed` is the range in words.
    case invalidParameter(parameter: String, value: String, allowed: String)

    /// The wire name of the offending parameter.
    package var parameter: String {
        switch self {
        case .invalidParameter(let parameter, _, _): return parameter
        }
    }

    package var description: String {
        switch self {
        case .invalidParameter(let parameter, let value, let allowed):
            return "\(parameter) is \(value) but must be \(allowed); send a value in that range or omit \(parameter) to use its default"
        }
    }
}
