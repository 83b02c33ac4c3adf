// Shared helpers of the server tests: the real SmolLM2 tokenizer from the committed vocab-only fixture,
// building the app exactly as the binary does, and reading JSON bodies and SSE streams.

import Engine
import Foundation
import GGUF
import Hummingbird
import HummingbirdTesting
import OpenAIServer
import Testing
import Tokenization

enum Fixture {
    /// The tokenization tests' committed fixture (every tokenizer.* key of SmolLM2, no tensors).
    static let vocabPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TokenizationTests/Fixtures/smollm2-vocab.gguf").path

    static let loaded: Result<Tokenizer, any Error> = Result { try Tokenizer(modelPath: vocabPath) }

    static func tokenizer() throws -> Tokenizer { try loaded.get() }

    /// Token ids of `text` (no BOS), as the fake engine's output.
    static func tokens(_ text: String) throws -> [TokenID] { try tokenizer().encode(text, parseSpecial: false) }

    static func eos() throws -> TokenID { try #require(try tokenizer().eosTokenID) }

    /// The prompt tokens the server submits for `text`: special tokens parsed, BOS when the model wants it.
    static func promptTokens(_ text: String) throws -> [TokenID] {
        let tokenizer = try tokenizer()
        let ids = tokenizer.encode(text, parseSpecial: true)
        guard tokenizer.addBOS, let bos = tokenizer.bosTokenID, ids.first != bos else { return ids }
        return [bos] + ids
    }
}

func makeApp(_ engine: FakeEngine, config: ServerConfig = ServerConfig(), metrics: ServerMetrics = ServerMetrics())
    throws -> some ApplicationProtocol
{
    var config = config
    config.port = 0
    return try buildApplication(config: config, engine: engine, tokenizer: try Fixture.tokenizer(), modelName: "smollm2-test",
                                metrics: metrics)
}

extension TestClientProtocol {
    func post(_ path: String, _ json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: json))
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// The `error` object of an OpenAI error envelope.
    func errorObject() throws -> [String: Any] {
        try #require(try json()["error"] as? [String: Any], "no error envelope: \(text)")
    }

    /// SSE `data:` payloads in order; fails unless every event is `data: ...\n\n`.
    func sseData() throws -> [String] { try parseSSE(text) }
}

func parseSSE(_ text: String) throws -> [String] {
    #expect(text.hasSuffix("\n\n"), "stream does not end with a blank line")
    let events = text.components(separatedBy: "\n\n").dropLast()
    return try events.map { event in
        try #require(event.hasPrefix("data: "), "not an SSE data event: \(event.debugDescription)")
        return String(event.dropFirst("data: ".count))
    }
}

func object(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
}

/// choices[0] of a response or chunk.
func firstChoice(_ json: [String: Any]) throws -> [String: Any] {
    let choices = try #require(json["choices"] as? [[String: Any]])
    return try #require(choices.first)
}

/// Concatenated text of streamed chunks (completions `text` or chat `delta.content`).
func streamedText(_ payloads: [String]) throws -> String {
    var text = ""
    for payload in payloads where payload != "[DONE]" {
        let chunk = try object(payload)
        guard let choice = (chunk["choices"] as? [[String: Any]])?.first else { continue }
        if let t = choice["text"] as? String { text += t }
        if let t = (choice["delta"] as? [String: Any])?["content"] as? String { text += t }
    }
    return text
}

/// /metrics text as series -> value, with the `model_name` label every series carries left out, so a test
/// names the series a dashboard queries: `tally_num_requests_running`, `tally_request_success_total{finished_reason="stop"}`.
func metricValues(_ text: String) -> [String: Double] {
    var values: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        let series = String(line[..<space])
            .replacing(/model_name="[^"]*",?/, with: "").replacingOccurrences(of: ",}", with: "}").replacingOccurrences(of: "{}", with: "")
        values[series] = value
    }
    return values
}

/// `metricValues` as "series value" lines, whole values written as integers.
func metricLines(_ text: String) -> Set<String> {
    Set(metricValues(text).map { series, value in
        "\(series) " + (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value))
    } + text.split(separator: "\n").filter { $0.hasPrefix("#") }.map(String.init))
}
