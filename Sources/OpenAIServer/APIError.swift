// The server's one error type: every failure a client sees is an OpenAI error envelope
// {"error": {"message", "type", "param", "code"}} with the right status. ErrorMiddleware turns anything
// thrown by a route (or by Hummingbird itself: unknown route, body too large) into one of these.

import Engine
import Hummingbird
import Sampling

package struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    package var status: HTTPResponse.Status
    package var message: String
    package var type: String
    package var param: String?
    package var code: String?
    package var headers: HTTPFields = [:]

    package init(status: HTTPResponse.Status, message: String, type: String = "invalid_request_error",
                 param: String? = nil, code: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
    }

    package var description: String { "\(status.code) \(type): \(message)" }

    package var envelope: JSON {
        .object([("error", .object([
            ("message", .string(message)), ("type", .string(type)),
            ("param", .optional(param)), ("code", .optional(code)),
        ]))])
    }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: envelope.serialized)))
    }

    // MARK: The kinds of error

    package static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, param: param, code: code)
    }

    package static func malformedJSON(_ detail: String) -> APIError {
        invalid("the request body is not valid JSON (\(detail)); send a JSON object", code: "invalid_json")
    }

    package static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "the request body is larger than \(limit) bytes; send a smaller request",
                 code: "request_too_large")
    }

    package static let unauthorized = APIError(
        status: .unauthorized,
        message: "missing or incorrect API key; send it as 'Authorization: Bearer KEY' with a key the server was started with",
        code: "invalid_api_key")

    package static let notReady = APIError(
        status: .serviceUnavailable, message: "the model is still loading; retry when GET /health answers 200",
        type: "server_error", code: "model_loading")

    package static func notFound(_ method: HTTPRequest.Method, _ path: String) -> APIError {
        APIError(status: .notFound, message: "no route \(method) \(path); see GET /v1/models, POST /v1/completions, POST /v1/chat/completions",
                 type: "invalid_request_error", code: "not_found")
    }

    /// OpenAI's answer to a model it does not serve.
    package static func modelNotFound(_ name: String, served: String, param: String?) -> APIError {
        APIError(status: .notFound, message: "the model \(name.debugDescription) does not exist; this server serves \(served.debugDescription) (see GET /v1/models)",
                 param: param, code: "model_not_found")
    }

    package static func sampling(_ error: SamplingError) -> APIError {
        invalid(error.description, param: error.parameter)
    }

    /// `promptParam`: "prompt" or "messages", named by context-length errors.
    package static func engine(_ error: EngineError, retryAfterSeconds: Int, promptParam: String = "prompt") -> APIError {
        switch error {
        case .queueFull:
            return APIError(status: .tooManyRequests, message: error.description, type: "rate_limit_error",
                            code: "queue_full", headers: [.retryAfter: String(retryAfterSeconds)])
        case .promptTooLong:
            return invalid(error.description, param: promptParam, code: "context_length_exceeded")
        case .emptyPrompt:
            return invalid(error.description, param: promptParam)
        case .shuttingDown:
            return APIError(status: .serviceUnavailable, message: error.description, type: "server_error",
                            code: "shutting_down")
        case .internalError:
            return APIError(status: .internalServerError, message: error.description, type: "server_error")
        }
    }

    /// A per-key rate limit (`--rpm`, `--tpm`) refused the request; Retry-After says when it would fit.
    package static func rateLimited(_ message: String, retryAfterSeconds: Int?) -> APIError {
        APIError(status: .tooManyRequests, message: message + (retryAfterSeconds.map { "; retry in \($0) s" } ?? ""),
                 type: "rate_limit_error", code: "rate_limit_exceeded",
                 headers: retryAfterSeconds.map { [.retryAfter: String($0)] } ?? [:])
    }

    /// A budget refused the request (output-token cap or spend limit); the message says which and until when.
    package static func budgetExceeded(_ message: String) -> APIError {
        APIError(status: .tooManyRequests, message: message, type: "insufficient_quota", code: "budget_exceeded")
    }

    /// `--require-metering` and the usage store is failing: no unmetered work.
    package static let meteringUnavailable = APIError(
        status: .serviceUnavailable, message: "usage records cannot be written right now and this server does not serve unmetered; retry shortly",
        type: "server_error", code: "metering_unavailable", headers: [.retryAfter: "1"])

    /// The usage store failed a read or write a route needs (outcomes); the request can be retried.
    package static func storeUnavailable(_ error: any Error) -> APIError {
        APIError(status: .serviceUnavailable, message: "the usage store failed: \(error); retry later", type: "server_error",
                 code: "store_unavailable")
    }

    package static func internalError(_ error: any Error) -> APIError {
        APIError(status: .internalServerError, message: "internal error: \(error); this is a bug, please report it",
                 type: "server_error")
    }
}

/// Outermost middleware: any error becomes an OpenAI envelope.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            metrics.recordRejected(status: Int(error.status.code))
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let apiError: APIError
            switch error.status {
            case .notFound, .methodNotAllowed: apiError = .notFound(request.method, request.uri.path)
            case .contentTooLarge: apiError = .bodyTooLarge(limit: maxBodyBytes)
            default:
                apiError = APIError(status: error.status, message: error.body ?? error.status.reasonPhrase,
                                    type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
            }
            metrics.recordRejected(status: Int(apiError.status.code))
            return try apiError.response(from: request, context: context)
        } catch {
            metrics.recordRejected(status: 500)
            return try APIError.internalError(error).response(from: request, context: context)
        }
    }
}
