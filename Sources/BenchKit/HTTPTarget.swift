// Drives any OpenAI-compatible server (tally, llama.cpp's llama-server, vLLM) with streaming requests and
// times each output chunk as it arrives.

import AsyncHTTPClient
import Foundation
import NIOCore

package final class HTTPTarget: BenchTarget {
    package let baseURL: String
    let api: Workload.API
    let model: String?
    let apiKey: String?
    let requestTimeout: TimeAmount
    let client: HTTPClient

    package var label: String { baseURL }

    /// - Parameters:
    ///   - baseURL: the server, e.g. `http://127.0.0.1:8080` (routes `/v1/...` are appended).
    ///   - connections: most requests in flight at once (the client's pool would otherwise cap them at 8).
    package init(baseURL: String, api: Workload.API, model: String? = nil, apiKey: String? = nil, connections: Int,
                 requestTimeoutSeconds: Int64 = 600) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        self.baseURL = base
        self.api = api
        self.model = model
        self.apiKey = apiKey
        self.requestTimeout = .seconds(requestTimeoutSeconds)
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, connections))
        configuration.httpVersion = .http1Only
        // A refused connect is retried until this, not until the whole request's timeout: a server that is
        // down shows up as failed requests within seconds.
        configuration.timeout = .init(connect: .seconds(5))
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    package func shutdown() async {
        try? await client.shutdown()
    }

    package func send(_ prompt: BenchPrompt, maxTokens: Int, ignoreEOS: Bool) async -> RequestOutcome {
        var timer = RequestTimer()
        var stream = StreamState()
        do {
            let response = try await client.execute(request(prompt, maxTokens: maxTokens, ignoreEOS: ignoreEOS), timeout: requestTimeout)
            guard response.status == .ok else {
                let body = try? await response.body.collect(upTo: 4096)
                let text = body.map { String(buffer: $0) } ?? ""
                return finish(.failed, "HTTP \(response.status.code): \(text.prefix(200))", timer, stream)
            }
            var parser = SSEParser()
            for try await buffer in response.body {
                for payload in parser.feed(buffer.readableBytesView) where !stream.done {
                    try stream.take(payload, timer: &timer)
                }
            }
        } catch is CancellationError {
            return finish(.cancelled, "cancelled at the time limit", timer, stream)
        } catch {
            if Task.isCancelled { return finish(.cancelled, "cancelled at the time limit", timer, stream) }
            return finish(.failed, "\(error)", timer, stream)
        }
        guard stream.done else { return finish(.failed, "the stream ended without [DONE]", timer, stream) }
        return finish(.completed, nil, timer, stream)
    }

    private func request(_ prompt: BenchPrompt, maxTokens: Int, ignoreEOS: Bool) throws -> HTTPClientRequest {
        var body: [String: Any] = [
            "max_tokens": maxTokens, "stream": true, "stream_options": ["include_usage": true], "temperature": 0,
        ]
        if let model { body["model"] = model }
        if ignoreEOS { body["ignore_eos"] = true }
        switch api {
        case .completions: body["prompt"] = prompt.text
        case .chat: body["messages"] = [["role": "user", "content": prompt.text]]
        }
        var request = HTTPClientRequest(url: baseURL + (api == .chat ? "/v1/chat/completions" : "/v1/completions"))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // A new connection per request: llama-server closes a connection after each streamed response, and a
        // request written to a pooled connection that is just closing fails without reaching the server.
        // Connecting over loopback costs tens of microseconds, the same for every server.
        request.headers.add(name: "Connection", value: "close")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        return request
    }

    private func finish(_ status: RequestOutcome.Status, _ error: String?, _ timer: RequestTimer, _ stream: StreamState) -> RequestOutcome {
        var outcome = RequestOutcome(status: status, error: error)
        outcome.e2eMicros = timer.elapsed()
        outcome.ttftMicros = timer.firstChunk
        outcome.interChunkMicros = timer.gaps
        outcome.promptTokens = stream.promptTokens ?? 0
        outcome.cachedTokens = stream.cachedTokens
        // Without a usage chunk, count chunks: each carries at least one token.
        outcome.outputTokens = stream.completionTokens ?? timer.chunks
        return outcome
    }
}

/// What the chunks of one stream said so far.
struct StreamState {
    var done = false
    var promptTokens: Int?
    var completionTokens: Int?
    var cachedTokens: Int?

    struct ServerError: Error, CustomStringConvertible {
        var description: String
    }

    /// One `data:` payload: a completion chunk, a usage chunk, an error object, or `[DONE]`.
    mutating func take(_ payload: String, timer: inout RequestTimer) throws {
        if payload.trimmingCharacters(in: .whitespaces) == "[DONE]" {
            done = true
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else {
            throw ServerError(description: "a chunk is not JSON: \(payload.prefix(120))")
        }
        if let error = object["error"] {
            let message = (error as? [String: Any])?["message"] as? String ?? "\(error)"
            throw ServerError(description: "server error in the stream: \(message)")
        }
        if let choice = (object["choices"] as? [[String: Any]])?.first {
            let text = choice["text"] as? String ?? (choice["delta"] as? [String: Any])?["content"] as? String
            if let text, !text.isEmpty { timer.chunk() }
        }
        if let usage = object["usage"] as? [String: Any] {
            promptTokens = usage["prompt_tokens"] as? Int ?? promptTokens
            completionTokens = usage["completion_tokens"] as? Int ?? completionTokens
            if let cached = (usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int {
                cachedTokens = cached
            }
        }
        // llama-server also reports prompt positions reused from its cache in a top-level `timings.cache_n`.
        if cachedTokens == nil, let cached = (object["timings"] as? [String: Any])?["cache_n"] as? Int {
            cachedTokens = cached
        }
    }
}
