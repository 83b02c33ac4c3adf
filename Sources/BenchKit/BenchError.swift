// BenchKit's errors, and the guard that keeps every run bounded and on loopback unless asked otherwise.

import Foundation

package enum BenchError: Error, Sendable, Equatable, CustomStringConvertible {
    case badWorkload(path: String, reason: String)
    case unbounded(String)
    case remoteTarget(host: String)
    case badURL(String)
    case badResults(path: String, reason: String)
    case needsTokens
    case badSLO(String)

    package var description: String {
        switch self {
        case .badWorkload(let path, let reason): return "workload \(path): \(reason); fix the file (see bench/workloads/README.md)"
        case .unbounded(let reason): return "\(reason); every run must be bounded in requests and seconds"
        case .remoteTarget(let host): return "\(host) is not a loopback address; pass --allow-remote to benchmark another machine on purpose"
        case .badURL(let url): return "cannot use the URL \(url); give a base URL such as http://127.0.0.1:8080"
        case .badResults(let path, let reason): return "results \(path): \(reason); pass a file written by `tally bench --json`"
        case .badSLO(let text): return "cannot read the SLO \"\(text)\"; write it as ttft=MS,tpot=MS (and e2e=MS), numbers > 0"
        case .needsTokens: return "an in-process run needs token ids; pass the model so its tokenizer builds the prompts"
        }
    }
}

/// Limits that hold for every run, whatever a workload file or a flag asks for.
package enum RunGuard {
    package static let maxRequests = 10_000
    package static let maxSeconds = 3_600.0

    package static func check(requests: Int, timeLimitSeconds: Double) throws {
        guard requests >= 1, requests <= maxRequests else {
            throw BenchError.unbounded("requests is \(requests) but must be in 1...\(maxRequests)")
        }
        guard timeLimitSeconds > 0, timeLimitSeconds <= maxSeconds else {
            throw BenchError.unbounded("time_limit_seconds is \(timeLimitSeconds) but must be in (0, \(Int(maxSeconds))]")
        }
    }

    /// Only loopback hosts unless the user opted in; a benchmark is a load test and must not hit a machine by accident.
    package static func checkTarget(url: String, allowRemote: Bool) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
              let host = components.host, !host.isEmpty else { throw BenchError.badURL(url) }
        if !allowRemote && !isLoopback(host) { throw BenchError.remoteTarget(host: host) }
    }

    package static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if bare == "localhost" || bare == "::1" { return true }
        let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
