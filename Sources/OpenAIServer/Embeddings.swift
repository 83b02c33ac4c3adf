// POST /v1/embeddings: each input becomes a prompt-only engine request with `pooling`, batched with the
// server's other work; the vectors come back in input order, and the inputs' usage is one record (one
// request, as the APIs bill it), priced at the APIs' embedding prices.

import Engine
import Foundation
import GGUF
import Hummingbird
import Metering
import Synchronization

extension CompletionService {
    func embeddings(_ request: Request, _ context: ServerRequestContext) async throws -> Response {
        let arrival = ContinuousClock.now
        return try await embeddings(body: try await readBody(request), arrival: arrival, from: .http(request, context))
    }

    /// POST /v1/embeddings's body, from an HTTP request or a batch line.
    func embeddings(body: [UInt8], arrival: ContinuousClock.Instant, from origin: Origin) async throws -> Response {
        let wire = try decodeRequest(EmbeddingRequest.self, from: body)
        try checkModel(wire.model)
        if let dimensions = wire.dimensions, config.embeddingWidth > 0, dimensions != config.embeddingWidth {
            throw APIError.invalid("dimensions is \(dimensions) but this model's embeddings have \(config.embeddingWidth) values and cannot be shortened; omit dimensions",
                                   param: "dimensions")
        }
        let limit = engine.contextLength - 1
        let prompts: [[TokenID]] = try wire.inputs.enumerated().map { i, input in
            let param = wire.inputs.count == 1 ? "input" : "input[\(i)]"
            let tokens: [TokenID]
            switch input {
            case .text(let text):
                guard !text.isEmpty else { throw APIError.invalid("\(param) is an empty string; send some text", param: param) }
                // The text is data: special-token text in it is not a control token.
                tokens = withBOS(tokenizer.encode(text, parseSpecial: false))
            case .tokens(let ids):
                if let bad = ids.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                    throw APIError.invalid("\(param) has token id \(bad) but the vocabulary has ids 0..<\(tokenizer.vocabularySize)", param: param)
                }
                tokens = ids
            }
            guard tokens.count <= limit else {
                throw APIError.invalid("\(param) has \(tokens.count) tokens but at most \(limit) fit the model's context; shorten it",
                                       param: param, code: "context_length_exceeded")
            }
            return tokens
        }

        let (tenant, tags, session) = try await caller(origin)
        let meter = config.meter
        if let meter, case .reject(let message) = await meter.admit(tenant: tenant, requestedMaxOutputTokens: 0) {
            throw APIError.budgetExceeded(message)
        }
        if case .http = origin, case .refuse(let message, let retryAfter) = rateLimiter.admit(tenant: tenant, tokens: prompts.reduce(0) { $0 + $1.count }) {
            throw APIError.rateLimited(message, retryAfterSeconds: retryAfter)
        }
        let id = "embd-" + Self.randomID()
        let recorder = UsageRecorder(requestID: id, arrival: arrival, model: modelName, modelShape: config.modelShape, tenant: tenant,
                                     user: wire.user, tags: tags, session: session, replica: config.replica, kind: .embedding,
                                     meter: meter, metrics: metrics, logger: config.logger)
        let usage = EmbeddingUsage(inputs: prompts.count, recorder: recorder)
        let salt = cacheSalt(tenant: tenant, requested: nil)

