// Builds the OpenAI-compatible HTTP application (routes, middleware) and runs it with graceful shutdown.
// `buildApplication` is separate from any @main so tests build the very same app the binary serves.

import Engine
import Hummingbird
import HummingbirdCore
import Metering
import NIOCore
import ServiceLifecycle
import Tokenization

/// Per-request context: Hummingbird's core storage plus which API key authorised the request.
package struct ServerRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// Index into `ServerConfig.apiKeys` (nil when no keys are configured).
    package var apiKeyIndex: Int?

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// The application the CLI serves and the tests drive. Throws when `config.chatTemplateOverride` names
/// no known template.
///
///     let app = try buildApplication(config: config, engine: engine, tokenizer: tokenizer, modelName: "smollm2")
///     try await runServer(app, config: config)   // returns after SIGTERM/SIGINT and the grace period
/// `onListening` runs once the socket is bound, with the bound port: only then may anything say it is serving
/// (a port already in use fails `runServer` instead).
package func buildApplication(
    config: ServerConfig, engine: any InferenceEngine, tokenizer: Tokenizer, modelName: String,
    metrics: ServerMetrics? = nil, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let router = try buildRouter(config: config, engine: engine, tokenizer: tokenizer, modelName: modelName,
                                 metrics: metrics ?? ServerMetrics(modelName: modelName))
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [ParserErrorHandler(), WriteTimeoutHandler(timeout: .nanoseconds(Int64(config.writeTimeout.inSeconds * 1e9)),
                                                                         sendBufferBytes: config.socketSendBuffer)],
        idleTimeout: .nanoseconds(Int64(config.idleTimeout.inSeconds * 1e9)),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: config.maxHeaderBytes, maxHeaderListSize: config.maxHeaderBytes,
                                        maxHeaderFieldCount: 100))
    return Application(router: router, server: .http1(configuration: http1),
                       configuration: .init(address: .hostname(config.host, port: config.port), serverName: "tally"),
                       onServerRunning: { channel in await onListening(channel.localAddress?.port ?? config.port) })
}

package func buildRouter(
    config: ServerConfig, engine: any InferenceEngine, tokenizer: Tokenizer, modelName: String,
    metrics: ServerMetrics? = nil
) throws -> Router<ServerRequestContext> {
    let metrics = metrics ?? ServerMetrics(modelName: modelName)
    let template = try config.chatTemplateOverride.map { try ChatTemplate.named($0) }
        ?? ChatTemplate.detect(tokenizer.chatTemplate).template
    let service = CompletionService(config: config, engine: engine, tokenizer: tokenizer, modelName: modelName,
                                    chatTemplate: template, jsonVocabulary: JSONVocabulary(tokenizer: tokenizer), metrics: metrics,
                                    rateLimiter: RateLimiter(config.rateLimits, now: config.clockMicros))

    let router = Router(context: ServerRequestContext.self)
    router.add(middleware: ErrorMiddleware<ServerRequestContext>(maxBodyBytes: config.maxBodyBytes, metrics: metrics))
    router.get("health") { _, _ -> Response in
        let ready = config.readiness.isReady
        return jsonResponse(.object([("status", .string(ready ? "ok" : "loading"))]), status: ready ? .ok : .serviceUnavailable)
    }
    let metricsAuth = AuthMiddleware(keys: config.metricsKey.map { [$0] } ?? [])
    router.group("metrics").add(middleware: metricsAuth).get { _, _ -> Response in
        let metering = await config.meter?.snapshot()
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: metrics.render(engine.snapshot(), metering: metering))))
    }
    let v1 = router.group("v1").add(middleware: AuthMiddleware(keys: config.apiKeys))
    v1.get("models") { _, _ -> Response in service.models() }
    v1.get("models/:id") { _, context -> Response in try service.model(id: context.parameters.require("id")) }
    v1.post("completions") { request, context -> Response in try await service.completions(request, context) }
    v1.post("chat/completions") { request, context -> Response in try await service.chatCompletions(request, context) }
    v1.post("embeddings") { request, context -> Response in try await service.embeddings(request, context) }
    v1.post("outcomes") { request, context -> Response in try await service.postOutcome(request, context) }
    if let directory = config.batchDirectory {
        try addBatchRoutes(to: v1, service: service, directory: directory, slots: config.batchSlots)
    }
    return router
}

/// Runs the application until SIGTERM or SIGINT, then lets in-flight requests finish for up to
/// `config.shutdownGracePeriod` before cancelling them (which aborts their engine requests).
package func runServer(_ app: some ApplicationProtocol, config: ServerConfig) async throws {
    var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: app.logger)
    configuration.maximumGracefulShutdownDuration = config.shutdownGracePeriod
    try await ServiceGroup(configuration: configuration).run()
}

func jsonResponse(_ body: JSON, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: body.serialized)))
}

/// `Authorization: Bearer KEY` against the configured keys: the presented key's SHA-256 is compared with
/// each key's, in constant time and always over every key, so neither timing nor the position of a match
/// tells an attacker anything (and a key file may hold digests instead of keys).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let keys: [[UInt8]]

    init(keys: [TenantKey]) { self.keys = keys.map(\.digest) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if keys.isEmpty { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw APIError.unauthorized
        }
        let presented = TenantKey.digest(of: Array(header.utf8.dropFirst("bearer ".utf8.count)))
        var found: Int?
        for (index, key) in keys.enumerated() where constantTimeEquals(presented, key) && found == nil {
            found = index
        }
        guard let found else { throw APIError.unauthorized }
        var context = context
        context.apiKeyIndex = found
        return try await next(request, context)
    }
}

/// Compares every byte of the longer input whatever the contents, so the time taken depends only on
/// the lengths.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = a.count ^ b.count
    for i in 0..<max(a.count, b.count) {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        difference |= Int(x ^ y)
    }
    return difference == 0
}
