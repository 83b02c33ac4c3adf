// The generation routes: wire request -> prompt tokens -> EngineRequest -> engine stream -> TextPipeline
// -> one JSON body or SSE chunks; usage comes back through the request's UsageRecorder. Both endpoints and
// both modes share `prepare` and `generate`; only the shape of what is written differs (ResponseShapes.swift).

import Engine
import Foundation
import GGUF
import HTTPTypes
import Hummingbird
import Metering
import Sampling
import Synchronization
import Tokenization

/// A validated generation request, ready for the engine.
struct PreparedGeneration: Sendable {
    var engineRequest: EngineRequest
    var stops: [String]
    var stream: Bool
    var includeUsage: Bool
    var user: String?
    var cacheSalt: String?
    /// `max_tokens` as sent (nil: not sent); budgets reject explicit ones over a cap and cap the rest.
    var requestedMaxTokens: Int?
    /// Completions with `echo`: the prompt text that starts the choice's text.
    var echoText: String?
    var wantLogprobs: Bool
    /// "prompt" or "messages": what errors about the prompt name.
    var promptParam: String
    /// Chat with tools: where the reply's tool call is.
    var toolCall: ToolCallPlan?
}

/// Hands the engine stream to exactly one consumer. When that consumer returns, the stream is released
/// at once, which ends it and makes the engine abort the request (a stop string matched, or a write to
/// a departed client failed) instead of generating on until max_tokens.
final class StreamHandle: @unchecked Sendable {
    private var stream: AsyncThrowingStream<EngineEvent, any Error>?
    private let lock = NSLock()

    init(_ stream: AsyncThrowingStream<EngineEvent, any Error>) { self.stream = stream }

    func take() -> AsyncThrowingStream<EngineEvent, any Error>? {
        lock.lock()
        defer { lock.unlock() }
        defer { stream = nil }
        return stream
    }
}

/// The model's vocabulary as JSON mode's mask reads it: each token's text (none for control and unknown
/// tokens, which JSON text never holds), made once, at the first request that needs it.
final class JSONVocabulary: Sendable {
    private let tokenizer: Tokenizer
    private let made = Mutex<ConstraintVocabulary?>(nil)

    init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    func get() -> ConstraintVocabulary {
        made.withLock { made in
            if let made { return made }
            let vocabulary = ConstraintVocabulary(tokenBytes: (0..<tokenizer.vocabularySize).map { id in
                let type = tokenizer.tokenType(TokenID(id))
                return type == .control || type == .unknown ? [] : tokenizer.pieceBytes(TokenID(id))
            })
            made = vocabulary
            return vocabulary
        }
    }
}

struct CompletionService: Sendable {
    let config: ServerConfig
    let engine: any InferenceEngine
    let tokenizer: Tokenizer
    let modelName: String
    let chatTemplate: ChatTemplate
    /// The vocabulary as JSON mode's token mask reads it (made at the first JSON-mode request).
    let jsonVocabulary: JSONVocabulary
    let grammars = GrammarCache()
    let metrics: ServerMetrics
    let rateLimiter: RateLimiter
    /// When the server started: the `created` of the model object (a completion's is its request's time).
    let started = Int(Date().timeIntervalSince1970)

    // MARK: Routes

    func models() -> Response {
        jsonResponse(.object([("object", .string("list")), ("data", .array([modelObject]))]))
    }

    /// GET /v1/models/{id}: the served model under its name or an alias, else OpenAI's 404.
    func model(id: String) throws -> Response {
        try checkModel(id, param: nil)
        return jsonResponse(modelObject)
    }

    private var modelObject: JSON {
        .object([
            ("id", .string(modelName)), ("object", .string("model")), ("created", .int(started)),
            ("owned_by", .string("tally")), ("max_model_len", .int(engine.contextLength)),
        ])
    }

    /// A request's `model` must be the served name or one of its aliases (`--alias`); omitted, it is the
    /// served model.
    func checkModel(_ name: String?, param: String? = "model") throws {
        guard let name, name != modelName, !config.modelAliases.contains(name) else { return }
        throw APIError.modelNotFound(name, served: modelName, param: param)
    }

    func completions(_ request: Request, _ context: ServerRequestContext) async throws -> Response {
        let arrival = ContinuousClock.now
        return try await completions(body: try await readBody(request), arrival: arrival, from: .http(request, context))
    }

