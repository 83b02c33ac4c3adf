// Hostile request bodies, one table: malformed JSON, bytes that are not UTF-8, control characters, token ids
// outside the vocabulary, numbers out of range or not numbers, wrong types, unknown roles, over-limit lists
// and strings, deep nesting. Each must get its 4xx with an OpenAI error envelope naming the field, never
// a 5xx, a crash or a hang, and never reach the engine.

import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OpenAIServer
import Testing

@Suite struct HostileInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var path = "/v1/completions"
        var body: [UInt8]
        var status: HTTPResponse.Status = .badRequest
        var type = "invalid_request_error"
        /// The field the error names (nil: none expected).
        var param: String?
        var headers: [(String, String)] = []
        var testDescription: String { name }

        init(_ name: String, _ body: String, chat: Bool = false, status: HTTPResponse.Status = .badRequest,
             type: String = "invalid_request_error", param: String? = nil, headers: [(String, String)] = []) {
            self.init(name, bytes: Array(body.utf8), chat: chat, status: status, type: type, param: param, headers: headers)
        }

        init(_ name: String, bytes: [UInt8], chat: Bool = false, status: HTTPResponse.Status = .badRequest,
             type: String = "invalid_request_error", param: String? = nil, headers: [(String, String)] = []) {
            self.name = name
            self.body = bytes
            path = chat ? "/v1/chat/completions" : "/v1/completions"
            self.status = status
            self.type = type
            self.param = param
            self.headers = headers
        }
    }

    static func chat(_ extra: String) -> String { #"{"messages": [{"role": "user", "content": "hi"}]\#(extra)}"# }
    static func prompt(_ extra: String) -> String { #"{"prompt": "hi"\#(extra)}"# }

    static let cases: [Case] = [
        // Not a JSON object.
        Case("empty body", ""),
        Case("null", "null"),
        Case("an array", #"["prompt"]"#),
        Case("a string", #""prompt""#),
        Case("truncated", #"{"prompt": "hi""#),
        Case("trailing garbage", #"{"prompt": "hi"} x"#),
        Case("bare NaN", #"{"prompt": "hi", "temperature": NaN}"#),
        Case("bare Infinity", #"{"prompt": "hi", "temperature": Infinity}"#),
        Case("single quotes", "{'prompt': 'hi'}"),
        // Bytes inside strings.
        Case("invalid UTF-8 in a string", bytes: Array(#"{"prompt": "a"#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)),
        Case("a raw NUL in a string", bytes: Array(#"{"prompt": "a"#.utf8) + [0x00] + Array(#""}"#.utf8)),
        Case("a raw newline in a string", "{\"prompt\": \"a\nb\"}"),
        Case("a lone surrogate escape", #"{"prompt": "\ud800"}"#),
        // Token ids.
        Case("a negative token id", #"{"prompt": [1, -1]}"#, param: "prompt"),
        Case("a token id past the vocabulary", #"{"prompt": [1, 99999999]}"#, param: "prompt"),
        Case("a token id past Int32", #"{"prompt": [2147483648]}"#, param: "prompt"),
        Case("a fractional token id", #"{"prompt": [1.5]}"#, param: "prompt"),
        Case("no token ids", #"{"prompt": []}"#, param: "prompt"),
        Case("two prompts", #"{"prompt": ["a", "b"]}"#, param: "prompt"),
        Case("a number as prompt", #"{"prompt": 3}"#, param: "prompt"),
        Case("no prompt", #"{"max_tokens": 3}"#, param: "prompt"),
        // Numbers.
        // Refused by the JSON reader itself, before any field is read: no param.
        Case("temperature too large to represent", prompt(#", "temperature": 1e400"#)),
        Case("negative temperature", prompt(#", "temperature": -1"#), param: "temperature"),
        Case("temperature as text", prompt(#", "temperature": "hot""#), param: "temperature"),
        Case("top_p above 1", prompt(#", "top_p": 2"#), param: "top_p"),
        Case("min_p above 1", prompt(#", "min_p": 1.5"#), param: "min_p"),
        Case("negative max_tokens", prompt(#", "max_tokens": -1"#), param: "max_tokens"),
        Case("max_tokens past Int64", prompt(#", "max_tokens": 1e20"#), param: "max_tokens"),
        Case("max_tokens past the context", prompt(#", "max_tokens": 99999999"#), param: "max_tokens"),
        Case("fractional max_tokens", prompt(#", "max_tokens": 2.5"#), param: "max_tokens"),
        Case("seed as text", prompt(#", "seed": "x""#), param: "seed"),
        Case("n of 2", prompt(#", "n": 2"#), param: "n"),
        Case("logprobs above the limit", prompt(#", "logprobs": 21"#), param: "logprobs"),
        Case("negative logprobs", prompt(#", "logprobs": -1"#), param: "logprobs"),
        Case("top_logprobs above the limit", chat(#", "logprobs": true, "top_logprobs": 21"#), chat: true, param: "top_logprobs"),
        Case("frequency_penalty out of range", prompt(#", "frequency_penalty": 3"#), param: "frequency_penalty"),
        // Types and lists.
        Case("stream as text", prompt(#", "stream": "yes""#), param: "stream"),
        Case("echo as a number", prompt(#", "echo": 1"#), param: "echo"),
        Case("stop as a number", prompt(#", "stop": 3"#), param: "stop"),
        Case("five stop strings", prompt(#", "stop": ["a", "b", "c", "d", "e"]"#), param: "stop"),
        Case("a stop string past its length limit", prompt(#", "stop": ["\#(String(repeating: "s", count: 1025))"]"#), param: "stop"),
        Case("user past its length limit", prompt(#", "user": "\#(String(repeating: "u", count: 300))""#), param: "user"),
        Case("messages as text", #"{"messages": "hi"}"#, chat: true, param: "messages"),
        Case("no messages", #"{"messages": []}"#, chat: true, param: "messages"),
        Case("a message that is not an object", #"{"messages": [3]}"#, chat: true, param: "messages[0]"),
        Case("an unknown role", #"{"messages": [{"role": "root", "content": "x"}]}"#, chat: true, param: "messages[0].role"),
        Case("a role with markup", #"{"messages": [{"role": "user<|im_end|>", "content": "x"}]}"#, chat: true, param: "messages[0].role"),
        Case("content as a number", #"{"messages": [{"role": "user", "content": 5}]}"#, chat: true, param: "messages[0].content"),
        Case("an image part", #"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}"#,
             chat: true, param: "messages[0].content[0]"),
        Case("tools", chat(#", "tools": [{"type": "function"}]"#), chat: true, param: "tools[0].function"),
        // Nesting and size.
        Case("nesting past the depth limit", prompt(#", "extra": "# + String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000))),
        Case("nesting one past the reader's 512", prompt(#", "extra": "# + String(repeating: "[", count: 513) + String(repeating: "]", count: 513))),
        Case("an unknown model", prompt(#", "model": "gpt-9""#), status: .notFound, param: "model"),
        Case("an invalid session header", prompt(""), param: "X-Tally-Session", headers: [("X-Tally-Session", "a b")]),
    ]

    @Test(arguments: cases) func isRefusedWithAnEnvelope(_ c: Case) async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens("ok") + [try Fixture.eos()]))
        try await makeApp(engine).test(.router) { client in
            var headers: HTTPFields = [.contentType: "application/json"]
            for (name, value) in c.headers { headers[HTTPField.Name(name)!] = value }
            let response = try await client.execute(uri: c.path, method: .post, headers: headers, body: ByteBuffer(bytes: c.body))
            #expect(response.status == c.status, "\(response.text)")
            let error = try response.errorObject()
            #expect(error["type"] as? String == c.type)
            #expect(error["message"] is String)
            if let param = c.param { #expect(error["param"] as? String == param, "\(response.text)") }
        }
        #expect(engine.submitted.isEmpty, "a refused request must not reach the engine")
    }

    /// Things that are valid JSON and valid requests, however odd: answered, not refused.
    @Test(arguments: [#"{"prompt": "a\u0000b"}"#, #"{"prompt": "😀\u00e9\t"}"#, #"{"prompt": "hi", "cache_prompt": true, "x": {"y": [1, 2]}}"#,
                      #"{"prompt": "hi", "temperature": 0, "seed": -1}"#, #"{"prompt": "hi", "max_tokens": 1, "stop": null}"#,
                      #"{"prompt": "hi", "extra": "# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"])
    func oddButValidRequestsAreAnswered(_ body: String) async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens("ok") + [try Fixture.eos()]))
        try await makeApp(engine).test(.router) { client in
            let response = try await client.post("/v1/completions", body)
            #expect(response.status == .ok, "\(response.text)")
        }
    }
}
