// POST /v1/outcomes: the application says what a call or a workflow achieved, so `tally report` can give
// the cost per outcome ("cost per resolved case"). The body names one request (`request_id`, the id its
// response carried) or one workflow (`session_id`, the `X-Tally-Session` its calls sent), a `label` and
// an optional `value`. A tenant can mark only its own calls: another tenant's id is "not found".

import Foundation
import Hummingbird
import Metering

package struct OutcomeRequest: Decodable, Sendable {
    package var requestID: String?
    package var session: String?
    package var label: String
    package var value: Double?

    enum CodingKeys: String, CodingKey {
        case requestID = "request_id", session = "session_id", label, value
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestID = try c.decodeIfPresent(String.self, forKey: .requestID)
        session = try c.decodeIfPresent(String.self, forKey: .session)
        guard (requestID == nil) != (session == nil) else {
            throw APIError.invalid("send exactly one of request_id (one call) and session_id (every call of a workflow)",
                                   param: requestID == nil ? "request_id" : "session_id")
        }
        if let session, !UsageRecord.isValidName(session) {
            throw APIError.invalid("session_id must be 1-\(UsageRecord.maxNameLength) visible ASCII characters", param: "session_id")
        }
        guard c.contains(.label) else { throw APIError.invalid("label is required, for example \"resolved\"", param: "label") }
        label = try c.decode(String.self, forKey: .label)
        guard UsageRecord.isValidName(label) else {
            throw APIError.invalid("label must be 1-\(UsageRecord.maxNameLength) visible ASCII characters, for example \"resolved\"", param: "label")
        }
        value = try c.decodeIfPresent(Double.self, forKey: .value)
        if let value, !value.isFinite { throw APIError.invalid("value must be a finite number", param: "value") }
    }
}

extension CompletionService {
    /// Stores the outcome once the request or session is found among the caller's own records.
    func postOutcome(_ request: Request, _ context: ServerRequestContext) async throws -> Response {
        guard let meter = config.meter else {
            throw APIError(status: .notFound, message: "this server runs without metering (--no-metering), so it keeps no outcomes",
                           code: "metering_disabled")
        }
        let wire = try decodeRequest(OutcomeRequest.self, from: try await readBody(request))
        let tenant = tenant(of: context)
        let calls: Int
        do {
            if let id = wire.requestID {
                let record = try await meter.store.record(id: id)
                calls = record.map { $0.tenant == tenant ? 1 : 0 } ?? 0
            } else {
                calls = try await meter.store.calls(session: wire.session!, tenant: tenant)
            }
        } catch {
            throw APIError.storeUnavailable(error)
        }
        guard calls > 0 else {
            let (what, param) = wire.requestID.map { ("request \($0.debugDescription)", "request_id") }
                ?? ("session \(wire.session!.debugDescription)", "session_id")
            throw APIError(status: .notFound, message: "no \(what) of this API key is recorded; send the id a response carried (or the X-Tally-Session its calls sent)",
                           param: param, code: "not_found")
        }
        let created = Date()
        let outcome = Outcome(id: "outcome-" + UUID().uuidString.lowercased(), timeMicros: UTC.micros(created), tenant: tenant,
                              requestID: wire.requestID, session: wire.session, label: wire.label, value: wire.value)
        do { try await meter.store.appendOutcome(outcome) } catch { throw APIError.storeUnavailable(error) }
        return jsonResponse(.object([
            ("id", .string(outcome.id)), ("object", .string("outcome")), ("created", .int(Int(created.timeIntervalSince1970))),
            ("request_id", .optional(outcome.requestID)), ("session_id", .optional(outcome.session)),
            ("label", .string(outcome.label)), ("value", outcome.value.map(JSON.double) ?? .null), ("calls", .int(calls)),
        ]))
    }
}
