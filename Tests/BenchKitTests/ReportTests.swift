// The results file round trip, the text table and the compare table.

@testable import BenchKit
import Foundation
import Testing

@Suite struct ReportTests {
    func report(outputTokensPerRequest: Int, e2eMs: Int64, target: String) -> BenchReport {
        let runs = [1, 4].map { clients in
            RunSummary(record(Array(repeating: completed(ttftMs: 10, e2eMs: e2eMs, prompt: 20, output: outputTokensPerRequest), count: 4),
                              wallSeconds: 2, clients: clients))
        }
        return BenchReport(workload: Workload(name: "w", requests: 4, timeLimitSeconds: 10), target: target, runs: runs)
    }

    @Test func compareShowsBothSidesAndTheRatio() {
        let a = report(outputTokensPerRequest: 10, e2eMs: 400, target: "http://127.0.0.1:8080")
        let b = report(outputTokensPerRequest: 25, e2eMs: 100, target: "http://127.0.0.1:8091")
        let text = BenchReport.compare(a, b, labelA: "tally.json", labelB: "llama.json")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "A = tally.json: w against http://127.0.0.1:8080")
        // 4 requests x 10 tokens / 2 s = 20 tok/s against 4 x 25 / 2 = 50 tok/s.
        let throughput = lines.filter { $0.hasPrefix("output tok/s") }
        #expect(throughput.count == 2)
        #expect(throughput[0].split(separator: " ", omittingEmptySubsequences: true) == ["output", "tok/s", "20.0", "50.0", "2.50x"])
        let e2e = lines.first { $0.hasPrefix("E2E mean ms") }
        #expect(e2e?.split(separator: " ", omittingEmptySubsequences: true).suffix(3) == ["400.0", "100.0", "0.25x"])
        #expect(lines.contains { $0.hasPrefix("c=1") } && lines.contains { $0.hasPrefix("c=4") })
    }

    @Test func jsonRoundTrip() throws {
        let original = report(outputTokensPerRequest: 10, e2eMs: 400, target: "t")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try original.write(to: path)
        #expect(try BenchReport.load(path: path) == original)
        #expect(throws: BenchError.self) { try BenchReport.load(path: path + ".missing") }
    }

    @Test func tableHasOneColumnPerRun() {
        let table = report(outputTokensPerRequest: 10, e2eMs: 400, target: "t").table()
        let header = table.split(separator: "\n")[1].split(separator: " ", omittingEmptySubsequences: true)
        #expect(header == ["metric", "c=1", "c=4"])
        #expect(table.contains("completed"))
    }

    @Test func htmlHasBothCharts() {
        let html = report(outputTokensPerRequest: 10, e2eMs: 400, target: "<t>").html()
        #expect(html.components(separatedBy: "<svg").count == 3)
        #expect(html.contains("&lt;t&gt;") && !html.contains("<t>"))
        #expect(html.contains("<polyline"))
    }
}
