// Against a real HTTP server on 127.0.0.1 (port 0): SSE over the wire, parallel requests, and a client
// that disconnects mid-stream, which must end the engine stream (the engine then aborts the request).

import Engine
import Foundation
import GGUF
import Hummingbird
import HummingbirdTesting
import OpenAIServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LiveServerTests {
    @Test func sseOverTheWireMatchesTheWholeBody() async throws {
        let text = "Streaming over a real socket: 𝄞 done."
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens(text) + [try Fixture.eos()], delay: .milliseconds(1)))
        try await makeApp(engine).test(.live) { client in
            let streamed = try await client.post("/v1/chat/completions", #"""
                {"messages": [{"role": "user", "content": "go"}], "stream": true, "stream_options": {"include_usage": true}}
                """#)
            #expect(streamed.status == .ok)
            #expect(streamed.headers[.contentType] == "text/event-stream")
            let payloads = try streamed.sseData()
            #expect(payloads.last == "[DONE]")
            #expect(try streamedText(payloads) == text)
            #expect(try object(payloads[payloads.count - 2])["usage"] is [String: Any])

            let whole = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "go"}]}"#)
            let message = try firstChoice(try whole.json())["message"] as? [String: Any]
            #expect(message?["content"] as? String == text)
        }
    }

    @Test func parallelRequestsAllComplete() async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens("a b c d") + [try Fixture.eos()], delay: .milliseconds(1)))
        try await makeApp(engine).test(.live) { client in
            try await withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<4 {
                    group.addTask {
                        let response = try await client.post("/v1/completions", #"{"prompt": "p\#(i)", "stream": \#(i % 2 == 0)}"#)
                        return i % 2 == 0 ? try streamedText(try response.sseData()) : try firstChoice(try response.json())["text"] as? String
                    }
                }
                for try await text in group { #expect(text == "a b c d") }
            }
        }
        #expect(engine.submitted.count == 4)
    }

    @Test func clientDisconnectEndsTheEngineStream() async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens(" tick"), delay: .milliseconds(5), endless: true))
        try await makeApp(engine).test(.live) { client in
            let port = try #require(client.port)
            let body = #"{"prompt": "count forever", "stream": true}"#
            let received = try await RawHTTP.postReadingUntil("data: ", port: port, path: "/v1/completions", body: body)
            #expect(received.contains("200 OK"))
            #expect(received.contains("data: "))
            #expect(await engine.waitForTermination("cancelled"), "the engine stream was not ended after the client left")
        }
        #expect(engine.submitted.count == 1)
    }

    /// The engine's report of the abort is the one route to /metrics: counted once, with the engine's stats.
    @Test func clientDisconnectIsCountedOnceAsAbort() async throws {
        let engine = FakeEngine(script: .init(tokens: try Fixture.tokens(" tick"), delay: .milliseconds(5), endless: true))
        let metrics = ServerMetrics()
        try await makeApp(engine, metrics: metrics).test(.live) { client in
            let port = try #require(client.port)
            _ = try await RawHTTP.postReadingUntil("data: ", port: port, path: "/v1/completions", body: #"{"prompt": "go", "stream": true}"#)
            #expect(await engine.waitForTermination("cancelled"))
        }
        let lines = metricLines(metrics.render(EngineSnapshot()))
        for expected in [#"tally_request_success_total{finished_reason="abort"} 1"#, #"tally_request_success_total{finished_reason="stop"} 0"#,
                         "tally_e2e_request_latency_seconds_count 1", "tally_generation_tokens_total 0"] {
            #expect(lines.contains(expected), "missing \(expected)")
        }
    }
}

/// A bare TCP client: sends one request, reads until `marker` appears, then closes the socket. Runs on
/// its own thread so blocking socket calls never hold a cooperative-pool thread.
enum RawHTTP {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func postReadingUntil(_ marker: String, port: Int, path: String, body: String) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try exchange(marker, port: port, path: path, body: body) })
            }
            thread.start()
        }
    }

    private static func exchange(_ marker: String, port: Int, path: String, body: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect() failed") }
        let request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw Failure(description: "send() failed") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { throw Failure(description: "connection ended before \(marker.debugDescription)") }
            received += buffer[..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
