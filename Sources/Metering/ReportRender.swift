// Renderers of a `Report`: plain text for a terminal, CSV (one row per group, money in nano-USD), JSON
// (the `Report` itself) and one self-contained HTML page with inline SVG charts. Deterministic: same
// report, same bytes.

import Foundation

package enum ReportFormat: String, Sendable, CaseIterable {
    case text, csv, json, html
}

extension Report {
    package func render(_ format: ReportFormat) -> String {
        switch format {
        case .text: return renderText()
        case .csv: return renderCSV()
        case .json: return renderJSON()
        case .html: return renderHTML()
        }
    }

    // MARK: Text

    package func renderText() -> String {
        var out: [String] = []
        out.append("tally cost report, generated \(generatedAt)")
        out.append("range      \(since ?? "(start)") .. \(until ?? "(end)")")
        out.append("window     \(windowStart) .. \(windowEnd) (\(hours(utilization.windowMicros)))")
        out.append("grouped by \(grouping?.rawValue ?? "nothing")")
        out.append("prices     \(prices.name), as of \(prices.asOf)")
        out.append("machine    \(machine.name): \(machine.description), \(formatUSD(machine.hourlyNanoUSD))/h")
        let a = gpu.assumptions
        out.append("gpu        \(gpu.name): \(gpu.description), \(formatUSD(gpu.hourlyNanoUSD))/h, "
            + "\(number(gpu.peakFLOPS / 1e12)) TFLOP/s bf16, \(number(gpu.memoryBandwidth / 1e12)) TB/s")
        out.append("assumed    GPU seconds = max(FLOPs / (peak x mfu \(number(a.mfu))), bytes / (bandwidth x mbu \(number(a.mbu)))), "
            + "decode batch \(a.decodeBatch), KV \(a.kvBytesPerElement) bytes/element")
        out.append("")

        let lines = [total] + groups
        out.append("Usage")
        out.append(table(
            ["group", "requests", "prompt", "cached", "generated", "cache hit", "decode tok/s", "busy tok/s"],
            lines.map {
                [$0.key, "\($0.requests)", "\($0.promptTokens)", "\($0.cachedTokens)", "\($0.generatedTokens)",
                 percent($0.cacheHitRate), number($0.decodeTokensPerSecond), number($0.busyTokensPerSecond)]
            }))
        out.append("")
        out.append("Cost (local = machine $/h x busy share; GPU-equivalent = \(gpu.name) roofline)")
        out.append(table(
            ["group", "local", "local/request", "local/1M tok", "GPU-eq", "GPU-eq/1M tok", "GPU cache savings"],
            lines.map {
                [$0.key, formatUSD($0.local.totalNanoUSD), formatUSD($0.local.perRequestNanoUSD),
                 formatUSD($0.local.perMillionTokensNanoUSD), formatUSD($0.gpu.totalNanoUSD),
                 formatUSD($0.gpu.perMillionTokensNanoUSD), formatUSD($0.gpuCacheSavingsNanoUSD)]
            }))
        out.append("")
        out.append("API-equivalent, all requests (savings = API - local)")
        out.append(table(
            ["api", "standard", "batch", "std/request", "std/1M tok", "savings", "batch savings", "cache savings"],
            total.apis.map {
                [$0.model, formatUSD($0.standard.totalNanoUSD), formatUSD($0.batch.totalNanoUSD),
                 formatUSD($0.standard.perRequestNanoUSD), formatUSD($0.standard.perMillionTokensNanoUSD),
                 formatUSD($0.savingsVsLocalNanoUSD), formatUSD($0.batchSavingsVsLocalNanoUSD), formatUSD($0.cacheSavingsNanoUSD)]
            }))
        if !groups.isEmpty && !total.apis.isEmpty {
            out.append("")
            out.append("API-equivalent by group, standard tier")
            out.append(table(["group"] + total.apis.map(\.model),
                             groups.map { line in [line.key] + line.apis.map { formatUSD($0.standard.totalNanoUSD) } }))
        }
        out.append("")
        let u = utilization
        out.append("Utilization")
        out.append("busy \(hours(u.busyMicros)), idle \(hours(u.idleMicros)), utilization \(percent(u.utilization))")
        out.append("machine bill for the window \(formatUSD(u.machineCostNanoUSD)); local per 1M tokens "
            + "\(formatUSD(u.localPerMillionAtMeasuredNanoUSD)) at measured utilization, "
            + "\(formatUSD(u.localPerMillionAtFullLoadNanoUSD)) at full load")
        out.append("")
        out.append("Break-even: an always-on machine (\(hoursPerMonth) h/month) against each API at the recorded token mix")
        out.append(table(
            ["api", "api/1M tok", "machine/month", "break-even tok/month", "capacity tok/month", "break-even util", "recorded tok/month"],
            breakEven.map {
                [$0.model, formatUSD($0.apiPerMillionNanoUSD), formatUSD($0.machineMonthlyNanoUSD), "\($0.breakEvenTokensPerMonth)",
                 "\($0.capacityTokensPerMonth)", percent($0.breakEvenUtilization), "\($0.recordedTokensPerMonth)"]
            }))
        out.append("")
        out.append("What if the same window had more traffic (local = machines x window)")
        out.append(table(
            ["volume", "requests", "tokens", "machines", "utilization", "local", "GPU-eq"] + total.apis.map(\.model),
            whatIf.map {
                ["x\($0.factor)", "\($0.requests)", "\($0.tokens)", "\($0.machines)", percent($0.utilization),
                 formatUSD($0.localNanoUSD), formatUSD($0.gpuNanoUSD)] + $0.apis.map { formatUSD($0.standardNanoUSD) }
            }))
        if !budgets.isEmpty {
            out.append("")
            out.append("Budgets (spend this period, as of \(generatedAt))")
            out.append(table(["tenant", "period", "basis", "spent", "limit", "used", "resets"], budgets.map {
                [$0.tenant, $0.period, $0.basis, formatUSD($0.spentNanoUSD), formatUSD($0.limitNanoUSD),
                 $0.limitNanoUSD == 0 ? "-" : percent(Double($0.spentNanoUSD) / Double($0.limitNanoUSD)), $0.periodEnd]
            }))
        }
        if !notes.isEmpty {
            out.append("")
            out.append("Notes")
            out.append(contentsOf: notes.map { "- " + $0 })
        }
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: CSV

    /// One row for `all` and one per group; money in nano-USD (`*_nusd`), durations in µs (`*_us`).
    package func renderCSV() -> String {
        var header = [
            "group_by", "key", "requests", "prompt_tokens", "cached_tokens", "cache_write_tokens", "generated_tokens",
            "cache_hit_rate", "decode_tokens_per_second", "busy_tokens_per_second", "busy_share_us",
            "local_cost_nusd", "local_per_request_nusd", "local_per_1m_tokens_nusd",
            "gpu_cost_nusd", "gpu_per_request_nusd", "gpu_per_1m_tokens_nusd", "gpu_cache_savings_nusd",
        ]
        for api in total.apis {
            let m = api.model
            header += ["\(m) cost_nusd", "\(m) batch_cost_nusd", "\(m) per_1m_tokens_nusd", "\(m) savings_nusd",
                       "\(m) cache_savings_nusd"]
        }
        header += ["prices", "prices_as_of", "machine", "gpu"]
        var rows = [header]
        for (index, line) in ([total] + groups).enumerated() {
            var row = [
                index == 0 ? "all" : (grouping?.rawValue ?? ""), line.key,
                "\(line.requests)", "\(line.promptTokens)", "\(line.cachedTokens)", "\(line.cacheWriteTokens)",
                "\(line.generatedTokens)", number(line.cacheHitRate), number(line.decodeTokensPerSecond),
                number(line.busyTokensPerSecond), "\(line.busyShareMicros)",
                "\(line.local.totalNanoUSD)", "\(line.local.perRequestNanoUSD)", "\(line.local.perMillionTokensNanoUSD)",
                "\(line.gpu.totalNanoUSD)", "\(line.gpu.perRequestNanoUSD)", "\(line.gpu.perMillionTokensNanoUSD)",
                "\(line.gpuCacheSavingsNanoUSD)",
            ]
            for api in line.apis {
                row += ["\(api.standard.totalNanoUSD)", "\(api.batch.totalNanoUSD)", "\(api.standard.perMillionTokensNanoUSD)",
                        "\(api.savingsVsLocalNanoUSD)", "\(api.cacheSavingsNanoUSD)"]
            }
            row += [prices.name, prices.asOf, machine.name, gpu.name]
            rows.append(row)
        }
        return rows.map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    // MARK: JSON

    package func renderJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "{}\n" }
        return text + "\n"
    }

