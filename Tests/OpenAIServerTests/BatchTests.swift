// /v1/files and /v1/batches: a batch runs every line through its endpoint at batch priority (answers to
// the output file, refusals to the error file), a bad input file fails the batch with line errors, one
// tenant never sees another's files or batches, and a batch left half done (a crash) resumes without
// running a finished line again. Against the real server and model: Tests/EndToEnd/test_batches.py.

import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Metering
@testable import OpenAIServer
import Testing

@Suite struct BatchTests {
    static let sentence = "The quick brown fox."

    func engine() throws -> FakeEngine {
        FakeEngine(script: .init(tokens: try Fixture.tokens(Self.sentence) + [try Fixture.eos()]))
    }

    func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tally-batches-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func config(_ directory: URL, keys: [TenantKey] = []) -> ServerConfig {
        var config = ServerConfig()
        config.batchDirectory = directory
        config.apiKeys = keys
        return config
    }

    static func line(_ id: String, _ body: String, url: String = "/v1/chat/completions") -> String {
        #"{"custom_id": "\#(id)", "method": "POST", "url": "\#(url)", "body": \#(body)}"#
    }
    static let chat = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}"#

    func upload(_ client: some TestClientProtocol, _ jsonl: String, key: String? = nil) async throws -> TestResponse {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n"
            + jsonl + "\r\n--XyZ--\r\n"
        var headers: HTTPFields = [.contentType: "multipart/form-data; boundary=XyZ"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try await client.execute(uri: "/v1/files", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func createBatch(_ client: some TestClientProtocol, file: String, key: String? = nil) async throws -> [String: Any] {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        let response = try await client.post("/v1/batches", #"{"input_file_id": "\#(file)", "endpoint": "/v1/chat/completions", "completion_window": "24h"}"#,
                                              headers: headers)
        #expect(response.status == .ok, "\(response.text)")
        return try response.json()
    }

    /// Polls the batch until it is no longer active (10 s at most).
    func finished(_ client: some TestClientProtocol, _ id: String) async throws -> [String: Any] {
        for _ in 0..<200 {
            let batch = try await client.execute(uri: "/v1/batches/\(id)", method: .get).json()
            if !["validating", "in_progress", "finalizing", "cancelling"].contains(batch["status"] as? String ?? "") { return batch }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("batch \(id) did not finish")
        return [:]
    }

    func lines(_ client: some TestClientProtocol, file: Any?) async throws -> [[String: Any]] {
        guard let file = file as? String else { return [] }
        let text = try await client.execute(uri: "/v1/files/\(file)/content", method: .get).text
        return try text.split(separator: "\n").map { try object(String($0)) }
    }

    @Test func aBatchRunsEveryLineThroughItsEndpoint() async throws {
        let engine = try engine()
        try await makeApp(engine, config: config(try directory())).test(.router) { client in
            let jsonl = [Self.line("a", Self.chat), Self.line("b", #"{"messages": [{"role": "user", "content": "x"}], "temperature": 5}"#),
                         Self.line("c", Self.chat)].joined(separator: "\n")
            let file = try await upload(client, jsonl).json()
            #expect(file["object"] as? String == "file" && file["purpose"] as? String == "batch" && file["bytes"] as? Int == jsonl.utf8.count)
            let created = try await createBatch(client, file: file["id"] as! String)
            #expect(created["status"] as? String == "validating" && created["endpoint"] as? String == "/v1/chat/completions")
            let batch = try await finished(client, created["id"] as! String)
            #expect(batch["status"] as? String == "completed")
            let counts = try #require(batch["request_counts"] as? [String: Int])
            #expect(counts == ["total": 3, "completed": 2, "failed": 1])
            let output = try await lines(client, file: batch["output_file_id"])
            #expect(Set(output.compactMap { $0["custom_id"] as? String }) == ["a", "c"])
            for line in output {
                let response = try #require(line["response"] as? [String: Any])
                let body = try #require(response["body"] as? [String: Any])
                #expect(response["status_code"] as? Int == 200 && body["object"] as? String == "chat.completion")
                let message = (body["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
                #expect(message?["content"] as? String == Self.sentence)
            }
            let errors = try await lines(client, file: batch["error_file_id"])
            #expect(errors.count == 1 && errors.first?["custom_id"] as? String == "b")
            let refused = (errors.first?["response"] as? [String: Any])
            #expect(refused?["status_code"] as? Int == 400)
            let usage = try #require(batch["usage"] as? [String: Any])
            #expect(usage["output_tokens"] as? Int == 2 * (try Fixture.tokens(Self.sentence).count + 1))
            // Every line ran at batch priority.
            #expect(engine.submitted.count == 2 && engine.submitted.allSatisfy { $0.priority == .batch })
            let list = try await client.execute(uri: "/v1/batches?limit=1", method: .get).json()
            #expect((list["data"] as? [Any])?.count == 1 && list["has_more"] as? Bool == false)
        }
    }

    @Test func aBadInputFileFailsTheBatchWithItsLineErrors() async throws {
        try await makeApp(try engine(), config: config(try directory())).test(.router) { client in
            let jsonl = [Self.line("a", Self.chat), "not json", Self.line("a", Self.chat), Self.line("d", Self.chat, url: "/v1/completions")]
                .joined(separator: "\n")
            let file = try await upload(client, jsonl).json()
            let batch = try await finished(client, try await createBatch(client, file: file["id"] as! String)["id"] as! String)
            #expect(batch["status"] as? String == "failed")
            let errors = try #require((batch["errors"] as? [String: Any])?["data"] as? [[String: Any]])
            #expect(errors.compactMap { $0["line"] as? Int } == [2, 3, 4])
            // Refusals at creation: a missing file, a wrong endpoint or window, a non-multipart upload.
            let missing = try await client.post("/v1/batches", #"{"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"}"#)
            let missingCode = try missing.errorObject()["code"] as? String
            #expect(missing.status == .notFound && missingCode == "file_not_found")
            let endpoint = try await client.post("/v1/batches", #"{"input_file_id": "\#(file["id"]!)", "endpoint": "/v1/models", "completion_window": "24h"}"#)
            let endpointParam = try endpoint.errorObject()["param"] as? String
            #expect(endpointParam == "endpoint")
            let plain = try await client.post("/v1/files", "{}")
            #expect(plain.status == .badRequest)
        }
    }

    @Test func oneTenantNeverSeesAnothersFilesOrBatches() async throws {
        let keys = [TenantKey(key: "ka", name: "a"), TenantKey(key: "kb", name: "b")]
        try await makeApp(try engine(), config: config(try directory(), keys: keys)).test(.router) { client in
            let file = try await upload(client, Self.line("a", Self.chat), key: "ka").json()
            let id = try #require(file["id"] as? String)
            let batch = try await createBatch(client, file: id, key: "ka")
            for path in ["/v1/files/\(id)", "/v1/files/\(id)/content", "/v1/batches/\(batch["id"] as! String)"] {
                let other = try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer kb"])
                #expect(other.status == .notFound, "\(path)")
                let owner = try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer ka"])
                #expect(owner.status == .ok, "\(path)")
            }
            let list = try await client.execute(uri: "/v1/files", method: .get, headers: [.authorization: "Bearer kb"]).json()
            #expect((list["data"] as? [Any])?.isEmpty == true)
            let stolen = try await client.post("/v1/batches", #"{"input_file_id": "\#(id)", "endpoint": "/v1/chat/completions", "completion_window": "24h"}"#,
                                               headers: [.authorization: "Bearer kb"])
            #expect(stolen.status == .notFound)
        }
    }

    /// A batch stopped half way (its output file holds one answer and a line cut short by the crash)
    /// resumes when the server starts again: only the unanswered lines run, each answered once.
    @Test func aBatchResumesAfterARestartWithoutRerunningFinishedLines() async throws {
        let dir = try directory()
        let store = try BatchStore(root: dir)
        let jsonl = ["a", "b", "c"].map { Self.line($0, Self.chat) }.joined(separator: "\n")
        let input = try await store.addFile(Array(jsonl.utf8), filename: "in.jsonl", purpose: "batch", tenant: nil)
        var batch = StoredBatch(id: "batch_resume", endpoint: "/v1/chat/completions", inputFileID: input.id, completionWindow: "24h",
                                status: "in_progress", tenant: nil, createdAt: 1, expiresAt: Int(Date().timeIntervalSince1970) + 3600)
        batch.total = 3
        try await store.put(batch)
        let batchID = batch.id
        try await store.append(#"{"id": "batch_req_1", "custom_id": "b", "response": {"status_code": 200, "body": {}}, "error": null}"#,
                               batchID: batch.id, error: false)
        let output = try #require(await store.batch(batch.id)?.outputFileID)
        let handle = try FileHandle(forWritingTo: await store.contentURL(output))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"id": "batch_req_2", "custom_id": "c", "resp"#.utf8))
        try handle.close()
        await store.unlock()

        let engine = try engine()
        try await makeApp(engine, config: config(dir)).test(.router) { client in
            let done = try await finished(client, batchID)
            #expect(done["status"] as? String == "completed")
            #expect((done["request_counts"] as? [String: Int]) == ["total": 3, "completed": 3, "failed": 0])
            let ids = try await lines(client, file: done["output_file_id"]).compactMap { $0["custom_id"] as? String }
            #expect(ids.sorted() == ["a", "b", "c"])
            #expect(engine.submitted.count == 2)
        }
    }

    @Test func aCancelledBatchStopsAndSaysSo() async throws {
        let slow = FakeEngine(script: .init(tokens: try Fixture.tokens(Self.sentence) + [try Fixture.eos()], delay: .milliseconds(40)))
        try await makeApp(slow, config: config(try directory())).test(.router) { client in
            let jsonl = (0..<20).map { Self.line("l\($0)", Self.chat) }.joined(separator: "\n")
            let file = try await upload(client, jsonl).json()
            let id = try #require(try await createBatch(client, file: file["id"] as! String)["id"] as? String)
            // Cancel once the first line is in the engine (a fixed sleep let a loaded CI machine finish all 20 first).
            let deadline = ContinuousClock.now + .seconds(30)
            while slow.submitted.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(!slow.submitted.isEmpty)
            let cancelling = try await client.post("/v1/batches/\(id)/cancel", "").json()
            #expect(["cancelling", "completed"].contains(cancelling["status"] as? String ?? ""))
            let batch = try await finished(client, id)
            #expect(batch["status"] as? String == "cancelled")
            let counts = try #require(batch["request_counts"] as? [String: Int])
            #expect(counts["completed"]! < 20)
        }
    }
}