        // Submit every input before reading any, so they share steps; a refusal ends those already queued.
        var handles: [StreamHandle] = []
        for (i, tokens) in prompts.enumerated() {
            var engineRequest = EngineRequest(id: "\(id)-\(i)", promptTokens: tokens, maxTokens: 0, arrival: arrival)
            engineRequest.pooling = config.embeddingPooling
            engineRequest.cacheSalt = salt
            if case .batch = origin { engineRequest.priority = .batch }
            engineRequest.onFinish = { reason, stats in usage.finished(reason, stats) }
            switch Result(catching: { () throws(EngineError) in try engine.submit(engineRequest) }) {
            case .success(let stream): handles.append(StreamHandle(stream))
            case .failure(let error):
                // Nothing ran if the first was refused (no record, as for a refused completion); else the
                // queued ones are ended and the request is recorded as aborted.
                if i > 0 { usage.neverRan(prompts.count - i) }
                for j in 0..<i { engine.end("\(id)-\(j)", reason: .abort) }
                throw APIError.engine(error, retryAfterSeconds: config.retryAfterSeconds, promptParam: "input")
            }
        }
        var vectors: [[Float]] = []
        do {
            for handle in handles {
                guard let stream = handle.take() else { throw APIError.internalError(EngineError.internalError("engine stream consumed twice")) }
                var vector: [Float]?
                for try await event in stream {
                    if case .embedding(let v) = event { vector = v }
                }
                guard let vector, !vector.isEmpty else {
                    // The stream ended without a vector: cancelled (client gone, shutdown).
                    try Task.checkCancellation()
                    throw APIError.internalError(EngineError.internalError("an embedding request finished without its vector"))
                }
                vectors.append(vector)
            }
        } catch let error as EngineError {
            throw APIError.engine(error, retryAfterSeconds: config.retryAfterSeconds, promptParam: "input")
        }
        let usageJSON = await recorder.usage()
        let data: [JSON] = vectors.enumerated().map { i, vector in
            .object([("object", .string("embedding")), ("index", .int(i)),
                     ("embedding", wire.base64 ? .string(Self.base64(vector)) : .array(vector.map(JSON.float)))])
        }
        return jsonResponse(.object([("object", .string("list")), ("data", .array(data)), ("model", .string(modelName)),
                                     ("usage", usageJSON)]))
    }

    /// `encoding_format: base64`: the float32 values' little-endian bytes, as OpenAI sends them.
    static func base64(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for v in vector { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return Data(bytes).base64EncodedString()
    }
}

/// Sums the engine's reports of one embeddings request's inputs into the request's one usage record, when
/// the last input has ended (however it ended). Queue time is until the first input started, prefill
/// from then until the last input ended; busy shares and token counts add up.
final class EmbeddingUsage: Sendable {
    private struct State {
        var left: Int
        var stats = RequestStats()
        var reason = FinishReason.stop
        var firstStart: Int64 = .max
        var lastEnd: Int64 = 0
    }
    private let state: Mutex<State>
    private let recorder: UsageRecorder

    init(inputs: Int, recorder: UsageRecorder) {
        state = Mutex(State(left: inputs))
        self.recorder = recorder
    }

    func finished(_ reason: FinishReason, _ stats: RequestStats) {
        let done: (FinishReason, RequestStats)? = state.withLock { s in
            s.left -= 1
            s.stats.promptTokens += stats.promptTokens
            s.stats.cachedTokens += stats.cachedTokens
            s.stats.cacheWriteTokens += stats.cacheWriteTokens
            s.stats.busyShareMicros += stats.busyShareMicros
            s.stats.preemptions += stats.preemptions
            s.firstStart = min(s.firstStart, stats.queueMicros)
            s.lastEnd = max(s.lastEnd, stats.queueMicros + stats.prefillMicros)
            if reason == .abort { s.reason = .abort }
            return s.left == 0 ? finalize(&s) : nil
        }
        if let (reason, stats) = done { recorder.finished(reason, stats) }
    }

    /// `count` inputs were never queued (the engine refused one): the request ends as aborted without them.
    func neverRan(_ count: Int) {
        let done: (FinishReason, RequestStats)? = state.withLock { s in
            s.left -= count
            s.reason = .abort
            return s.left == 0 ? finalize(&s) : nil
        }
        if let (reason, stats) = done { recorder.finished(reason, stats) }
    }

    private func finalize(_ s: inout State) -> (FinishReason, RequestStats) {
        if s.firstStart != .max {
            s.stats.queueMicros = s.firstStart
            s.stats.prefillMicros = max(0, s.lastEnd - s.firstStart)
        }
        return (s.reason, s.stats)
    }
}
