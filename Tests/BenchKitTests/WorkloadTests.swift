// Workload files, prompt building (shared prefix, lengths, determinism) and the run guards.

@testable import BenchKit
import Foundation
import Testing

@Suite struct WorkloadTests {
    static let workloads = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../bench/workloads").standardized

    @Test func shippedWorkloadsLoad() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.workloads.path).filter { $0.hasSuffix(".json") }
        for required in ["short-chat.json", "shared-prefix.json", "long-prompt.json", "mixed.json"] {
            #expect(names.contains(required))
        }
        for name in names {
            let workload = try Workload.load(path: Self.workloads.appendingPathComponent(name).path)
            #expect(workload.name + ".json" == name)
        }
    }

    @Test func sharedPrefixIsSharedAndTheRestIsNot() throws {
        let workload = Workload(name: "w", syntheticTokens: [8, 12], sharedPrefixShare: 0.5, requests: 4, timeLimitSeconds: 1)
        let prompts = try workload.prompts(tokenizer: nil)
        let words = prompts.map { $0.text.split(separator: " ") }
        #expect(words.map(\.count) == [8, 12, 8, 12])
        #expect(words[0].prefix(4) == words[2].prefix(4))
        #expect(words[0].prefix(4) == words[1].prefix(4))
        #expect(words[0].suffix(4) != words[2].suffix(4))
        // Deterministic for a seed; a later run of a sweep keeps the prefix and changes the rest.
        #expect(try workload.prompts(tokenizer: nil) == prompts)
        let next = try workload.prompts(tokenizer: nil, run: 1)
        #expect(next[0].text.split(separator: " ").prefix(4) == words[0].prefix(4))
        #expect(next[0] != prompts[0])
    }

    @Test func promptFileIsUsedInTurn() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prompts-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "first prompt\n\nsecond prompt\n".write(toFile: path, atomically: true, encoding: .utf8)
        let workload = Workload(name: "w", promptFile: path, requests: 3, timeLimitSeconds: 1)
        #expect(try workload.prompts(tokenizer: nil).map(\.text) == ["first prompt", "second prompt", "first prompt"])
    }

    @Test func everyRunIsBounded() throws {
        let json = #"{"name": "x", "max_tokens": 4, "time_limit_seconds": 5}"#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Workload.self, from: Data(json.utf8)) }
        #expect(throws: BenchError.self) { try RunGuard.check(requests: 0, timeLimitSeconds: 5) }
        #expect(throws: BenchError.self) { try RunGuard.check(requests: RunGuard.maxRequests + 1, timeLimitSeconds: 5) }
        #expect(throws: BenchError.self) { try RunGuard.check(requests: 5, timeLimitSeconds: 0) }
        #expect(throws: BenchError.self) { try RunGuard.check(requests: 5, timeLimitSeconds: 86_400) }
        try RunGuard.check(requests: 5, timeLimitSeconds: 5)
    }

    @Test func onlyLoopbackUnlessAllowed() throws {
        for url in ["http://127.0.0.1:8080", "http://localhost:8080/v1", "http://[::1]:9000", "http://127.1.2.3"] {
            try RunGuard.checkTarget(url: url, allowRemote: false)
        }
        #expect(throws: BenchError.remoteTarget(host: "10.0.0.5")) { try RunGuard.checkTarget(url: "http://10.0.0.5:8000", allowRemote: false) }
        #expect(throws: BenchError.remoteTarget(host: "127.0.0.1.example.com")) {
            try RunGuard.checkTarget(url: "http://127.0.0.1.example.com", allowRemote: false)
        }
        #expect(throws: BenchError.self) { try RunGuard.checkTarget(url: "not a url", allowRemote: true) }
        try RunGuard.checkTarget(url: "http://10.0.0.5:8000", allowRemote: true)
    }
}
