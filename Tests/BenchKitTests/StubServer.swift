// A stub OpenAI-compatible server on 127.0.0.1 (port 0) for the HTTP driver: streams SSE with a known
// number of chunks, known usage, a comment line and chunks split mid-line, and fails on request.
//
// The prompt text picks the behaviour: "fail" -> HTTP 500; "drop" -> one chunk, then the stream ends
// without [DONE]; "slow" -> waits 10 s before answering; anything else -> `chunks` chunks, usage, [DONE].

import Foundation
import Hummingbird
import HummingbirdTesting

struct StubServer {
    static let chunks = 5
    static let cachedTokens = 4
    static let chunkDelay = Duration.milliseconds(4)

    static func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("v1/completions") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] ?? [:]
            let prompt = json["prompt"] as? String ?? ""
            if prompt.contains("fail") {
                return Response(status: .internalServerError, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"stub failure"}}"#)))
            }
            if prompt.contains("slow") { try await Task.sleep(for: .seconds(10)) }
            let promptTokens = prompt.split(separator: " ").count
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": stub keep-alive comment\n\n"))
                let count = prompt.contains("drop") ? 1 : chunks
                for i in 0..<count {
                    let event = "data: {\"choices\":[{\"index\":0,\"text\":\"t\(i) \"}]}\r\n\r\n"
                    // Split every event mid-line so the client must join reads.
                    let cut = event.index(event.startIndex, offsetBy: 17)
                    try await writer.write(ByteBuffer(string: String(event[..<cut])))
                    try await Task.sleep(for: chunkDelay)
                    try await writer.write(ByteBuffer(string: String(event[cut...])))
                }
                if !prompt.contains("drop") {
                    try await writer.write(ByteBuffer(string: """
                        data: {"choices":[],"usage":{"prompt_tokens":\(promptTokens),"completion_tokens":\(count),\
                        "prompt_tokens_details":{"cached_tokens":\(cachedTokens)}}}\n\ndata: [DONE]\n\n
                        """))
                }
                try await writer.finish(nil)
            })
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    /// Runs `body` with the stub's base URL.
    static func with(_ body: @Sendable @escaping (String) async throws -> Void) async throws {
        try await application().test(.live) { client in
            guard let port = client.port else { throw CancellationError() }
            try await body("http://127.0.0.1:\(port)")
        }
    }
}
