// Outcomes: what a call or a workflow achieved, posted by the application (`POST /v1/outcomes`), so a
// report can say what a resolved case cost. An outcome marks either one request (by the id its response
// carried) or every call of one workflow (`X-Tally-Session`), and only the calls of the tenant that posted it.

import Foundation

/// One mark, as stored. Exactly one of `requestID` and `session` is set.
package struct Outcome: Sendable, Equatable, Codable, Hashable {
    /// `outcome-` + random; unique per store.
    package var id: String
    /// When it was posted, Unix µs.
    package var timeMicros: Int64
    /// The posting tenant (as in `UsageRecord.tenant`); it can mark only its own calls.
    package var tenant: String?
    package var requestID: String?
    package var session: String?
    /// What was achieved, for example `resolved` or `escalated` (`UsageRecord.isValidName`).
    package var label: String
    /// An optional number the application attaches (revenue, a score); summed per label in reports.
    package var value: Double?

    package init(id: String, timeMicros: Int64, tenant: String?, requestID: String? = nil, session: String? = nil,
                 label: String, value: Double? = nil) {
        self.id = id
        self.timeMicros = timeMicros
        self.tenant = tenant
        self.requestID = requestID
        self.session = session
        self.label = label
        self.value = value
    }

    /// Whether this outcome marks `record`: same tenant, and its request id or its session.
    package func marks(_ record: UsageRecord) -> Bool {
        guard record.tenant == tenant else { return false }
        if let requestID { return record.id == requestID }
        if let session { return record.session == session }
        return false
    }
}
