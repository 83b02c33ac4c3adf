// `--html OUT`: one self-contained page (inline SVG, no scripts) with the results table and two charts:
// output throughput against load level, and the end-to-end latency distribution of each run.

import Foundation
import Metering

extension BenchReport {
    package func html() -> String {
        """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>tally bench: \(htmlEscape(workload))</title>
        <style>body{font-family:sans-serif;margin:2em;max-width:60em}pre{background:#f6f6f6;padding:1em;overflow-x:auto}
        svg{background:#fff;border:1px solid #ddd;margin:1em 0}</style></head><body>
        <h1>tally bench: \(htmlEscape(workload))</h1>
        <p>Target \(htmlEscape(target)), started \(htmlEscape(startedAt)).</p>
        <h2>Output throughput by load level</h2>
        \(throughputChart())
        <h2>End-to-end latency distribution</h2>
        \(latencyChart())
        <h2>Results</h2>
        <pre>\(htmlEscape(table()))</pre>
        </body></html>
        """
    }

    private static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    /// Bars of output tokens/s, one per run, labelled with the load level.
    private func throughputChart() -> String {
        let width = 640.0, height = 300.0, left = 60.0, bottom = 40.0, top = 20.0
        let top_ = runs.map(\.outputTokensPerSecond).max() ?? 0
        let scale = niceCeiling(top_)
        let slot = (width - left - 20) / Double(max(1, runs.count))
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += axes(width: width, height: height, left: left, bottom: bottom, top: top, maxValue: scale, unit: "output tok/s")
        for (i, run) in runs.enumerated() {
            let barHeight = scale > 0 ? (height - bottom - top) * run.outputTokensPerSecond / scale : 0
            let x = left + Double(i) * slot + slot * 0.2
            let y = height - bottom - barHeight
            svg += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(slot * 0.6))\" height=\"\(f(barHeight))\" fill=\"#1f77b4\"/>"
            svg += "<text x=\"\(f(x + slot * 0.3))\" y=\"\(f(y - 4))\" font-size=\"11\" text-anchor=\"middle\">\(String(format: "%.1f", run.outputTokensPerSecond))</text>"
            svg += "<text x=\"\(f(x + slot * 0.3))\" y=\"\(f(height - bottom + 16))\" font-size=\"12\" text-anchor=\"middle\">\(htmlEscape(run.levelLabel))</text>"
        }
        return svg + "</svg>"
    }

    /// Percentile (x) against end-to-end latency (y), one line per run.
    private func latencyChart() -> String {
        let width = 640.0, height = 300.0, left = 60.0, bottom = 40.0, top = 20.0
        let scale = niceCeiling(runs.flatMap { $0.e2eDistribution.map { $0[1] } }.max() ?? 0)
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += axes(width: width, height: height, left: left, bottom: bottom, top: top, maxValue: scale, unit: "E2E ms")
        let plotWidth = width - left - 20, plotHeight = height - bottom - top
        for p in stride(from: 0, through: 100, by: 25) {
            svg += "<text x=\"\(f(left + plotWidth * Double(p) / 100))\" y=\"\(f(height - bottom + 16))\" font-size=\"11\" text-anchor=\"middle\">p\(p)</text>"
        }
        for (i, run) in runs.enumerated() where !run.e2eDistribution.isEmpty {
            let color = Self.palette[i % Self.palette.count]
            let points = run.e2eDistribution.map { pair in
                "\(f(left + plotWidth * pair[0] / 100)),\(f(height - bottom - (scale > 0 ? plotHeight * pair[1] / scale : 0)))"
            }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>"
            svg += "<text x=\"\(f(left + 10))\" y=\"\(f(top + 14 + Double(i) * 14))\" font-size=\"12\" fill=\"\(color)\">\(htmlEscape(run.levelLabel))</text>"
        }
        return svg + "</svg>"
    }

    private func axes(width: Double, height: Double, left: Double, bottom: Double, top: Double, maxValue: Double, unit: String) -> String {
        var svg = "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(height - bottom))\" stroke=\"#333\"/>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(height - bottom))\" x2=\"\(f(width - 10))\" y2=\"\(f(height - bottom))\" stroke=\"#333\"/>"
        for tick in 0...4 {
            let value = maxValue * Double(tick) / 4
            let y = height - bottom - (height - bottom - top) * Double(tick) / 4
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" font-size=\"11\" text-anchor=\"end\">\(formatNumber(value))</text>"
        }
        svg += "<text x=\"12\" y=\"\(f(top + (height - bottom - top) / 2))\" font-size=\"12\" transform=\"rotate(-90 12 \(f(top + (height - bottom - top) / 2)))\" text-anchor=\"middle\">\(htmlEscape(unit))</text>"
        return svg
    }
}

/// The smallest of 1, 2, 2.5, 5 x 10^k at or above `value`, so axis ticks are round numbers.
func niceCeiling(_ value: Double) -> Double {
    guard value > 0 else { return 1 }
    let magnitude = pow(10, floor(log10(value)))
    for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
    return 10 * magnitude
}

private func f(_ value: Double) -> String { String(format: "%.1f", value) }
