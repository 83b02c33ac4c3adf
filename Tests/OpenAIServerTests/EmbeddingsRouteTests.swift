// POST /v1/embeddings over the real batching engine and the tiny model: OpenAI's response shape, inputs in
// order, float and base64 encodings of the same vector, the same vector alone or among other inputs, one
// usage record of kind embedding priced at the embedding APIs, and 400s that name the bad field.

import Engine
import Foundation
import GGUF
import Hummingbird
import HummingbirdTesting
import Kernels
import Metering
import ModelRuntime
import OpenAIServer
import Testing
import TestSupport
import Tokenization

@Suite struct EmbeddingsRouteTests {
    static let path = packageRoot + "/Tests/ModelRuntimeTests/Fixtures/tiny-q8_0.gguf"

    func app(store: any UsageStore) throws -> (some ApplicationProtocol, BatchingEngine) {
        let file = try GGUFFile(path: Self.path)
        let model = try LlamaModel(file: file, pool: ComputePool(threads: 2))
        var engineConfig = EngineConfig()
        engineConfig.kvBlocks = 64
        engineConfig.blockSize = 4
        engineConfig.maxBatchTokens = 16
        let engine = BatchingEngine(runner: LlamaRunner(model: model, config: engineConfig), config: engineConfig)
        var config = ServerConfig()
        config.port = 0
        config.embeddingPooling = .mean
        config.embeddingWidth = model.config.embeddingLength
        config.modelShape = ModelShape(file: file)
        config.meter = Meter(store: store, log: { _ in })
        let app = try buildApplication(config: config, engine: engine, tokenizer: try Tokenizer(metadata: file.metadata), modelName: "tiny")
        return (app, engine)
    }

    static func vectors(_ json: [String: Any]) throws -> [[Double]] {
        let data = try #require(json["data"] as? [[String: Any]])
        #expect(data.map { $0["index"] as? Int } == Array(data.indices))
        #expect(data.allSatisfy { $0["object"] as? String == "embedding" })
        return try data.map { try #require($0["embedding"] as? [Double]) }
    }

    @Test func inputsComeBackInOrderTheSameAloneOrTogetherAndMeteredOnce() async throws {
        let store = InMemoryUsageStore()
        let (app, engine) = try app(store: store)
        defer { engine.shutdown(deadline: .seconds(1)) }
        let inputs = [[11, 12, 13, 14, 15, 16, 17], [40, 41, 42], (0..<25).map { 30 + $0 * 7 % 200 }]
        try await app.test(.live) { client in
            var alone: [[Double]] = []
            for input in inputs {
                let response = try await client.post("/v1/embeddings", #"{"model": "tiny", "input": \#(input)}"#)
                #expect(response.status == .ok)
                alone += try Self.vectors(try response.json())
            }
            let body = #"{"input": \#(inputs), "user": "alice"}"#
            let response = try await client.post("/v1/embeddings", body)
            #expect(response.status == .ok)
            let json = try response.json()
            #expect(json["object"] as? String == "list" && json["model"] as? String == "tiny")
            let together = try Self.vectors(json)
            #expect(together == alone)
            for v in together {
                #expect(v.count == 64)
                #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
            }
            let usage = try #require(json["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == inputs.reduce(0) { $0 + $1.count })
            #expect(usage["total_tokens"] as? Int == usage["prompt_tokens"] as? Int)
            let apis = try #require((usage["cost"] as? [String: Any])?["api_equivalent"] as? [String: Any])
            #expect(Set(apis.keys) == ["openai/text-embedding-3-small", "google/gemini-embedding-001", "voyage/voyage-3.5"])

            // One record for the three inputs, of kind embedding, priced at text-embedding-3-small.
            let records = try await store.records(in: .all, tenant: nil).filter { $0.user == "alice" }
            let record = try #require(records.first)
            #expect(records.count == 1 && record.kind == .embedding && record.generatedTokens == 0)
            #expect(record.promptTokens == inputs.reduce(0) { $0 + $1.count })
            let small = try #require(apis["openai/text-embedding-3-small"] as? [String: Any])
            #expect(abs(try #require(small["standard"] as? Double) - Double(record.promptTokens) * 0.02 / 1e6) < 1e-15)

            // base64: the same float32 values, little-endian.
            let encoded = try await client.post("/v1/embeddings", #"{"input": [\#(inputs[1])], "encoding_format": "base64"}"#)
            let text = try #require((try encoded.json()["data"] as? [[String: Any]])?.first?["embedding"] as? String)
            let bytes = try #require(Data(base64Encoded: text))
            let bytes4 = [UInt8](bytes)
            var floats: [Float] = []
            for i in stride(from: 0, to: bytes4.count, by: 4) {
                var bits: UInt32 = 0
                for k in 0..<4 { bits |= UInt32(bytes4[i + k]) << UInt32(8 * k) }
                floats.append(Float(bitPattern: bits))
            }
            // JSON numbers are each float's shortest digits: read back as Float, the same values.
            #expect(floats == alone[1].map { Float($0) })
        }
    }

    @Test(arguments: [
        (#"{"input": ""}"#, "input"),
        (#"{"input": ["ok", ""]}"#, "input[1]"),
        (#"{"input": []}"#, "input"),
        (#"{"input": [[1, 2], [99999]]}"#, "input[1]"),
        (#"{"input": "hi", "dimensions": 16}"#, "dimensions"),
        (#"{"input": "hi", "encoding_format": "int8"}"#, "encoding_format"),
        (#"{"model": "gpt-4o", "input": "hi"}"#, "model"),
        (#"{"encoding_format": "float"}"#, "input"),
    ])
    func badRequestsAre4xxNamingTheField(body: String, param: String) async throws {
        let (app, engine) = try app(store: InMemoryUsageStore())
        defer { engine.shutdown(deadline: .seconds(1)) }
        try await app.test(.live) { client in
            let response = try await client.post("/v1/embeddings", body)
            #expect(response.status == .badRequest || response.status == .notFound, "\(body): \(response.status)")
            let error = try #require(try response.json()["error"] as? [String: Any])
            #expect(error["param"] as? String == param, "\(body): \(error)")
        }
    }
}
