// The live server over the real batching engine and a tiny model (its own 260-token tokenizer): more
// parallel requests than --max-seqs all finish with the tokens they get alone, and afterwards /metrics
// shows no running request and no held KV block.

import Engine
import Foundation
import GGUF
import Hummingbird
import HummingbirdTesting
import Kernels
import ModelRuntime
import OpenAIServer
import Testing
import TestSupport
import Tokenization

@Suite struct LiveEngineTests {
    static let path = packageRoot + "/Tests/ModelRuntimeTests/Fixtures/tiny-q8_0.gguf"

    func tinyApp(maxSeqs: Int) throws -> (some ApplicationProtocol, BatchingEngine) {
        let file = try GGUFFile(path: Self.path)
        let model = try LlamaModel(file: file, pool: ComputePool(threads: 2))
        var engineConfig = EngineConfig()
        engineConfig.kvBlocks = 64
        engineConfig.blockSize = 4
        engineConfig.maxBatchTokens = 32
        engineConfig.maxSeqs = maxSeqs
        let engine = BatchingEngine(runner: LlamaRunner(model: model, config: engineConfig), config: engineConfig)
        var config = ServerConfig()
        config.port = 0
        let app = try buildApplication(config: config, engine: engine, tokenizer: try Tokenizer(metadata: file.metadata), modelName: "tiny")
        return (app, engine)
    }

    /// Prompt token ids for request i (distinct, inside the 260-token vocabulary, no special tokens).
    static func prompt(_ i: Int) -> String { "[" + (0..<(5 + i)).map { String(10 + (i * 7 + $0 * 3) % 240) }.joined(separator: ", ") + "]" }

    static func body(_ i: Int, stream: Bool) -> String {
        #"{"prompt": \#(prompt(i)), "max_tokens": 12, "temperature": 0, "ignore_eos": true, "stream": \#(stream)}"#
    }

    @Test func moreRequestsThanMaxSeqsAllFinishWithTheirOwnTokens() async throws {
        let (app, engine) = try tinyApp(maxSeqs: 2)
        defer { engine.shutdown(deadline: .seconds(1)) }
        let count = 6
        try await app.test(.live) { client in
            // Alone first: the reference text of each request.
            var alone: [String] = []
            for i in 0..<count {
                let response = try await client.post("/v1/completions", Self.body(i, stream: false))
                alone.append(try #require(try firstChoice(try response.json())["text"] as? String))
            }
            // Then all at once, half of them streamed: only 2 run at a time, the rest wait their turn.
            let together = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for i in 0..<count {
                    group.addTask {
                        let response = try await client.post("/v1/completions", Self.body(i, stream: i % 2 == 1))
                        #expect(response.status == .ok)
                        let text = i % 2 == 1 ? try streamedText(try response.sseData())
                            : try #require(try firstChoice(try response.json())["text"] as? String)
                        return (i, text)
                    }
                }
                var texts = [String](repeating: "", count: count)
                for try await (i, text) in group { texts[i] = text }
                return texts
            }
            #expect(together == alone)
            #expect(Set(alone).count > 1, "distinct prompts should give distinct texts")

            // The engine snapshot is refreshed after each step: poll briefly.
            var metrics = ""
            for _ in 0..<100 {
                metrics = try await client.execute(uri: "/metrics", method: .get).text
                let m = metricValues(metrics)
                if m["tally_num_requests_running"] == 0 && m["tally_kv_cache_blocks_used"] == 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let m = metricValues(metrics)
            #expect(m["tally_num_requests_running"] == 0)
            #expect(m["tally_num_requests_waiting"] == 0)
            #expect(m["tally_kv_cache_blocks_used"] == 0)
            #expect(m["tally_kv_cache_usage_perc"] == 0)
            #expect(m[#"tally_request_success_total{finished_reason="length"}"#] == Double(2 * count))
        }
    }

    /// The tiny model may finish its 120 tokens before the server notices the client left (then the
    /// request ends as `length`); either way nothing may stay running or hold a block. The abort path
    /// itself is covered by EngineCoreTests and, with the real model, by the end-to-end test.
    @Test func disconnectMidStreamLeavesNoRunningRequestOrHeldBlock() async throws {
        let (app, engine) = try tinyApp(maxSeqs: 4)
        defer { engine.shutdown(deadline: .seconds(1)) }
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let body = #"{"prompt": [10, 20, 30], "max_tokens": 120, "temperature": 0, "ignore_eos": true, "stream": true}"#
            _ = try await RawHTTP.postReadingUntil("data: ", port: port, path: "/v1/completions", body: body)
            func finished(_ text: String) -> Bool {
                let m = metricValues(text)
                return m[#"tally_request_success_total{finished_reason="abort"}"#] == 1 || m[#"tally_request_success_total{finished_reason="length"}"#] == 1
            }
            var metrics = ""
            for _ in 0..<250 {
                metrics = try await client.execute(uri: "/metrics", method: .get).text
                let m = metricValues(metrics)
                if finished(metrics) && m["tally_kv_cache_blocks_used"] == 0 && m["tally_num_requests_running"] == 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(finished(metrics))
            #expect(metricValues(metrics)["tally_num_requests_running"] == 0)
            #expect(metricValues(metrics)["tally_kv_cache_blocks_used"] == 0)
        }
    }
}