    func chatCompletions(_ request: Request, _ context: ServerRequestContext) async throws -> Response {
        let arrival = ContinuousClock.now
        return try await chatCompletions(body: try await readBody(request), arrival: arrival, from: .http(request, context))
    }

    /// POST /v1/completions's body, from an HTTP request or a batch line.
    func completions(body: [UInt8], arrival: ContinuousClock.Instant, from origin: Origin) async throws -> Response {
        let created = Int(Date().timeIntervalSince1970)
        let wire = try decodeRequest(CompletionRequest.self, from: body)
        let fields = wire.fields
        try checkModel(fields.model)
        let promptTokens: [TokenID]
        let echoText: String?
        switch wire.prompt {
        case .text(let text):
            promptTokens = withBOS(tokenizer.encode(text, parseSpecial: true))
            echoText = wire.echo ? text : nil
        case .tokens(let ids):
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                throw APIError.invalid("prompt has token id \(bad) but the vocabulary has ids 0..<\(tokenizer.vocabularySize)", param: "prompt")
            }
            promptTokens = ids
            echoText = wire.echo ? tokenizer.decode(ids, renderSpecial: true) : nil
        }
        if let logprobs = wire.logprobs, !(0...config.maxTopLogprobs).contains(logprobs) {
            throw APIError.invalid("logprobs is \(logprobs) but must be between 0 and \(config.maxTopLogprobs)", param: "logprobs")
        }
        // echo with max_tokens 0 scores the prompt without generating (what perplexity scorers send).
        var prepared = try prepare(fields, promptTokens: promptTokens, promptParam: "prompt", maxTokens: fields.maxTokens,
                                   maxTokensParam: "max_tokens", minimumMaxTokens: wire.echo ? 0 : 1, topLogprobs: wire.logprobs,
                                   echoText: echoText, idPrefix: "cmpl-", arrival: arrival)
        if wire.echo { prepared.engineRequest.promptLogprobs = wire.logprobs }
        let shape = ResponseShape.completion(id: prepared.engineRequest.id, created: created, model: modelName,
                                             tokenizer: tokenizer, echoOffset: echoText?.unicodeScalars.count ?? 0)
        return try await respond(prepared, shape: shape, from: origin)
    }

    /// POST /v1/chat/completions's body, from an HTTP request or a batch line.
    func chatCompletions(body: [UInt8], arrival: ContinuousClock.Instant, from origin: Origin) async throws -> Response {
        let created = Int(Date().timeIntervalSince1970)
        let wire = try decodeRequest(ChatCompletionRequest.self, from: body)
        try checkModel(wire.fields.model)
        guard !wire.messages.isEmpty else {
            throw APIError.invalid("messages is empty; send at least one message", param: "messages")
        }
        if let top = wire.topLogprobs {
            guard (0...config.maxTopLogprobs).contains(top) else {
                throw APIError.invalid("top_logprobs is \(top) but must be between 0 and \(config.maxTopLogprobs)", param: "top_logprobs")
            }
            guard wire.logprobs else {
                throw APIError.invalid("top_logprobs needs logprobs: true; set logprobs or drop top_logprobs", param: "top_logprobs")
            }
        }
        var template = chatTemplate
        if let name = wire.chatTemplate {
            guard let named = ChatTemplate(name: name) else {
                throw APIError.invalid("chat_template \(name.debugDescription) is unknown; use one of \(ChatTemplate.names.joined(separator: ", "))",
                                       param: "chat_template")
            }
            template = named
        }
        // Only what the request needs is parsed again in order (Codable loses key order): schemas.
        let ordered = wire.responseFormat != .text || wire.toolChoice != .none ? try JSON(parsing: body) : JSON.null
        let tools = try toolCalling(wire, template: template, body: ordered)
        let history = wire.messages.contains { $0.role == "tool" || !$0.toolCalls.isEmpty }
        if history && template.toolFormat == nil {
            throw APIError.invalid("messages hold tool calls or results, which the \(template.name) chat template cannot write", param: "messages")
        }
        // Special-token text inside a message is the user's text, never a turn marker (no forged roles).
        let rendered = template.toolFormat != nil && (tools != nil || history)
            ? template.renderMarked(wire.messages, tools: tools?.tools ?? [], addGenerationPrompt: true, replyPrefix: tools?.plan.replyPrefix ?? "")
            : template.renderMarked(wire.messages, addGenerationPrompt: true)
        let promptTokens = withBOS(tokenizer.encode(rendered))
        var prepared = try prepare(wire.fields, promptTokens: promptTokens, promptParam: "messages",
                                   maxTokens: wire.maxCompletionTokens ?? wire.fields.maxTokens,
                                   maxTokensParam: wire.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens",
                                   topLogprobs: wire.logprobs ? (wire.topLogprobs ?? 0) : nil, echoText: nil,
                                   idPrefix: "chatcmpl-", arrival: arrival)
        switch wire.responseFormat {
        case .text: break
        case .jsonObject: prepared.engineRequest.constraint = JSONConstraint(vocabulary: jsonVocabulary.get())
        case .jsonSchema(_, let strict):
            let param = "response_format.json_schema.schema"
            guard let schema = ordered["response_format"]?["json_schema"]?["schema"] else {
                throw APIError.invalid("\(param) is required", param: param)
            }
            let grammar = try grammars.grammar(schema, strict: strict, param: param)
            prepared.engineRequest.constraint = JSONConstraint(vocabulary: jsonVocabulary.get(), grammar: grammar)
        }
        if let tools {
            prepared.engineRequest.constraint = tools.plan.constraint(tools.grammar, vocabulary: jsonVocabulary.get())
            prepared.toolCall = tools.plan
        }
        let shape = ResponseShape.chat(id: prepared.engineRequest.id, created: created, model: modelName, tokenizer: tokenizer)
        return try await respond(prepared, shape: shape, from: origin)
    }

    // MARK: Shared steps

    func readBody(_ request: Request, limit: Int? = nil) async throws -> [UInt8] {
        guard config.readiness.isReady else { throw APIError.notReady }
        let limit = limit ?? config.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.bodyTooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: limit)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // The HTTP parser refused the body's framing (a bad chunk size, a connection cut mid-body): the
            // client's fault, not ours.
            throw APIError.invalid("the request body could not be read: \(error); send a well-formed HTTP body", code: "invalid_body")
        }
        guard buffer.readableBytes > 0 else { throw APIError.malformedJSON("the body is empty") }
        return Array(buffer.readableBytesView)
    }

    /// Logprobs entries of an echoed prompt: the first token has none, token i + 1 has `scored[i]`; text
    /// offsets are where each token's text starts in the detokenized prompt.
    func promptEntries(_ prompt: [TokenID], _ scored: [TokenLogprob]) -> [TokenLogprobEntry] {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var offset = 0
        return prompt.enumerated().map { i, token in
            let start = offset
            offset += detokenizer.append(token).unicodeScalars.count
            let lp = i == 0 || i > scored.count ? nil : scored[i - 1]
            return TokenLogprobEntry(token: token, logprob: lp?.logprob, top: lp?.top.map { .init(token: $0.token, logprob: $0.logprob) },
                                     textOffset: start, fromPrompt: true)
        }
    }

    func withBOS(_ tokens: [TokenID]) -> [TokenID] {
        guard tokenizer.addBOS, let bos = tokenizer.bosTokenID, tokens.first != bos else { return tokens }
        return [bos] + tokens
    }

    private func prepare(
        _ fields: GenerationFields, promptTokens: [TokenID], promptParam: String, maxTokens: Int?, maxTokensParam: String,
        minimumMaxTokens: Int = 1, topLogprobs: Int?, echoText: String?, idPrefix: String, arrival: ContinuousClock.Instant
    ) throws -> PreparedGeneration {
        if let n = fields.n, n != 1 {
            throw APIError.invalid("n is \(n) but this server returns one choice per request; send n: 1 (or omit it) and repeat the request for more", param: "n")
        }
        guard !promptTokens.isEmpty else { throw APIError.invalid("the prompt is empty; send at least one token", param: promptParam) }
        var sampling = SamplingParams()
        if let v = fields.temperature { sampling.temperature = v }
        if let v = fields.topP { sampling.topP = v }
        if let v = fields.topK { sampling.topK = v }
        if let v = fields.minP { sampling.minP = v }
        if let v = fields.presencePenalty { sampling.presencePenalty = v }
        if let v = fields.frequencyPenalty { sampling.frequencyPenalty = v }
        if let v = fields.repetitionPenalty { sampling.repetitionPenalty = v }
        sampling.seed = fields.seed
        if case .failure(let error) = Result(catching: { () throws(SamplingError) in try sampling.validate() }) {
            throw APIError.sampling(error)
        }

        let context = engine.contextLength
        guard promptTokens.count < context else {
            throw APIError.invalid("the prompt has \(promptTokens.count) tokens but the model's context holds \(context) including at least one generated token; shorten the prompt",
                                   param: promptParam, code: "context_length_exceeded")
        }
        let limit: Int
        if let maxTokens {
            guard maxTokens >= minimumMaxTokens else {
                throw APIError.invalid("\(maxTokensParam) is \(maxTokens) but must be at least \(minimumMaxTokens)"
                                       + (minimumMaxTokens == 1 ? " (0 only with echo, to score the prompt)" : ""), param: maxTokensParam)
            }
            guard promptTokens.count + maxTokens <= context else {
                throw APIError.invalid("the prompt has \(promptTokens.count) tokens and \(maxTokensParam) is \(maxTokens), but the model's context holds \(context); lower \(maxTokensParam) to at most \(context - promptTokens.count) or shorten the prompt",
                                       param: maxTokensParam, code: "context_length_exceeded")
            }
            limit = maxTokens
        } else {
            limit = context - promptTokens.count
        }
        let request = EngineRequest(id: idPrefix + Self.randomID(), promptTokens: promptTokens, sampling: sampling,
                                    maxTokens: limit, stopTokenIDs: tokenizer.endOfGenerationIDs,
                                    ignoreEOS: fields.ignoreEOS, topLogprobs: topLogprobs, arrival: arrival)
        return PreparedGeneration(engineRequest: request, stops: fields.stop, stream: fields.stream,
                                  includeUsage: fields.includeUsage, user: fields.user, cacheSalt: fields.cacheSalt,
                                  requestedMaxTokens: maxTokens,
                                  echoText: echoText,
                                  wantLogprobs: topLogprobs != nil, promptParam: promptParam)
    }

    static func randomID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<24).map { _ in alphabet.randomElement()! })
    }

    private func respond(_ prepared: PreparedGeneration, shape: ResponseShape, from origin: Origin) async throws -> Response {
        var prepared = prepared
        let (tenant, tags, session) = try await caller(origin)
        if case .batch = origin {
            guard !prepared.stream else { throw APIError.invalid("stream is not supported in a batch; remove it", param: "stream") }
            prepared.engineRequest.priority = .batch
        }
        let meter = config.meter
        if let meter {
            switch await meter.admit(tenant: tenant, requestedMaxOutputTokens: prepared.requestedMaxTokens) {
            case .reject(let message):
                throw APIError.budgetExceeded(message)
            case .allow(let cap):
                if let cap { prepared.engineRequest.maxTokens = min(prepared.engineRequest.maxTokens, cap) }
            }
        }
        // Counted at admission, as OpenAI does: the prompt plus the most the request may generate.
        // (Batch lines are paced by the batch runner, not the rate limits.)
        let asked = prepared.engineRequest.promptTokens.count + prepared.engineRequest.maxTokens
        if case .http = origin, case .refuse(let message, let retryAfter) = rateLimiter.admit(tenant: tenant, tokens: asked) {
            throw APIError.rateLimited(message, retryAfterSeconds: retryAfter)
        }
        prepared.engineRequest.cacheSalt = cacheSalt(tenant: tenant, requested: prepared.cacheSalt)
        let recorder = UsageRecorder(requestID: prepared.engineRequest.id, arrival: prepared.engineRequest.arrival,
                                     model: modelName, modelShape: config.modelShape, tenant: tenant, user: prepared.user,
                                     tags: tags, session: session, replica: config.replica, meter: meter, metrics: metrics,
                                     logger: config.logger)
        prepared.engineRequest.onFinish = { reason, stats in recorder.finished(reason, stats) }

        // Submit before any response is started, so a full queue or a too-long prompt is a plain error
        // status rather than an error inside a 200 event stream.
        let handle: StreamHandle
        switch Result(catching: { () throws(EngineError) in try engine.submit(prepared.engineRequest) }) {
        case .success(let stream): handle = StreamHandle(stream)
        case .failure(let error):
            throw APIError.engine(error, retryAfterSeconds: config.retryAfterSeconds, promptParam: prepared.promptParam)
        }
        // Durable first: a response's body or final chunk goes out only after `recorder.usage()` returned.
        if !prepared.stream {
            var text = ""
            var logprobs: [TokenLogprobEntry] = []
            let finishReason = try await generate(prepared, handle: handle) { delta in
                text += delta.text
                logprobs += delta.logprobs
            }
            let usage = await recorder.usage()
            if let plan = prepared.toolCall, let (content, call) = plan.split(text) {
                return jsonResponse(shape.body(text: content, logprobs: prepared.wantLogprobs ? logprobs : nil,
                                               finishReason: "tool_calls", usage: usage, toolCalls: [call]))
            }
            return jsonResponse(shape.body(text: text, logprobs: prepared.wantLogprobs ? logprobs : nil,
                                           finishReason: finishReason, usage: usage))
        }
        let service = self, generation = prepared
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                func send(_ json: JSON) async throws {
                    try await writer.write(ByteBuffer(string: "data: \(json.serialized)\n\n"))
                }
                let usageNull = generation.includeUsage
                if let first = shape.firstChunk(usageNull: usageNull) { try await send(first) }
                do {
                    // With tools, text that may open a call is held back (all of it when the call is forced);
                    // the call goes out whole once the reply is complete.
                    var held = generation.toolCall.map { ToolCallHold(plan: $0) }
                    var finishReason = try await service.generate(generation, handle: handle) { delta in
                        let text = held?.append(delta.text) ?? delta.text
                        if text.isEmpty && (held != nil || delta.isEmpty) { return }
                        try await send(shape.chunk(text: text, logprobs: generation.wantLogprobs ? delta.logprobs : nil,
                                                   finishReason: nil, usageNull: usageNull))
                    }
                    if let (rest, call) = held?.finish() {
                        if !rest.isEmpty { try await send(shape.chunk(text: rest, logprobs: nil, finishReason: nil, usageNull: usageNull)) }
                        if let call {
                            try await send(shape.chunk(text: "", logprobs: nil, finishReason: nil, usageNull: usageNull, toolCalls: [call]))
                            finishReason = "tool_calls"
                        }
                    }
                    let usage = await recorder.usage()
                    try await send(shape.chunk(text: "", logprobs: nil, finishReason: finishReason, usageNull: usageNull))
                    if generation.includeUsage { try await send(shape.usageChunk(usage)) }
                } catch let error as APIError {
                    // The 200 and earlier chunks are already sent: report the failure as an error event.
                    try await send(error.envelope)
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
    }

    /// Where a request comes from: an HTTP request, or a line of a batch (its owner's tenant; its records
    /// tagged "batch" in the batch's session).
    enum Origin {
        case http(Request, ServerRequestContext)
        case batch(tenant: String?, batchID: String)
    }

    /// Who is asking and how the request is labelled; a 503 while metering is required and the store is down.
    func caller(_ origin: Origin) async throws -> (tenant: String?, tags: [String], session: String?) {
        switch origin {
        case .http(let request, let context): return try await caller(request, context)
        case .batch(let tenant, let batchID):
            if let meter = config.meter, config.requireMetering, await !meter.storeAcceptsWork() { throw APIError.meteringUnavailable }
            return (tenant, ["batch"], batchID)
        }
    }

    /// Who is asking and how the request is labelled: its key's tenant, its `X-Tally-Tags` and its
    /// `X-Tally-Session` (a malformed one is a 400); a 503 while metering is required and the store is down.
    func caller(_ request: Request, _ context: ServerRequestContext) async throws -> (tenant: String?, tags: [String], session: String?) {
        let tags = UsageRecord.parseTags(header: request.headers[Self.tagsHeader])
        let session = request.headers[Self.sessionHeader]
        if let session, !UsageRecord.isValidName(session) {
            throw APIError.invalid("the \(Self.sessionHeader) header must be 1-\(UsageRecord.maxNameLength) visible ASCII characters",
                                   param: Self.sessionHeader.rawName, code: "invalid_header")
        }
        if let meter = config.meter, config.requireMetering, await !meter.storeAcceptsWork() { throw APIError.meteringUnavailable }
        return (tenant(of: context), tags, session)
    }

    static let tagsHeader = HTTPField.Name("X-Tally-Tags")!
    /// Groups the calls of one workflow (a task, an agent run) for cost per workflow and outcomes.
    static let sessionHeader = HTTPField.Name("X-Tally-Session")!

    /// The prefix-cache scope of a request: its tenant's (with keys, unless shared on purpose), narrowed by
    /// the request's own `cache_salt`; nil shares the cache with every other unsalted request.
    func cacheSalt(tenant: String?, requested: String?) -> String? {
        var parts: [String] = []
        if !config.apiKeys.isEmpty && !config.sharedPrefixCache { parts.append("tenant=" + (tenant ?? "")) }
        if let requested { parts.append("salt=" + requested) }
        return parts.isEmpty ? nil : parts.joined(separator: "\u{0}")
    }

    /// Who the request is billed to: the authorising key's tenant (its name, else its fingerprint).
    func tenant(of context: ServerRequestContext) -> String? {
        context.apiKeyIndex.map { config.apiKeys[$0].tenant }
    }

    /// Runs the engine stream through the text pipeline, passing each released delta to `onDelta`, and
    /// returns the finish reason the client sees ("stop", "length"). Returns when the engine finishes or a
    /// stop string matches (the stream is then dropped, which aborts the engine request). A throwing
    /// `onDelta` (the client went away) or task cancellation ends the stream the same way. How the request
    /// ended is counted and recorded by its `UsageRecorder`, not here.
    func generate(_ prepared: PreparedGeneration, handle: StreamHandle,
                  onDelta: (TextDelta) async throws -> Void) async throws -> String {
        let request = prepared.engineRequest
        var pipeline = TextPipeline(tokenizer: tokenizer, stops: prepared.stops,
                                    hiddenTokens: request.ignoreEOS ? [] : request.stopTokenIDs)
        var lastTokenAt: ContinuousClock.Instant?

        guard let stream = handle.take() else { throw APIError.internalError(EngineError.internalError("engine stream consumed twice")) }
        // With echo the prompt's text is the first delta: at once, or with `logprobs` once the engine scored
        // the prompt (a one-token prompt has nothing to score, so then at the first token or the finish).
        var echo = prepared.echoText
        func sendEcho(_ scored: [TokenLogprob]) async throws {
            guard let text = echo else { return }
            echo = nil
            try await onDelta(TextDelta(text: text, logprobs: request.promptLogprobs == nil ? [] : promptEntries(request.promptTokens, scored)))
        }
        if request.promptLogprobs == nil { try await sendEcho([]) }
        // A stop string matched: the engine is told to end the request, and tokens it made meanwhile are
        // dropped, so that `.finished` still brings the engine's stats (cached tokens, timings, busy share).
        var stoppedByString = false
        do {
            for try await event in stream {
                switch event {
                case .promptLogprobs(let scored):
                    try await sendEcho(scored)
                case .embedding:
                    continue  // only embedding requests get one
                case .token where stoppedByString:
                    continue
                case .token(let token, let logprob):
                    try await sendEcho([])
                    let now = ContinuousClock.now
                    if let lastTokenAt {
                        metrics.recordInterToken(seconds: (now - lastTokenAt).inSeconds)
                    } else {
                        metrics.recordFirstToken(seconds: (now - request.arrival).inSeconds)
                    }
                    lastTokenAt = now
                    let delta = pipeline.append(token, logprob: logprob)
                    try await onDelta(delta)
                    if delta.stopped {
                        stoppedByString = true
                        engine.end(request.id, reason: .stop)
                    }
                case .finished where stoppedByString:
                    return Engine.FinishReason.stop.rawValue
                case .finished(let reason, _):
                    try await sendEcho([])
                    let delta = pipeline.finish()
                    try await onDelta(delta)
                    return delta.stopped ? Engine.FinishReason.stop.rawValue : reason.rawValue
                }
            }
        } catch let error as EngineError {
            throw APIError.engine(error, retryAfterSeconds: config.retryAfterSeconds, promptParam: prepared.promptParam)
        }
        // The stream ended without `.finished`: the task was cancelled (client gone, shutdown deadline).
        throw CancellationError()
    }
}