    // MARK: HTML

    /// One page, no external resources: the figures as tables and three inline SVG charts (cost per day,
    /// self-host versus each API, what the prefix cache saved).
    package func renderHTML() -> String {
        let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
        var series: [(name: String, values: [Int64])] = [
            ("local", days.map(\.localNanoUSD)), ("GPU-eq \(gpu.name)", days.map(\.gpuNanoUSD)),
        ]
        for (i, api) in total.apis.enumerated() { series.append((api.model, days.map { $0.apiNanoUSD[i] })) }

        var vsAPI: [(String, Int64)] = [("local (busy share)", total.local.totalNanoUSD),
                                         ("local (machine bill, window)", utilization.machineCostNanoUSD),
                                         ("GPU-eq \(gpu.name)", total.gpu.totalNanoUSD)]
        for api in total.apis {
            vsAPI.append((api.model, api.standard.totalNanoUSD))
            vsAPI.append((api.model + " batch", api.batch.totalNanoUSD))
        }
        var cache: [(String, Int64)] = [("GPU-eq \(gpu.name)", total.gpuCacheSavingsNanoUSD)]
        cache += total.apis.map { ($0.model, $0.cacheSavingsNanoUSD) }

        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>tally cost report</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
            table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
            td:first-child,th:first-child{text-align:left}svg{display:block;margin:0.5em 0 1.5em}.muted{color:#666}
            </style></head><body>
            <h1>tally cost report</h1>

            """
        html += "<p class=\"muted\">generated \(htmlEscape(generatedAt)); window \(htmlEscape(windowStart)) .. \(htmlEscape(windowEnd)); "
            + "prices \(htmlEscape(prices.name)) (as of \(htmlEscape(prices.asOf))); machine \(htmlEscape(machine.name)) "
            + "\(htmlEscape(formatUSD(machine.hourlyNanoUSD)))/h; GPU \(htmlEscape(gpu.name)) \(htmlEscape(formatUSD(gpu.hourlyNanoUSD)))/h, "
            + "mfu \(number(gpu.assumptions.mfu)), mbu \(number(gpu.assumptions.mbu)), decode batch \(gpu.assumptions.decodeBatch)</p>\n"
        html += "<h2>Cost per day</h2>\n" + lineChart(days: days.map(\.day), series: series, palette: palette)
        html += "<h2>Self-host versus each API (all requests)</h2>\n" + barChart(vsAPI, palette: palette)
        html += "<h2>What the prefix cache saved</h2>\n" + barChart(cache, palette: palette)
        html += "<h2>Figures</h2>\n"
        html += htmlTable(["group", "requests", "prompt", "cached", "generated", "cache hit", "local", "local/1M", "GPU-eq", "GPU-eq/1M"],
                          ([total] + groups).map {
                              [$0.key, "\($0.requests)", "\($0.promptTokens)", "\($0.cachedTokens)", "\($0.generatedTokens)",
                               percent($0.cacheHitRate), formatUSD($0.local.totalNanoUSD), formatUSD($0.local.perMillionTokensNanoUSD),
                               formatUSD($0.gpu.totalNanoUSD), formatUSD($0.gpu.perMillionTokensNanoUSD)]
                          })
        html += htmlTable(["api", "standard", "batch", "std/1M", "savings", "break-even tok/month", "break-even util"],
                          zip(total.apis, breakEven).map { api, even in
                              [api.model, formatUSD(api.standard.totalNanoUSD), formatUSD(api.batch.totalNanoUSD),
                               formatUSD(api.standard.perMillionTokensNanoUSD), formatUSD(api.savingsVsLocalNanoUSD),
                               "\(even.breakEvenTokensPerMonth)", percent(even.breakEvenUtilization)]
                          })
        html += "<p>Utilization \(percent(utilization.utilization)): busy \(htmlEscape(hours(utilization.busyMicros))), "
            + "idle \(htmlEscape(hours(utilization.idleMicros))).</p>\n"
        if !budgets.isEmpty {
            html += "<h2>Budgets this period</h2>\n"
            html += htmlTable(["tenant", "period", "basis", "spent", "limit", "resets"], budgets.map {
                [$0.tenant, $0.period, $0.basis, formatUSD($0.spentNanoUSD), formatUSD($0.limitNanoUSD), $0.periodEnd]
            })
        }
        for note in notes { html += "<p class=\"muted\">\(htmlEscape(note))</p>\n" }
        return html + "</body></html>\n"
    }
}

// MARK: Helpers

private func number(_ x: Double) -> String {
    var text = String(format: "%.6f", x)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
}

/// Two decimals, or four for small non-zero shares (a lightly used machine is 0.0041 %, not 0.00 %).
private func percent(_ x: Double) -> String {
    x > 0 && x < 0.0001 ? String(format: "%.4f%%", x * 100) : String(format: "%.2f%%", x * 100)
}

private func hours(_ micros: Int64) -> String { String(format: "%.3f h", Double(micros) / 3.6e9) }

/// Left-aligned first column, right-aligned others, two spaces apart.
private func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { column, cell in
            let pad = String(repeating: " ", count: widths[column] - cell.count)
            return column == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }.joined(separator: "\n")
}

private func csvField(_ field: String) -> String {
    guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return field }
    return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Text made safe inside HTML elements and double-quoted attributes (`tally report --html`, `tally bench --html`).
package func htmlEscape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

private func htmlTable(_ header: [String], _ rows: [[String]]) -> String {
    "<table><tr>" + header.map { "<th>\(htmlEscape($0))</th>" }.joined() + "</tr>\n"
        + rows.map { "<tr>" + $0.map { "<td>\(htmlEscape($0))</td>" }.joined() + "</tr>" }.joined(separator: "\n") + "</table>\n"
}

/// Horizontal bars, one per item, labelled with the dollar value.
private func barChart(_ items: [(String, Int64)], palette: [String]) -> String {
    let width = 900.0, labelWidth = 260.0, barHeight = 18.0, gap = 6.0
    let top = max(1, items.map { $0.1 }.max() ?? 1)
    let height = Double(items.count) * (barHeight + gap) + gap
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">\n"
    for (i, item) in items.enumerated() {
        let y = gap + Double(i) * (barHeight + gap)
        let length = max(0, Double(item.1) / Double(top) * (width - labelWidth - 140))
        svg += "<text x=\"0\" y=\"\(Int(y + 13))\" font-size=\"12\">\(htmlEscape(item.0))</text>"
            + "<rect x=\"\(Int(labelWidth))\" y=\"\(Int(y))\" width=\"\(String(format: "%.1f", length))\" height=\"\(Int(barHeight))\" fill=\"\(palette[i % palette.count])\"/>"
            + "<text x=\"\(String(format: "%.1f", labelWidth + length + 6))\" y=\"\(Int(y + 13))\" font-size=\"12\">\(htmlEscape(formatUSD(item.1)))</text>\n"
    }
    return svg + "</svg>\n"
}

/// One polyline per series over the days (a dot per day), with a legend.
private func lineChart(days: [String], series: [(name: String, values: [Int64])], palette: [String]) -> String {
    let width = 900.0, height = 300.0, left = 90.0, right = 220.0, top = 10.0, bottom = 40.0
    let plotWidth = width - left - right, plotHeight = height - top - bottom
    let maxValue = max(1, series.flatMap(\.values).max() ?? 1)
    func x(_ i: Int) -> Double { days.count <= 1 ? left + plotWidth / 2 : left + plotWidth * Double(i) / Double(days.count - 1) }
    func y(_ v: Int64) -> Double { top + plotHeight * (1 - Double(v) / Double(maxValue)) }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">\n"
    svg += "<line x1=\"\(Int(left))\" y1=\"\(Int(top + plotHeight))\" x2=\"\(Int(left + plotWidth))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#999\"/>"
        + "<line x1=\"\(Int(left))\" y1=\"\(Int(top))\" x2=\"\(Int(left))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#999\"/>\n"
    svg += "<text x=\"\(Int(left - 6))\" y=\"\(Int(top + 10))\" font-size=\"11\" text-anchor=\"end\">\(htmlEscape(formatUSD(maxValue)))</text>"
        + "<text x=\"\(Int(left - 6))\" y=\"\(Int(top + plotHeight))\" font-size=\"11\" text-anchor=\"end\">$0</text>\n"
    for (i, day) in days.enumerated() {
        svg += "<text x=\"\(String(format: "%.1f", x(i)))\" y=\"\(Int(height - 15))\" font-size=\"11\" text-anchor=\"middle\">\(htmlEscape(day))</text>\n"
    }
    for (s, line) in series.enumerated() {
        let color = palette[s % palette.count]
        let points = line.values.enumerated().map { String(format: "%.1f,%.1f", x($0.offset), y($0.element)) }
        if points.count > 1 {
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
        }
        for (i, v) in line.values.enumerated() {
            svg += "<circle cx=\"\(String(format: "%.1f", x(i)))\" cy=\"\(String(format: "%.1f", y(v)))\" r=\"3\" fill=\"\(color)\"/>"
        }
        let legendY = top + 14 * Double(s) + 10
        svg += "<rect x=\"\(Int(width - right + 10))\" y=\"\(Int(legendY - 9))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            + "<text x=\"\(Int(width - right + 25))\" y=\"\(Int(legendY))\" font-size=\"11\">\(htmlEscape(line.name))</text>\n"
    }
    return svg + "</svg>\n"
}
