// The one error type of the Metering module: store, price files, profiles and budgets.
// Each message says what went wrong and what to do next.

import Foundation

package enum MeteringError: Error, Equatable, CustomStringConvertible {
    /// The SQLite file could not be opened or a statement failed.
    case storeFailed(path: String, operation: String, reason: String)
    /// The database was written by a newer tally whose schema this build does not know.
    case schemaTooNew(path: String, found: Int, known: Int)
    /// A stored row could not be turned back into a record.
    case corruptRow(path: String, id: String, reason: String)
    /// The store was used after `close()`.
    case storeClosed
    /// A price file could not be read or has neither the tally nor the LiteLLM shape.
    case badPriceFile(path: String, reason: String)
    /// A profile file (machine or GPU) could not be read.
    case badProfileFile(path: String, reason: String)
    /// A price, machine or GPU profile name that the loaded files do not have.
    case unknownProfile(kind: String, name: String, known: [String])
    /// A budget file could not be read or names something unknown.
    case badBudgetFile(path: String, reason: String)
    /// An API key file line that is neither `KEY`, `NAME:KEY` nor `NAME:sha256:HEX`.
    case invalidKeyFile(String)

    /// The message without the advice, for wrapping in a longer one.
    package var reason: String {
        if case .invalidKeyFile(let reason) = self { return reason }
        return description
    }

    package var description: String {
        switch self {
        case .storeFailed(let path, let operation, let reason) where PostgresUsageStore.isURL(path):
            return "usage store \(path): \(operation) failed: \(reason). Check that PostgreSQL runs there, accepts this user and lets it create tables, or pass another --db."
        case .storeFailed(let path, let operation, let reason):
            return "usage store \(path): \(operation) failed: \(reason). Check the path is writable and not used by another tally, or pass another --db."
        case .schemaTooNew(let path, let found, let known):
            return "usage store \(path) has schema version \(found) but this tally knows up to \(known). Use a newer tally, or pass another --db."
        case .corruptRow(let path, let id, let reason):
            return "usage store \(path): record \(id) cannot be read (\(reason)). Restore the file from a backup or move it aside and start a new --db."
        case .storeClosed:
            return "usage store is closed. Open a new store before appending or querying."
        case .badPriceFile(let path, let reason):
            return "price file \(path): \(reason). Pass a tally price file (\"models\": [...]) or LiteLLM's model_prices_and_context_window.json with --prices."
        case .badProfileFile(let path, let reason):
            return "profile file \(path): \(reason). Fix the file or leave the flag out to use the shipped profiles."
        case .unknownProfile(let kind, let name, let known):
            return "no \(kind) named \"\(name)\". Known: \(known.joined(separator: ", ")). Pick one of these or add it to the file."
        case .badBudgetFile(let path, let reason):
            return "budget file \(path): \(reason). See README \"Budgets\" for the format."
        case .invalidKeyFile(let reason):
            return "API key file: \(reason). Each line is KEY, NAME:KEY, sha256:HEX or NAME:sha256:HEX (README \"Tenants, workflows and outcomes\")."
        }
    }
}
