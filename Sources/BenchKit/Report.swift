// A benchmark's results: the JSON file `--json` writes, the text table printed after a run, and the
// side-by-side table of `tally bench compare`.

import Foundation
import Metering

/// Everything one `tally bench` invocation measured: one run per load level of the sweep.
package struct BenchReport: Sendable, Equatable, Codable {
    package static let currentVersion = 1

    package var version = BenchReport.currentVersion
    package var workload: String
    package var target: String
    package var api: String
    package var maxTokens: Int
    package var ignoreEOS: Bool
    package var requestsPerRun: Int
    package var startedAt: String
    package var runs: [RunSummary]

    package init(workload: Workload, target: String, startedAt: Date = Date(), runs: [RunSummary]) {
        self.workload = workload.name
        self.target = target
        self.api = workload.api.rawValue
        self.maxTokens = workload.maxTokens
        self.ignoreEOS = workload.ignoreEOS
        self.requestsPerRun = workload.requests
        self.startedAt = ISO8601DateFormatter().string(from: startedAt)
        self.runs = runs
    }

    package func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }

    package static func load(path: String) throws -> BenchReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BenchError.badResults(path: path, reason: "cannot read the file")
        }
        let report: BenchReport
        do { report = try JSONDecoder().decode(BenchReport.self, from: data) } catch {
            throw BenchError.badResults(path: path, reason: "\(error)")
        }
        guard report.version == currentVersion else {
            throw BenchError.badResults(path: path, reason: "version \(report.version), this tally reads \(currentVersion)")
        }
        return report
    }
}

/// One row of the tables: a name and how to read it from a run.
struct Metric {
    var name: String
    var value: (RunSummary) -> Double?
    var format: (Double) -> String

    static func ms(_ name: String, _ stats: KeyPath<RunSummary, LatencyStats?>, _ field: KeyPath<LatencyStats, Double>) -> Metric {
        Metric(name: "\(name) ms", value: { $0[keyPath: stats]?[keyPath: field] }, format: { String(format: "%.1f", $0) })
    }

    static func usd(_ name: String, _ nano: @escaping (CostPerMillion) -> Int64?) -> Metric {
        // Rounded to 0.00001 $: five decimals say enough about a price per 1M tokens.
        Metric(name: name, value: { $0.cost.flatMap(nano).map { Double($0) } },
               format: { formatUSD((Int64($0) + 5_000) / 10_000 * 10_000, minDecimals: 2) })
    }

    static func rows(for runs: [RunSummary]) -> [Metric] {
        let count = { (v: Double) in String(Int(v)) }
        let rate = { (v: Double) in String(format: "%.2f", v) }
        var rows: [Metric] = [
            Metric(name: "completed", value: { Double($0.completed) }, format: count),
            Metric(name: "failed", value: { Double($0.failed) }, format: count),
            Metric(name: "cancelled at time limit", value: { Double($0.cancelled) }, format: count),
            Metric(name: "wall s", value: { $0.wallSeconds }, format: rate),
            Metric(name: "requests/s", value: { $0.requestsPerSecond }, format: { String(format: "%.3f", $0) }),
            Metric(name: "input tok/s", value: { $0.inputTokensPerSecond }, format: { String(format: "%.1f", $0) }),
            Metric(name: "output tok/s", value: { $0.outputTokensPerSecond }, format: { String(format: "%.1f", $0) }),
            Metric(name: "total tok/s", value: { $0.totalTokensPerSecond }, format: { String(format: "%.1f", $0) }),
        ]
        for (name, path) in [("TTFT", \RunSummary.ttft), ("TPOT", \.tpot), ("ITL", \.itl), ("E2E", \.e2e)] {
            rows += [Metric.ms("\(name) mean", path, \.mean), .ms("\(name) p50", path, \.p50),
                     .ms("\(name) p90", path, \.p90), .ms("\(name) p99", path, \.p99)]
        }
        if let slo = runs.compactMap(\.slo).first {
            rows.append(Metric(name: "goodput req/s (\(slo.text))", value: { $0.goodput }, format: { String(format: "%.3f", $0) }))
        }
        rows.append(Metric(name: "prefix cache hit %", value: { $0.prefixCacheHitRate.map { $0 * 100 } }, format: { String(format: "%.1f", $0) }))
        if let cost = runs.compactMap(\.cost).first {
            rows.append(.usd("$/1M tok local (\(cost.machine))") { $0.localNanoUSD })
            rows.append(.usd("$/1M tok GPU-eq (\(cost.gpu))") { $0.gpuNanoUSD })
            for api in cost.apis {
                let model = api.model
                rows.append(.usd("$/1M tok \(model)") { $0.apis.first { $0.model == model }?.standardNanoUSD })
            }
        }
        return rows
    }
}

/// Left-aligned first column, right-aligned others, two spaces between columns.
func renderTable(_ rows: [[String]]) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return c == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}

extension BenchReport {
    /// The results as a table: one column per load level.
    package func table() -> String {
        var lines = ["\(workload) against \(target) (\(api), max_tokens \(maxTokens)\(ignoreEOS ? ", ignore_eos" : ""), up to \(requestsPerRun) requests per run)"]
        var rows = [["metric"] + runs.map(\.levelLabel)]
        for metric in Metric.rows(for: runs) {
            rows.append([metric.name] + runs.map { run in metric.value(run).map(metric.format) ?? "-" })
        }
        lines.append(renderTable(rows))
        if let cost = runs.compactMap(\.cost).first {
            lines.append("cost: \(cost.priceTable); GPU-equivalent from \(cost.shapeSource)")
        }
        for run in runs where !run.errors.isEmpty {
            lines.append("\(run.levelLabel) failures: " + run.errors.sorted { $0.value > $1.value }.map { "\($0.value) x \($0.key)" }.joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }

    /// Side by side: for each load level both reports ran (matched by level, else by position), each metric
    /// in A and B and the ratio B / A.
    package static func compare(_ a: BenchReport, _ b: BenchReport, labelA: String = "A", labelB: String = "B") -> String {
        var lines = ["A = \(labelA): \(a.workload) against \(a.target)", "B = \(labelB): \(b.workload) against \(b.target)"]
        var pairs: [(RunSummary, RunSummary)] = []
        for (index, run) in a.runs.enumerated() {
            if let match = b.runs.first(where: { $0.levelLabel == run.levelLabel }) {
                pairs.append((run, match))
            } else if index < b.runs.count {
                pairs.append((run, b.runs[index]))
            }
        }
        if pairs.isEmpty { lines.append("no runs to compare") }
        for (runA, runB) in pairs {
            let level = runA.levelLabel == runB.levelLabel ? runA.levelLabel : "\(runA.levelLabel) vs \(runB.levelLabel)"
            var rows = [[level, "A", "B", "B/A"]]
            for metric in Metric.rows(for: [runA, runB]) {
                let va = metric.value(runA), vb = metric.value(runB)
                let ratio: String
                if let va, let vb, va != 0 { ratio = String(format: "%.2fx", vb / va) } else { ratio = "-" }
                rows.append([metric.name, va.map(metric.format) ?? "-", vb.map(metric.format) ?? "-", ratio])
            }
            lines.append("")
            lines.append(renderTable(rows))
        }
        return lines.joined(separator: "\n")
    }
}
