// Router-level tests of the OpenAI routes against a scripted fake engine and the real SmolLM2 tokenizer:
// response shapes, usage, SSE framing, stop strings, and every kind of error.

import Engine
import Foundation
import GGUF
import Hummingbird
import HummingbirdTesting
import Metering
import OpenAIServer
import Synchronization
import Testing
import Tokenization

private let sentence = "The capital of France is Paris. It is a lovely city."

private func sentenceEngine(cached: Int = 0, finish: FinishReason = .stop) throws -> FakeEngine {
    FakeEngine(script: .init(tokens: try Fixture.tokens(sentence) + [try Fixture.eos()], finishReason: finish, cachedTokens: cached))
}

@Suite struct ResponseShapeTests {
    @Test func completionBodyHasOpenAIShapeAndUsage() async throws {
        let engine = try sentenceEngine()
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"model": "smollm2-test", "prompt": "Say it", "max_tokens": 50}"#)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let json = try response.json()
            #expect((json["id"] as? String)?.hasPrefix("cmpl-") == true)
            #expect(json["object"] as? String == "text_completion")
            #expect(json["created"] is Int)
            #expect(json["model"] as? String == "smollm2-test")
            let choice = try firstChoice(json)
            #expect(choice["index"] as? Int == 0)
            #expect(choice["text"] as? String == sentence)
            #expect(choice["finish_reason"] as? String == "stop")
            #expect(choice["logprobs"] is NSNull)
            let usage = try #require(json["usage"] as? [String: Any])
            let promptTokens = try Fixture.promptTokens("Say it").count
            #expect(usage["prompt_tokens"] as? Int == promptTokens)
            #expect(usage["completion_tokens"] as? Int == (try Fixture.tokens(sentence).count + 1))
            #expect(usage["total_tokens"] as? Int == promptTokens + (try Fixture.tokens(sentence).count + 1))
            let details = try #require(usage["prompt_tokens_details"] as? [String: Any])
            #expect(details["cached_tokens"] as? Int == 0, "cached_tokens must be 0, never null or absent")
            let timings = try #require(usage["timings"] as? [String: Any])
            #expect(timings["queue_ms"] as? Double == 1.5)
            #expect(timings["prefill_ms"] as? Double == 20)
            #expect(timings["decode_ms"] as? Double == 100)
            #expect(timings["prompt_tokens_per_second"] is Double)
            #expect(timings["generated_tokens_per_second"] is Double)
            #expect(usage["cost"] == nil)
        }
        let request = try #require(engine.submitted.first)
        #expect(request.promptTokens == (try Fixture.promptTokens("Say it")))
        #expect(request.maxTokens == 50)
        #expect(request.stopTokenIDs == (try Fixture.tokenizer().endOfGenerationIDs))
        #expect(request.id.hasPrefix("cmpl-"))
    }

    @Test func chatBodyHasOpenAIShapeAndRendersTheTemplate() async throws {
        let engine = try sentenceEngine(cached: 7)
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/chat/completions", #"""
                {"model": "smollm2-test", "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Capital "}, {"type": "text", "text": "of France?"}]}],
                 "max_completion_tokens": 64, "some_future_field": {"nested": [1, 2]}}
                """#)
            #expect(response.status == .ok)
            let json = try response.json()
            #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(json["object"] as? String == "chat.completion")
            let choice = try firstChoice(json)
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == sentence)
            #expect(choice["finish_reason"] as? String == "stop")
            let usage = try #require(json["usage"] as? [String: Any])
            #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 7)
        }
        let tokenizer = try Fixture.tokenizer()
        let rendered = ChatTemplate.detect(tokenizer.chatTemplate).template.render(
            [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Capital of France?")],
            addGenerationPrompt: true)
        #expect(rendered.contains("<|im_start|>assistant\n"))
        let request = try #require(engine.submitted.first)
        #expect(request.promptTokens == (try Fixture.promptTokens(rendered)))
        #expect(request.maxTokens == 64)
    }

    @Test func finishReasonLengthAndDefaultMaxTokensFillTheContext() async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens("one two three"), finishReason: .length), contextLength: 100)
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": [[1, 2, 3, 4]]}"#)
            #expect(response.status == .ok)
            #expect(try firstChoice(try response.json())["finish_reason"] as? String == "length")
        }
        #expect(engine.submitted.first?.promptTokens == [1, 2, 3, 4])
        #expect(engine.submitted.first?.maxTokens == 96)
    }

    @Test func samplingParametersReachTheEngine() async throws {
        let engine = try sentenceEngine()
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", #"""
                {"prompt": ["Hi"], "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": -1,
                 "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1, "ignore_eos": true,
                 "user": "tenant-a", "n": 1}
                """#)
            #expect(response.status == .ok)
        }
        let request = try #require(engine.submitted.first)
        #expect(request.sampling.temperature == 0.5)
        #expect(request.sampling.topP == 0.9)
        #expect(request.sampling.topK == 40)
        #expect(request.sampling.minP == 0.05)
        #expect(request.sampling.seed == UInt64.max)
        #expect(request.sampling.presencePenalty == 0.5)
        #expect(request.sampling.frequencyPenalty == -0.5)
        #expect(request.sampling.repetitionPenalty == 1.1)
        #expect(request.ignoreEOS)
    }

    @Test func echoPrependsThePrompt() async throws {
        let engine = try sentenceEngine()
        try await makeApp(engine).test(.router) { client in
            let plain = try await client.post("/v1/completions", #"{"prompt": "Q: ", "echo": true}"#)
            #expect(try firstChoice(try plain.json())["text"] as? String == "Q: " + sentence)
            let streamed = try await client.post("/v1/completions", #"{"prompt": "Q: ", "echo": true, "stream": true}"#)
            #expect(try streamedText(try streamed.sseData()) == "Q: " + sentence)
        }
    }

    @Test func completionLogprobsFormat() async throws {
        let tokens = try Fixture.tokens("Paris is big")
        let engine = FakeEngine(script: .init(tokens: tokens + [try Fixture.eos()]))
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "x", "logprobs": 2}"#)
            let logprobs = try #require(try firstChoice(try response.json())["logprobs"] as? [String: Any])
            let pieces = try tokens.map { try Fixture.tokenizer().piece($0) }
            #expect(logprobs["tokens"] as? [String] == pieces, "the end-of-generation token is not part of the text")
            #expect(logprobs["token_logprobs"] as? [Double] == Array(repeating: -0.5, count: tokens.count))
            let top = try #require(logprobs["top_logprobs"] as? [[String: Double]])
            #expect(top.count == tokens.count)
            #expect(top.first?.count == 2)
            let offsets = try #require(logprobs["text_offset"] as? [Int])
            #expect(offsets.first == 0)
            #expect(offsets == offsets.sorted())
        }
        #expect(engine.submitted.first?.topLogprobs == 2)
    }

    @Test func chatLogprobsFormat() async throws {
        let tokens = try Fixture.tokens("Paris")
        let engine = FakeEngine(script: .init(tokens: tokens + [try Fixture.eos()]))
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/chat/completions",
                                                 #"{"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 3}"#)
            let logprobs = try #require(try firstChoice(try response.json())["logprobs"] as? [String: Any])
            let content = try #require(logprobs["content"] as? [[String: Any]])
            #expect(content.count == tokens.count)
            let first = try #require(content.first)
            #expect(first["token"] as? String == (try Fixture.tokenizer().piece(tokens[0])))
            #expect(first["logprob"] as? Double == -0.5)
            #expect(first["bytes"] as? [Int] == (try Fixture.tokenizer().pieceBytes(tokens[0]).map(Int.init)))
            let top = try #require(first["top_logprobs"] as? [[String: Any]])
            #expect(top.count == 3)
            #expect(top.first?["logprob"] as? Double == -1)
        }
        #expect(engine.submitted.first?.topLogprobs == 3)
    }

    @Test func modelsHealthAndMetrics() async throws {
        let engine = try sentenceEngine(cached: 3)
        var snapshot = EngineSnapshot()
        snapshot.running = 2
        snapshot.kvBlocksUsed = 10
        snapshot.kvBlocksTotal = 64
        snapshot.prefixCacheQueriedTokens = 100
        snapshot.prefixCacheHitTokens = 48
        engine.engineSnapshot = snapshot
        try await makeApp(engine).test(.router) { client in
            let models = try await client.execute(uri: "/v1/models", method: .get)
            let data = try #require(try models.json()["data"] as? [[String: Any]])
            #expect(data.first?["id"] as? String == "smollm2-test")
            #expect(data.first?["object"] as? String == "model")

            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            #expect(try health.json()["status"] as? String == "ok")

            _ = try await client.post("/v1/completions", #"{"prompt": "hi"}"#)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let lines = metricLines(metrics.text)
            for expected in [
                #"tally_request_success_total{finished_reason="stop"} 1"#, #"tally_request_success_total{finished_reason="length"} 0"#,
                "tally_prompt_tokens_cached_total 3", "tally_num_requests_running 2", "tally_kv_cache_blocks_used 10",
                "tally_kv_cache_blocks_capacity 64", "tally_kv_cache_usage_perc 0.15625", "tally_prefix_cache_queries_total 100",
                "tally_prefix_cache_hits_total 48", "tally_time_to_first_token_seconds_count 1",
                "tally_e2e_request_latency_seconds_count 1", "# TYPE tally_inter_token_latency_seconds histogram",
                #"tally_inter_token_latency_seconds_bucket{le="+Inf"} \#(try Fixture.tokens(sentence).count)"#,
            ] {
                #expect(lines.contains(expected), "missing \(expected)")
            }
        }
    }
}

final class LockedBox<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    var value: Value { state.withLock { $0 } }
    func mutate(_ body: (inout Value) -> Void) { state.withLock { body(&$0) } }
}

@Suite struct StreamingTests {
    @Test func chatStreamFramingAndUsageChunk() async throws {
        let engine = try sentenceEngine(cached: 5)
        try await makeApp(engine).test(.router) { client in
            let body = #"{"messages": [{"role": "user", "content": "hi"}], "stream": true, "stream_options": {"include_usage": true}}"#
            let response = try await client.post("/v1/chat/completions", body)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let payloads = try response.sseData()
            #expect(payloads.last == "[DONE]")
            #expect(payloads.filter { $0 == "[DONE]" }.count == 1)
            let chunks = try payloads.dropLast().map(object)
            #expect(chunks.count >= 4)
            for chunk in chunks {
                #expect(chunk["object"] as? String == "chat.completion.chunk")
                #expect((chunk["id"] as? String)?.hasPrefix("chatcmpl-") == true)
                #expect(chunk.keys.contains("usage"), "with include_usage every chunk carries usage (null until the last)")
            }
            // First chunk: the role.
            let first = try firstChoice(chunks[0])
            #expect((first["delta"] as? [String: Any])?["role"] as? String == "assistant")
            #expect(first["finish_reason"] is NSNull)
            // Last chunk: empty choices and the usage.
            let usageChunk = try #require(chunks.last)
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            let usage = try #require(usageChunk["usage"] as? [String: Any])
            #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 5)
            #expect(usage["completion_tokens"] as? Int == (try Fixture.tokens(sentence).count + 1))
            // The chunk before it: the last content chunk carries finish_reason; no earlier one does.
            let contentChunks = chunks.dropLast()
            let reasons = try contentChunks.map { try firstChoice($0)["finish_reason"] as? String }
            #expect(reasons.last == "stop")
            #expect(reasons.dropLast().allSatisfy { $0 == nil })
            for chunk in contentChunks.dropLast() { #expect(chunk["usage"] is NSNull) }
            #expect(try streamedText(payloads) == sentence)
        }
    }

    @Test func completionStreamWithoutUsage() async throws {
        let engine = try sentenceEngine()
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "hi", "stream": true}"#)
            let payloads = try response.sseData()
            #expect(payloads.last == "[DONE]")
            let chunks = try payloads.dropLast().map(object)
            for chunk in chunks {
                #expect(chunk["object"] as? String == "text_completion")
                #expect(chunk["usage"] == nil)
                #expect((chunk["choices"] as? [Any])?.count == 1)
            }
            #expect(try firstChoice(try #require(chunks.last))["finish_reason"] as? String == "stop")
            #expect(try streamedText(payloads) == sentence)
        }
    }

    /// Text whose characters span several byte-level tokens: every chunk is valid text, and streamed
    /// equals non-streamed equals the source, with and without stop strings.
    @Test(arguments: [
        ("Music 𝄞 and 😀 emoji, ünïcödé", [String]()),
        (sentence, ["ance i"]),
        (sentence, [". It", "lovely"]),
        ("Music 𝄞 and 😀 emoji", ["😀"]),
    ])
    func streamedEqualsNonStreamed(text: String, stops: [String]) async throws {
        let tokens = try Fixture.tokens(text)
        let tokenizer = try Fixture.tokenizer()
        if stops.isEmpty {
            #expect(tokens.contains { tokenizer.piece($0).contains("\u{FFFD}") }, "the text should split a character across tokens")
        }
        let engine = FakeEngine(script: .init(tokens: tokens + [try Fixture.eos()]))
        let stopJSON = String(data: try JSONSerialization.data(withJSONObject: stops), encoding: .utf8)!
        let cut = stops.compactMap { text.range(of: $0)?.lowerBound }.min()
        let expected = cut.map { String(text[..<$0]) } ?? text
        try await makeApp(engine).test(.router) { client in
            for endpoint in ["completions", "chat"] {
                let (path, base) = endpoint == "chat"
                    ? ("/v1/chat/completions", #""messages": [{"role": "user", "content": "x"}]"#)
                    : ("/v1/completions", #""prompt": "x""#)
                let whole = try await client.post(path, "{\(base), \"stop\": \(stopJSON)}")
                let choice = try firstChoice(try whole.json())
                let wholeText = try #require(choice["text"] as? String ?? (choice["message"] as? [String: Any])?["content"] as? String)
                #expect(wholeText == expected)
                #expect(choice["finish_reason"] as? String == "stop")
                let streamed = try await client.post(path, "{\(base), \"stop\": \(stopJSON), \"stream\": true}")
                let payloads = try streamed.sseData()
                #expect(try streamedText(payloads) == expected)
                for payload in payloads.dropLast() {
                    let choice = try? firstChoice(try object(payload))
                    let piece = choice?["text"] as? String ?? (choice?["delta"] as? [String: Any])?["content"] as? String ?? ""
                    #expect(!piece.contains("\u{FFFD}"), "a chunk split a UTF-8 character")
                }
            }
        }
    }

    /// A stop string ends generation early: the server tells the engine to end the request (an endless
    /// script would otherwise never finish), and the text before the match is all that is returned.
    @Test func stopStringEndsTheEngineRequest() async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens(" la la STOP la"), delay: .milliseconds(1), endless: true))
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "sing", "stop": "STOP", "stream": true}"#)
            let payloads = try response.sseData()
            #expect(try streamedText(payloads) == " la la ")
            #expect(try firstChoice(try object(payloads[payloads.count - 2]))["finish_reason"] as? String == "stop")
        }
        #expect(engine.ended.values.contains(.stop))
        #expect(await engine.waitForTermination("finished"))
    }

    @Test func engineFailureMidStreamIsAnErrorEvent() async throws {
        final class FailingEngine: InferenceEngine, @unchecked Sendable {
            let contextLength = 512
            func snapshot() -> EngineSnapshot { EngineSnapshot() }
            func end(_ id: String, reason: FinishReason) {}
            func submit(_ request: EngineRequest) throws(EngineError) -> AsyncThrowingStream<EngineEvent, any Error> {
                AsyncThrowingStream { continuation in
                    continuation.yield(.token(1000, nil))
                    continuation.finish(throwing: EngineError.internalError("boom"))
                }
            }
        }
        let app = try buildApplication(config: ServerConfig(), engine: FailingEngine(), tokenizer: try Fixture.tokenizer(),
                                       modelName: "m")
        try await app.test(.router) { client in
            let streamed = try await client.post("/v1/completions", #"{"prompt": "x", "stream": true}"#)
            let payloads = try streamed.sseData()
            #expect(payloads.last == "[DONE]")
            let error = try #require(try object(payloads[payloads.count - 2])["error"] as? [String: Any])
            #expect(error["type"] as? String == "server_error")
            let whole = try await client.post("/v1/completions", #"{"prompt": "x"}"#)
            #expect(whole.status == .internalServerError)
            #expect(try whole.errorObject()["type"] as? String == "server_error")
        }
    }
}

@Suite struct ErrorTests {
    private func expectError(_ body: String, at path: String = "/v1/completions", status: HTTPResponse.Status = .badRequest,
                             param: String?, code: String? = nil, type: String = "invalid_request_error",
                             engine: FakeEngine? = nil, config: ServerConfig = ServerConfig(),
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let engine = try engine ?? sentenceEngine()
        try await makeApp(engine, config: config).test(.router) { client in
            let response = try await client.post(path, body)
            #expect(response.status == status, "\(response.text)", sourceLocation: sourceLocation)
            #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
            let error = try response.errorObject()
            #expect(error["type"] as? String == type, sourceLocation: sourceLocation)
            #expect(error["message"] is String, sourceLocation: sourceLocation)
            if let param {
                #expect(error["param"] as? String == param, "\(response.text)", sourceLocation: sourceLocation)
            } else {
                #expect(error["param"] is NSNull, "\(response.text)", sourceLocation: sourceLocation)
            }
            if let code {
                #expect(error["code"] as? String == code, sourceLocation: sourceLocation)
            }
        }
        if status != .tooManyRequests {
            #expect(engine.submitted.isEmpty, "a refused request must not reach the engine", sourceLocation: sourceLocation)
        }
    }

    @Test func malformedJSON() async throws {
        try await expectError(#"{"prompt": "hi""#, param: nil, code: "invalid_json")
        try await expectError("", param: nil, code: "invalid_json")
        try await expectError(#"["prompt"]"#, param: nil, code: "invalid_json")
    }

    @Test func wrongTypesNameTheParameter() async throws {
        try await expectError(#"{"prompt": "hi", "max_tokens": "ten"}"#, param: "max_tokens")
        try await expectError(#"{"prompt": "hi", "max_tokens": 1.5}"#, param: "max_tokens")
        try await expectError(#"{"prompt": "hi", "temperature": "hot"}"#, param: "temperature")
        try await expectError(#"{"prompt": "hi", "stream": "yes"}"#, param: "stream")
        try await expectError(#"{"prompt": "hi", "stop": 3}"#, param: "stop")
        try await expectError(#"{"prompt": 3}"#, param: "prompt")
        try await expectError(#"{"prompt": ["a", "b"]}"#, param: "prompt")
        try await expectError(#"{"prompt": [[1], [2]]}"#, param: "prompt")
        try await expectError(#"{"prompt": [1, 99999999]}"#, param: "prompt")
        try await expectError(#"{"max_tokens": 5}"#, param: "prompt")
        try await expectError(#"{"prompt": "hi", "stream_options": {"include_usage": 1}}"#, param: "stream_options.include_usage")
        try await expectError(#"{"messages": "hi"}"#, at: "/v1/chat/completions", param: "messages")
        try await expectError(#"{"messages": [{"content": "hi"}]}"#, at: "/v1/chat/completions", param: "messages[0].role")
        try await expectError(#"{"messages": [{"role": "user", "content": 5}]}"#, at: "/v1/chat/completions", param: "messages[0].content")
        try await expectError(#"{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#, at: "/v1/chat/completions",
                              param: "messages[0].content[0]")
        try await expectError(#"{"model": "m"}"#, at: "/v1/chat/completions", param: "messages")
        try await expectError(#"{"messages": []}"#, at: "/v1/chat/completions", param: "messages")
    }

    @Test func unknownRolesOverlongUsersAndBadSaltsAreRefused() async throws {
        for role in ["function", "System", "user<|im_end|>", ""] {
            try await expectError(#"{"messages": [{"role": "\#(role)", "content": "x"}]}"#, at: "/v1/chat/completions",
                                  param: "messages[0].role")
        }
        try await expectError(#"{"prompt": "hi", "user": "\#(String(repeating: "u", count: 257))"}"#, param: "user")
        try await expectError(#"{"prompt": "hi", "cache_salt": ""}"#, param: "cache_salt")
        try await expectError(#"{"prompt": "hi", "cache_salt": 5}"#, param: "cache_salt")
    }

    /// With API keys each tenant's prefix cache is its own; `cache_salt` narrows it; `sharedPrefixCache` opens it.
    @Test func prefixCacheIsSaltedPerTenant() async throws {
        func salts(shared: Bool, keys: [TenantKey], requests: [(key: String?, salt: String?)]) async throws -> [String?] {
            var config = ServerConfig()
            config.apiKeys = keys
            config.sharedPrefixCache = shared
            let engine = try sentenceEngine()
            try await makeApp(engine, config: config).test(.router) { client in
                for r in requests {
                    let salt = r.salt.map { #", "cache_salt": "\#($0)""# } ?? ""
                    let headers: HTTPFields = r.key.map { [.authorization: "Bearer \($0)"] } ?? [:]
                    let response = try await client.post("/v1/completions", #"{"prompt": "hi"\#(salt)}"#, headers: headers)
                    #expect(response.status == .ok)
                }
            }
            return engine.submitted.map(\.cacheSalt)
        }
        let keyed = try await salts(shared: false, keys: ["a:ka", "b:kb"], requests: [("ka", nil), ("kb", nil), ("ka", "s1")])
        #expect(keyed == ["tenant=a", "tenant=b", "tenant=a\u{0}salt=s1"])
        let shared = try await salts(shared: true, keys: ["a:ka", "b:kb"], requests: [("ka", nil), ("kb", nil), ("kb", "s1")])
        #expect(shared == [nil, nil, "salt=s1"])
        let keyless = try await salts(shared: false, keys: [], requests: [(nil, nil), (nil, "s2")])
        #expect(keyless == [nil, "salt=s2"])
    }

    /// Every OpenAI field tally would ignore is refused by name; its no-op value (and null) is accepted.
    @Test func unimplementedFieldsAreRefusedByName() async throws {
        let chat = #""messages": [{"role": "user", "content": "x"}]"#
        for (field, value) in [("logit_bias", #"{"1": 2}"#), ("functions", #"[{}]"#),
                               ("function_call", #""auto""#), ("modalities", #"["text", "audio"]"#), ("audio", "{}"),
                               ("prediction", "{}"), ("reasoning_effort", #""high""#), ("verbosity", #""low""#),
                               ("web_search_options", "{}"), ("service_tier", #""flex""#), ("store", "true"),
                               ("metadata", #"{"a": "b"}"#)] {
            try await expectError(#"{\#(chat), "\#(field)": \#(value)}"#, at: "/v1/chat/completions", param: field,
                                  code: "unsupported_parameter")
        }
        for (field, value) in [("suffix", #""end""#), ("best_of", "2"), ("logit_bias", #"{"1": 2}"#), ("service_tier", #""priority""#)] {
            try await expectError(#"{"prompt": "hi", "\#(field)": \#(value)}"#, param: field, code: "unsupported_parameter")
        }
        let engine = try sentenceEngine()
        try await makeApp(engine).test(.router) { client in
            for body in [#"{\#(chat), "response_format": {"type": "text"}, "tools": [], "tool_choice": "none", "logit_bias": {}, "store": false, "service_tier": "auto", "modalities": ["text"], "audio": null}"#] {
                let response = try await client.post("/v1/chat/completions", body)
                #expect(response.status == .ok)
            }
            let completion = #"{"prompt": "hi", "best_of": 1, "suffix": null, "logit_bias": {}, "cache_prompt": true}"#
            let response = try await client.post("/v1/completions", completion)
            #expect(response.status == .ok)
        }
    }

    /// A response_format that is not text, json_object or a well-formed json_schema is a 400 naming the
    /// field at fault.
    @Test func aBadResponseFormatNamesItsField() async throws {
        let chat = #""messages": [{"role": "user", "content": "x"}]"#
        let schema = #""schema": {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}"#
        for (format, param) in [(#"{"type": "xml"}"#, "response_format.type"),
                                (#"{"type": "json_schema"}"#, "response_format.json_schema"),
                                (#"{"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}"#, "response_format.json_schema.name"),
                                (#"{"type": "json_schema", "json_schema": {"name": "a b", "schema": {"type": "object"}}}"#, "response_format.json_schema.name"),
                                (#"{"type": "json_schema", "json_schema": {"name": "x"}}"#, "response_format.json_schema.schema"),
                                (#"{"type": "json_schema", "json_schema": {"name": "x", \#(schema)}}"#, "response_format.json_schema.schema")] {
            try await expectError(#"{\#(chat), "response_format": \#(format)}"#, at: "/v1/chat/completions", param: param)
        }
    }

    /// Malformed tools, a tool_choice naming no tool, tool calls with a template that has no tool format:
    /// 400s naming the field.
    @Test func badToolsNameTheirField() async throws {
        let chat = #""messages": [{"role": "user", "content": "x"}]"#
        let tool = #"{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}"#
        for (extra, param) in [(#""tools": [{"type": "function", "function": {"name": "a b"}}]"#, "tools[0].function.name"),
                               (#""tools": [{"type": "retrieval"}]"#, "tools[0].type"),
                               (#""tools": [\#(tool), \#(tool)]"#, "tools[1].function.name"),
                               (#""tools": [\#(tool)], "tool_choice": "any""#, "tool_choice"),
                               (#""tools": [\#(tool)], "tool_choice": {"type": "function", "function": {"name": "g"}}"#, "tool_choice"),
                               (#""tool_choice": "required""#, "tool_choice"),
                               (#""tools": [\#(tool)], "chat_template": "gemma""#, "tools"),
                               (#""tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]"#, "tools[0].function.parameters"),
                               (#""tools": [\#(tool)], "response_format": {"type": "json_object"}"#, "response_format")] {
            try await expectError(#"{\#(chat), \#(extra)}"#, at: "/v1/chat/completions", param: param)
        }
        let call = #"{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2"}}]}"#
        try await expectError(#"{"messages": [\#(call)]}"#, at: "/v1/chat/completions", param: "messages[0].tool_calls[0].function.arguments")
        try await expectError(#"{"messages": [{"role": "tool", "content": "1"}]}"#, at: "/v1/chat/completions", param: "messages[0].tool_call_id")
        try await expectError(#"{"messages": [{"role": "tool", "tool_call_id": "c", "content": "1"}], "chat_template": "gemma"}"#,
                              at: "/v1/chat/completions", param: "messages")
    }

    /// `model` names the served model or one of its aliases; anything else is OpenAI's 404.
    @Test func anUnknownModelIsA404AndModelsCanBeRetrieved() async throws {
        try await expectError(#"{"model": "gpt-4o", "prompt": "hi"}"#, status: .notFound, param: "model", code: "model_not_found")
        try await expectError(#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}"#, at: "/v1/chat/completions",
                              status: .notFound, param: "model", code: "model_not_found")
        var config = ServerConfig()
        config.modelAliases = ["smol"]
        try await makeApp(try sentenceEngine(), config: config).test(.router) { client in
            for name in ["smollm2-test", "smol"] {
                let model = try await client.execute(uri: "/v1/models/\(name)", method: .get)
                #expect(model.status == .ok)
                #expect(try model.json()["id"] as? String == "smollm2-test")
                #expect(try await client.post("/v1/completions", #"{"model": "\#(name)", "prompt": "hi"}"#).status == .ok)
            }
            let unknown = try await client.execute(uri: "/v1/models/llama", method: .get)
            #expect(unknown.status == .notFound)
            #expect(try unknown.errorObject()["code"] as? String == "model_not_found")
        }
    }

    /// `created` is when the request arrived, not when the server started.
    @Test func createdIsTheRequestsTime() async throws {
        try await makeApp(try sentenceEngine()).test(.router) { client in
            try await Task.sleep(for: .seconds(1.2))
            let before = Int(Date().timeIntervalSince1970)
            let response = try await client.post("/v1/completions", #"{"prompt": "hi"}"#)
            #expect(try response.json()["created"] as? Int ?? 0 >= before)
        }
    }

    @Test func outOfRangeValuesNameTheParameter() async throws {
        try await expectError(#"{"prompt": "hi", "temperature": 3}"#, param: "temperature")
        try await expectError(#"{"prompt": "hi", "top_p": 0}"#, param: "top_p")
        try await expectError(#"{"prompt": "hi", "top_k": -1}"#, param: "top_k")
        try await expectError(#"{"prompt": "hi", "min_p": 2}"#, param: "min_p")
        try await expectError(#"{"prompt": "hi", "presence_penalty": 5}"#, param: "presence_penalty")
        try await expectError(#"{"prompt": "hi", "frequency_penalty": -3}"#, param: "frequency_penalty")
        try await expectError(#"{"prompt": "hi", "repetition_penalty": 0}"#, param: "repetition_penalty")
        try await expectError(#"{"prompt": "hi", "max_tokens": 0}"#, param: "max_tokens")
        try await expectError(#"{"prompt": "hi", "logprobs": 50}"#, param: "logprobs")
        try await expectError(#"{"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}"#, param: "stop")
        try await expectError(#"{"prompt": "hi", "n": 2}"#, param: "n")
        try await expectError(#"{"messages": [{"role": "user", "content": "x"}], "n": 3}"#, at: "/v1/chat/completions", param: "n")
        try await expectError(#"{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}"#, at: "/v1/chat/completions",
                              param: "top_logprobs")
        try await expectError(#"{"messages": [{"role": "user", "content": "x"}], "chat_template": "nope"}"#, at: "/v1/chat/completions",
                              param: "chat_template")
        try await expectError(#"{"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": -1}"#, at: "/v1/chat/completions",
                              param: "max_completion_tokens")
    }

    @Test func promptLongerThanTheContext() async throws {
        let small = FakeEngine(script: .init(tokens: []), contextLength: 8)
        let long = Array(repeating: "7", count: 8).joined(separator: ", ")
        try await expectError(#"{"prompt": [\#(long)]}"#, param: "prompt", code: "context_length_exceeded", engine: small)
        try await expectError(#"{"prompt": [1, 2], "max_tokens": 7}"#, param: "max_tokens", code: "context_length_exceeded",
                              engine: FakeEngine(script: .init(tokens: []), contextLength: 8))
        let refusing = FakeEngine(script: .init(tokens: []))
        refusing.submitError = .promptTooLong(tokens: 5, limit: 4)
        try await makeApp(refusing).test(.router) { client in
            let response = try await client.post("/v1/completions", #"{"prompt": "hi"}"#)
            #expect(response.status == .badRequest)
            #expect(try response.errorObject()["code"] as? String == "context_length_exceeded")
        }
    }

    @Test func unknownRouteIsA404Envelope() async throws {
        try await makeApp(try sentenceEngine()).test(.router) { client in
            let response = try await client.execute(uri: "/v1/audio/speech", method: .post)
            #expect(response.status == .notFound)
            #expect(try response.errorObject()["code"] as? String == "not_found")
        }
    }

    @Test func bodyOverTheLimitIs413() async throws {
        var config = ServerConfig()
        config.maxBodyBytes = 1_000
        let big = #"{"prompt": "\#(String(repeating: "a", count: 2_000))"}"#
        try await expectError(big, status: .contentTooLarge, param: nil, code: "request_too_large", config: config)
    }

    @Test func queueFullIs429WithRetryAfter() async throws {
        let engine = try sentenceEngine()
        engine.submitError = .queueFull(limit: 4)
        var config = ServerConfig()
        config.retryAfterSeconds = 3
        try await makeApp(engine, config: config).test(.router) { client in
            for stream in [false, true] {
                let response = try await client.post("/v1/completions", #"{"prompt": "hi", "stream": \#(stream)}"#)
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "3")
                #expect(try response.errorObject()["type"] as? String == "rate_limit_error")
            }
        }
    }

    @Test func metricsCanRequireAKey() async throws {
        var config = ServerConfig()
        config.metricsKey = try TenantKey.parse(line: "sha256:" + TenantKey(key: "scrape").digest.map { String(format: "%02x", $0) }.joined())
        try await makeApp(try sentenceEngine(), config: config).test(.router) { client in
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer nope"]).status == .unauthorized)
            let ok = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer scrape"])
            #expect(ok.status == .ok && ok.text.contains("tally_num_requests_running"))
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok, "health stays open for probes")
        }
    }

    @Test func apiKeysAreRequiredWhenConfigured() async throws {
        var config = ServerConfig()
        let keys = ["sk-first", "sk-second"]
        config.apiKeys = keys.map { TenantKey(key: $0) }
        try await makeApp(try sentenceEngine(), config: config).test(.router) { client in
            let body = #"{"prompt": "hi"}"#
            for headers: HTTPFields in [[:], [.authorization: "Bearer sk-wrong"], [.authorization: "Bearer sk-firs"],
                                        [.authorization: "sk-first"], [.authorization: "Bearer sk-first-and-more"]] {
                let response = try await client.post("/v1/completions", body, headers: headers)
                #expect(response.status == .unauthorized)
                #expect(try response.errorObject()["code"] as? String == "invalid_api_key")
            }
            let models = try await client.execute(uri: "/v1/models", method: .get)
            #expect(models.status == .unauthorized)
            for key in keys {
                let response = try await client.post("/v1/completions", body, headers: [.authorization: "Bearer \(key)"])
                #expect(response.status == .ok)
            }
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }

    @Test func notReadyIs503UntilLoaded() async throws {
        var config = ServerConfig()
        let readiness = Readiness(false)
        config.readiness = readiness
        let engine = try sentenceEngine()
        try await makeApp(engine, config: config).test(.router) { client in
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .serviceUnavailable)
            #expect(try health.json()["status"] as? String == "loading")
            let refused = try await client.post("/v1/completions", #"{"prompt": "hi"}"#)
            #expect(refused.status == .serviceUnavailable)
            readiness.set(true)
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            #expect(try await client.post("/v1/completions", #"{"prompt": "hi"}"#).status == .ok)
        }
    }

    @Test func unknownChatTemplateOverrideFailsTheBuild() throws {
        var config = ServerConfig()
        config.chatTemplateOverride = "no-such-template"
        #expect(throws: TokenizationError.self) { _ = try makeApp(FakeEngine(script: .init(tokens: [])), config: config) }
        config.chatTemplateOverride = "llama3"
        _ = try makeApp(FakeEngine(script: .init(tokens: [])), config: config)
    }
}
