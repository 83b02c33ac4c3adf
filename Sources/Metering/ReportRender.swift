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
        out.append("")
        out.append(wrap(verdict.text, width: 100))
        out.append("")
        out.append("range      \(since ?? "(start)") .. \(until ?? "(end)")")
        out.append("window     \(windowStart) .. \(windowEnd) (\(hoursText(utilization.windowMicros)))")
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
        // Embedding tokens get a column of their own when there are any (priced at embedding prices).
        let embeddings = total.embeddingTokens > 0
        out.append("Usage")
        out.append(table(
            ["group", "requests", "prompt", "cached", "generated"] + (embeddings ? ["embedding"] : [])
                + ["cache hit", "decode tok/s", "busy tok/s"],
            lines.map {
                [$0.key, "\($0.requests)", "\($0.promptTokens)", "\($0.cachedTokens)", "\($0.generatedTokens)"]
                    + (embeddings ? ["\($0.embeddingTokens)"] : [])
                    + [percentText($0.cacheHitRate), number($0.decodeTokensPerSecond), number($0.busyTokensPerSecond)]
            }))
        out.append("")
        out.append("Self-host cost (bill = machine $/h x provisioned hours, shared by busy time: the measured utilization;")
        out.append("full util. = machine $/h x busy time alone: the cost if the machine were never idle)")
        out.append(table(
            ["group", "bill", "bill/request", "bill/1M tok", "full util./1M tok", "GPU-eq", "GPU-eq/1M tok", "GPU cache savings"],
            lines.map {
                [$0.key, formatUSD($0.bill.totalNanoUSD), formatUSD($0.bill.perRequestNanoUSD),
                 formatUSD($0.bill.perMillionTokensNanoUSD), formatUSD($0.local.perMillionTokensNanoUSD),
                 formatUSD($0.gpu.totalNanoUSD), formatUSD($0.gpu.perMillionTokensNanoUSD), formatUSD($0.gpuCacheSavingsNanoUSD)]
            }))
        out.append("")
        out.append("API-equivalent, all requests (savings = API - bill; standard includes the API's prompt-cache discount)")
        out.append(table(
            ["api", "standard", "no cache", "batch", "std/request", "std/1M tok", "savings", "batch savings", "cache savings"],
            total.apis.map {
                [$0.model, formatUSD($0.standard.totalNanoUSD), formatUSD($0.uncached.totalNanoUSD), formatUSD($0.batch.totalNanoUSD),
                 formatUSD($0.standard.perRequestNanoUSD), formatUSD($0.standard.perMillionTokensNanoUSD),
                 formatUSD($0.savingsVsBillNanoUSD), formatUSD($0.batchSavingsVsBillNanoUSD), formatUSD($0.cacheSavingsNanoUSD)]
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
        out.append("provisioned \(hoursText(u.provisionedMicros)) on \(u.machines) machine(s) in \(u.runs) server run(s); "
            + "busy \(hoursText(u.busyMicros)), idle \(hoursText(u.idleMicros)), utilization \(percentText(u.utilization))")
        out.append("bill \(formatUSD(u.billNanoUSD)); per 1M tokens \(formatUSD(u.perMillionAtMeasuredNanoUSD)) at the measured utilization, "
            + "\(formatUSD(u.perMillionAtFullNanoUSD)) at full utilization")
        out.append("capacity \(number(u.capacityTokensPerSecond)) tokens/s per machine (\(u.capacitySource))")
        out.append("")
        out.append("Break-even: one always-on machine (\(hoursPerMonth) h/month) against each API at the recorded token mix")
        out.append(table(
            ["api", "api/1M tok", "machine/month", "break-even tok/month", "capacity tok/month", "break-even util", "recorded tok/month"],
            breakEven.map {
                [$0.model, formatUSD($0.apiPerMillionNanoUSD), formatUSD($0.machineMonthlyNanoUSD), "\($0.breakEvenTokensPerMonth)",
                 "\($0.capacityTokensPerMonth)", percentText($0.breakEvenUtilization), "\($0.recordedTokensPerMonth)"]
            }))
        out.append("")
        out.append("What if the window had more traffic (machines the measured capacity needs, each provisioned as long)")
        out.append(table(
            ["volume", "requests", "tokens", "tok/month", "machines", "utilization", "bill", "GPU-eq"] + total.apis.map(\.model),
            whatIf.map {
                ["x\($0.factor)", "\($0.requests)", "\($0.tokens)", "\($0.tokensPerMonth)", "\($0.machines)", percentText($0.utilization),
                 formatUSD($0.billNanoUSD), formatUSD($0.gpuNanoUSD)] + $0.apis.map { formatUSD($0.standardNanoUSD) }
            }))
        if workflows.workflows > 0 {
            let w = workflows
            out.append("")
            out.append("Workflows (calls sent with X-Tally-Session; by session: --by session)")
            out.append("\(grouped(w.workflows)) workflows, \(grouped(w.calls)) calls (\(number(w.callsPerWorkflow)) per workflow), "
                + "\(grouped(w.callsOutsideWorkflows)) calls outside one; per workflow: bill \(formatUSD(w.billPerWorkflowNanoUSD)), "
                + w.apiPerWorkflow.map { "\($0.model) \(formatUSD($0.standardNanoUSD))" }.joined(separator: ", "))
        }
        if !outcomes.isEmpty {
            out.append("")
            out.append("Outcomes (POST /v1/outcomes; the calls each outcome marks, by request id or workflow; a call marked twice counts in both)")
            out.append(table(
                ["outcome", "outcomes", "calls", "tokens", "value", "bill share", "bill/outcome"] + total.apis.map { $0.model + "/outcome" },
                outcomes.map {
                    [$0.label, "\($0.outcomes)", "\($0.line.requests)", "\($0.line.totalTokens)", number($0.valueSum),
                     formatUSD($0.line.bill.totalNanoUSD), $0.outcomes == 0 ? "-" : formatUSD($0.billPerOutcomeNanoUSD)]
                        + $0.apiPerOutcome.map { formatUSD($0.standardNanoUSD) }
                }))
        }
        if !budgets.isEmpty {
            out.append("")
            out.append("Budgets (spend this period, as of \(generatedAt))")
            out.append(table(["tenant", "period", "basis", "spent", "limit", "used", "resets"], budgets.map {
                [$0.tenant, $0.period, $0.basis, formatUSD($0.spentNanoUSD), formatUSD($0.limitNanoUSD),
                 $0.limitNanoUSD == 0 ? "-" : percentText(Double($0.spentNanoUSD) / Double($0.limitNanoUSD)), $0.periodEnd]
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
            "bill_nusd", "bill_per_request_nusd", "bill_per_1m_tokens_nusd",
            "full_utilization_cost_nusd", "full_utilization_per_request_nusd", "full_utilization_per_1m_tokens_nusd",
            "gpu_cost_nusd", "gpu_per_request_nusd", "gpu_per_1m_tokens_nusd", "gpu_cache_savings_nusd",
        ]
        for api in total.apis {
            let m = api.model
            header += ["\(m) cost_nusd", "\(m) uncached_cost_nusd", "\(m) batch_cost_nusd", "\(m) per_1m_tokens_nusd",
                       "\(m) savings_vs_bill_nusd", "\(m) cache_savings_nusd"]
        }
        header += ["prices", "prices_as_of", "machine", "gpu"]
        var rows = [header]
        for (index, line) in ([total] + groups).enumerated() {
            var row = [
                index == 0 ? "all" : (grouping?.rawValue ?? ""), line.key,
                "\(line.requests)", "\(line.promptTokens)", "\(line.cachedTokens)", "\(line.cacheWriteTokens)",
                "\(line.generatedTokens)", number(line.cacheHitRate), number(line.decodeTokensPerSecond),
                number(line.busyTokensPerSecond), "\(line.busyShareMicros)",
                "\(line.bill.totalNanoUSD)", "\(line.bill.perRequestNanoUSD)", "\(line.bill.perMillionTokensNanoUSD)",
                "\(line.local.totalNanoUSD)", "\(line.local.perRequestNanoUSD)", "\(line.local.perMillionTokensNanoUSD)",
                "\(line.gpu.totalNanoUSD)", "\(line.gpu.perRequestNanoUSD)", "\(line.gpu.perMillionTokensNanoUSD)",
                "\(line.gpuCacheSavingsNanoUSD)",
            ]
            for api in line.apis {
                row += ["\(api.standard.totalNanoUSD)", "\(api.uncached.totalNanoUSD)", "\(api.batch.totalNanoUSD)",
                        "\(api.standard.perMillionTokensNanoUSD)", "\(api.savingsVsBillNanoUSD)", "\(api.cacheSavingsNanoUSD)"]
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
        encoder.keyEncodingStrategy = Report.jsonKeys
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "{}\n" }
        return text + "\n"
    }

    // MARK: HTML

    /// One page, no external resources: the verdict, the figures as tables and four inline SVG charts (cost
    /// per day, self-host versus each API, what the prefix cache saved, cost against monthly volume). Each
    /// series keeps one colour in every chart.
    package func renderHTML() -> String {
        let colors = SeriesColors(apis: total.apis.map(\.model))
        var series: [ChartSeries] = [
            ChartSeries("self-host at full utilization", colors.fullUtilization, days.map(\.localNanoUSD)),
            ChartSeries("GPU-eq \(gpu.name)", colors.gpu, days.map(\.gpuNanoUSD)),
        ]
        for (i, api) in total.apis.enumerated() { series.append(ChartSeries(api.model, colors.api(api.model), days.map { $0.apiNanoUSD[i] })) }

        var vsAPI: [ChartSeries] = [ChartSeries("self-host bill", colors.bill, [utilization.billNanoUSD]),
                                    ChartSeries("self-host at full utilization", colors.fullUtilization, [total.local.totalNanoUSD]),
                                    ChartSeries("GPU-eq \(gpu.name)", colors.gpu, [total.gpu.totalNanoUSD])]
        for api in total.apis {
            vsAPI.append(ChartSeries(api.model, colors.api(api.model), [api.standard.totalNanoUSD]))
            vsAPI.append(ChartSeries(api.model + " batch", colors.api(api.model), [api.batch.totalNanoUSD]))
        }
        var cache = [ChartSeries("GPU-eq \(gpu.name)", colors.gpu, [total.gpuCacheSavingsNanoUSD])]
        cache += total.apis.map { ChartSeries($0.model, colors.api($0.model), [$0.cacheSavingsNanoUSD]) }

        // For a finance reader: totals in cents, unit costs (per request, per 1M tokens, per outcome) to 3
        // significant figures, token counts with separators, every table within 1000 px (API columns become rows).
        let cents = centsText, unit = unitUSDText
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>tally cost report</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}
            table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:2px 5px;text-align:right}
            td:first-child,th:first-child{text-align:left}svg{display:block;margin:0.5em 0 1.5em;max-width:100%;height:auto}
            .muted{color:#666}.verdict{font-size:1.1em;line-height:1.5}
            </style></head><body>
            <h1>tally cost report</h1>

            """
        html += "<p class=\"verdict\" id=\"verdict\">\(htmlEscape(verdictText(cents, rate: unit)))</p>\n"
        html += "<p class=\"muted\">generated \(htmlEscape(generatedAt)); window \(htmlEscape(windowStart)) .. \(htmlEscape(windowEnd)); "
            + "prices \(htmlEscape(prices.name)) (as of \(htmlEscape(prices.asOf))); machine \(htmlEscape(machine.name)) "
            + "\(htmlEscape(unit(machine.hourlyNanoUSD)))/h; GPU \(htmlEscape(gpu.name)) \(htmlEscape(unit(gpu.hourlyNanoUSD)))/h, "
            + "mfu \(number(gpu.assumptions.mfu)), mbu \(number(gpu.assumptions.mbu)), decode batch \(gpu.assumptions.decodeBatch). "
            + "Totals in dollars and cents, unit costs to 3 significant figures; chart labels to 3 significant figures.</p>\n"
        html += "<h2>Self-host versus each API (all requests)</h2>\n" + barChart(vsAPI)
        html += "<h2>Cost per day</h2>\n" + lineChart(days: days.map(\.day), series: series)
        html += "<h2>What the prefix cache saved</h2>\n" + barChart(cache)
        html += "<h2>Figures</h2>\n"
        html += htmlTable(["group", "requests", "prompt tok", "cached tok", "generated tok", "cache hit", "bill", "bill/1M tok",
                           "full util./1M tok", "GPU-eq/1M tok"],
                          ([total] + groups).map {
                              [$0.key, grouped($0.requests), grouped($0.promptTokens), grouped($0.cachedTokens), grouped($0.generatedTokens),
                               percentText($0.cacheHitRate), cents($0.bill.totalNanoUSD), unit($0.bill.perMillionTokensNanoUSD),
                               unit($0.local.perMillionTokensNanoUSD), unit($0.gpu.perMillionTokensNanoUSD)]
                          })
        html += htmlTable(["api", "standard", "no cache", "batch", "std/1M tok", "savings vs bill", "break-even tok/month", "break-even util"],
                          zip(total.apis, breakEven).map { api, even in
                              [api.model, cents(api.standard.totalNanoUSD), cents(api.uncached.totalNanoUSD), cents(api.batch.totalNanoUSD),
                               unit(api.standard.perMillionTokensNanoUSD), cents(api.savingsVsBillNanoUSD),
                               grouped(even.breakEvenTokensPerMonth), percentText(even.breakEvenUtilization)]
                          })
        html += "<p>Utilization \(percentText(utilization.utilization)): provisioned \(htmlEscape(hoursText(utilization.provisionedMicros))) "
            + "on \(utilization.machines) machine(s), busy \(htmlEscape(hoursText(utilization.busyMicros))), "
            + "idle \(htmlEscape(hoursText(utilization.idleMicros))); the bill is \(htmlEscape(cents(utilization.billNanoUSD))), "
            + "\(htmlEscape(unit(utilization.perMillionAtMeasuredNanoUSD))) per 1M tokens at this utilization and "
            + "\(htmlEscape(unit(utilization.perMillionAtFullNanoUSD))) at full utilization.</p>\n"
        html += "<h2>What if usage grows</h2>\n"
        html += "<p>The window's volume times 1, 10 and 100, served by as many machines as the measured capacity "
            + "(\(htmlEscape(number(utilization.capacityTokensPerSecond))) tokens/s, \(htmlEscape(utilization.capacitySource))) needs.</p>\n"
        html += htmlTable(["", ] + whatIf.map { "x\($0.factor)" },
                          [["tokens/month"] + whatIf.map { grouped($0.tokensPerMonth) },
                           ["machines"] + whatIf.map { "\($0.machines)" },
                           ["utilization"] + whatIf.map { percentText($0.utilization) },
                           ["self-host bill"] + whatIf.map { cents($0.billNanoUSD) }]
                            + total.apis.indices.map { i in [total.apis[i].model] + whatIf.map { cents($0.apis[i].standardNanoUSD) } })
        html += volumeChart(colors: colors)
        if workflows.workflows > 0 {
            let w = workflows
            html += "<h2>Workflows</h2>\n<p>\(grouped(w.workflows)) workflows (X-Tally-Session), \(grouped(w.calls)) calls, "
                + "\(htmlEscape(number(w.callsPerWorkflow))) calls per workflow; \(grouped(w.callsOutsideWorkflows)) calls outside one.</p>\n"
            html += htmlTable(["cost per workflow", ""],
                              [["self-host bill", unit(w.billPerWorkflowNanoUSD)]] + w.apiPerWorkflow.map { [$0.model, unit($0.standardNanoUSD)] })
        }
        if !outcomes.isEmpty {
            html += "<h2>Cost per outcome</h2>\n"
            html += htmlTable(["outcome", "outcomes", "calls", "bill share", "bill/outcome"],
                              outcomes.map {
                                  [$0.label, grouped($0.outcomes), grouped($0.line.requests), cents($0.line.bill.totalNanoUSD),
                                   $0.outcomes == 0 ? "-" : unit($0.billPerOutcomeNanoUSD)]
                              })
            let marked = outcomes.filter { $0.outcomes > 0 }
            html += htmlTable(["API per outcome"] + marked.map(\.label),
                              total.apis.indices.map { i in [total.apis[i].model] + marked.map { unit($0.apiPerOutcome[i].standardNanoUSD) } })
        }
        if !budgets.isEmpty {
            html += "<h2>Budgets this period</h2>\n"
            html += htmlTable(["tenant", "period", "basis", "spent", "limit", "resets"], budgets.map {
                [$0.tenant, $0.period, $0.basis, cents($0.spentNanoUSD), cents($0.limitNanoUSD), $0.periodEnd]
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

/// One line (or bar) of a chart: its name in the legend, its colour, its values.
private struct ChartSeries {
    var name: String
    var color: String
    var values: [Int64]
    init(_ name: String, _ color: String, _ values: [Int64]) {
        self.name = name
        self.color = color
        self.values = values
    }
}

/// One colour per series, the same in every chart: the bill, full-utilization cost, GPU, then each API.
private struct SeriesColors {
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                          "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
    let apis: [String]
    var bill: String { Self.palette[0] }
    var fullUtilization: String { "#7f7f7f" }
    var gpu: String { Self.palette[1] }
    func api(_ model: String) -> String { Self.palette[(2 + (apis.firstIndex(of: model) ?? 0)) % Self.palette.count] }
}

/// Horizontal bars, one per item (its first value), labelled with the dollar value.
private func barChart(_ series: [ChartSeries]) -> String {
    let items = series.map { ($0.name, $0.values.first ?? 0, $0.color) }
    let width = 900.0, labelWidth = 260.0, barHeight = 18.0, gap = 6.0
    let top = max(1, items.map { $0.1 }.max() ?? 1)
    let height = Double(items.count) * (barHeight + gap) + gap
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">\n"
    for (i, item) in items.enumerated() {
        let y = gap + Double(i) * (barHeight + gap)
        let length = max(0, Double(item.1) / Double(top) * (width - labelWidth - 140))
        svg += "<text x=\"0\" y=\"\(Int(y + 13))\" font-size=\"12\">\(htmlEscape(item.0))</text>"
            + "<rect x=\"\(Int(labelWidth))\" y=\"\(Int(y))\" width=\"\(String(format: "%.1f", length))\" height=\"\(Int(barHeight))\" fill=\"\(item.2)\"/>"
            + "<text x=\"\(String(format: "%.1f", labelWidth + length + 6))\" y=\"\(Int(y + 13))\" font-size=\"12\">\(htmlEscape(unitUSDText(item.1)))</text>\n"
    }
    return svg + "</svg>\n"
}

/// One polyline per series over the days (a dot per day), with a legend.
private func lineChart(days: [String], series: [ChartSeries]) -> String {
    let width = 900.0, height = 300.0, left = 90.0, right = 220.0, top = 10.0, bottom = 40.0
    let plotWidth = width - left - right, plotHeight = height - top - bottom
    let maxValue = max(1, series.flatMap(\.values).max() ?? 1)
    func x(_ i: Int) -> Double { days.count <= 1 ? left + plotWidth / 2 : left + plotWidth * Double(i) / Double(days.count - 1) }
    func y(_ v: Int64) -> Double { top + plotHeight * (1 - Double(v) / Double(maxValue)) }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">\n"
    svg += "<line x1=\"\(Int(left))\" y1=\"\(Int(top + plotHeight))\" x2=\"\(Int(left + plotWidth))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#999\"/>"
        + "<line x1=\"\(Int(left))\" y1=\"\(Int(top))\" x2=\"\(Int(left))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#999\"/>\n"
    svg += "<text x=\"\(Int(left - 6))\" y=\"\(Int(top + 10))\" font-size=\"11\" text-anchor=\"end\">\(htmlEscape(unitUSDText(maxValue)))</text>"
        + "<text x=\"\(Int(left - 6))\" y=\"\(Int(top + plotHeight))\" font-size=\"11\" text-anchor=\"end\">$0</text>\n"
    for (i, day) in days.enumerated() {
        svg += "<text x=\"\(String(format: "%.1f", x(i)))\" y=\"\(Int(height - 15))\" font-size=\"11\" text-anchor=\"middle\">\(htmlEscape(day))</text>\n"
    }
    for (s, line) in series.enumerated() {
        let color = line.color
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

/// Text wrapped at spaces to lines of at most `width` characters (a longer word stays whole).
private func wrap(_ text: String, width: Int) -> String {
    var lines: [String] = [], line = ""
    for word in text.split(separator: " ") {
        if !line.isEmpty && line.count + 1 + word.count > width {
            lines.append(line)
            line = ""
        }
        line += (line.isEmpty ? "" : " ") + word
    }
    if !line.isEmpty { lines.append(line) }
    return lines.joined(separator: "\n")
}

extension Report {
    /// Monthly cost against monthly volume, both axes logarithmic: self-hosting is a step function (one
    /// more machine each time the volume passes a machine's measured capacity), each API a straight line
    /// (standard tier at the recorded token mix). Marks the window's own volume.
    fileprivate func volumeChart(colors: SeriesColors) -> String {
        let recorded = max(1, whatIf.first?.tokensPerMonth ?? 1)
        let capacity = breakEven.first?.capacityTokensPerMonth ?? 0
        let monthly = machine.hourlyNanoUSD * hoursPerMonth
        let marks = [recorded, recorded * 100] + breakEven.map(\.breakEvenTokensPerMonth).filter { $0 > 0 && $0 < recorded * 100_000_000 }
        let lo = pow(10, floor(log10(Double(marks.min()!)))), hi = pow(10, ceil(log10(Double(marks.max()!) * 1.5)))
        func selfHost(_ volume: Double) -> Double {
            Double(monthly) * (capacity == 0 ? 1 : max(1, (volume / Double(capacity)).rounded(.up)))
        }
        var lines = [ChartSeries("self-host bill", colors.bill, [])]
        let samples = (0...240).map { lo * pow(hi / lo, Double($0) / 240) }
        lines[0].values = samples.map { Int64(selfHost($0)) }
        for api in total.apis {
            lines.append(ChartSeries(api.model, colors.api(api.model),
                                     samples.map { Int64($0 * Double(api.standard.perMillionTokensNanoUSD) / 1e6) }))
        }
        let positive = lines.flatMap(\.values).filter { $0 > 0 }
        let yLo = pow(10, floor(log10(Double(positive.min() ?? 1)))), yHi = pow(10, ceil(log10(Double(positive.max() ?? 10))))
        let width = 900.0, height = 340.0, left = 90.0, right = 230.0, top = 10.0, bottom = 45.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ v: Double) -> Double { left + plotWidth * log10(v / lo) / log10(hi / lo) }
        func y(_ v: Double) -> Double { top + plotHeight * (1 - log10(max(v, yLo) / yLo) / log10(yHi / yLo)) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" id=\"volume-chart\">\n"
        svg += "<line x1=\"\(Int(left))\" y1=\"\(Int(top + plotHeight))\" x2=\"\(Int(left + plotWidth))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#999\"/>"
            + "<line x1=\"\(Int(left))\" y1=\"\(Int(top))\" x2=\"\(Int(left))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#999\"/>\n"
        var decade = lo
        while decade <= hi * 1.001 {
            svg += "<text x=\"\(String(format: "%.1f", x(decade)))\" y=\"\(Int(top + plotHeight + 15))\" font-size=\"11\" text-anchor=\"middle\">\(htmlEscape(grouped(Int64(decade))))</text>\n"
            decade *= 10
        }
        var tick = yLo
        while tick <= yHi * 1.001 {
            svg += "<text x=\"\(Int(left - 6))\" y=\"\(String(format: "%.1f", y(tick) + 4))\" font-size=\"11\" text-anchor=\"end\">\(htmlEscape(unitUSDText(Int64(tick))))</text>\n"
            tick *= 10
        }
        svg += "<text x=\"\(Int(left + plotWidth / 2))\" y=\"\(Int(height - 5))\" font-size=\"11\" text-anchor=\"middle\">tokens per month (this window: \(htmlEscape(grouped(recorded))))</text>\n"
        svg += "<line x1=\"\(String(format: "%.1f", x(Double(recorded))))\" y1=\"\(Int(top))\" x2=\"\(String(format: "%.1f", x(Double(recorded))))\" y2=\"\(Int(top + plotHeight))\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n"
        for (s, line) in lines.enumerated() {
            let points = zip(samples, line.values).map { String(format: "%.1f,%.1f", x($0), y(Double($1))) }
            svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            let legendY = top + 14 * Double(s) + 10
            svg += "<rect x=\"\(Int(width - right + 10))\" y=\"\(Int(legendY - 9))\" width=\"10\" height=\"10\" fill=\"\(line.color)\"/>"
                + "<text x=\"\(Int(width - right + 25))\" y=\"\(Int(legendY))\" font-size=\"11\">\(htmlEscape(line.name))</text>\n"
        }
        return svg + "</svg>\n"
    }
}
