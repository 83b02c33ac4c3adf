// Cost reports: `makeReport` turns usage records, server runs and dated prices and profiles into figures:
// requests, tokens, cache hit rate, speed; the machine's bill for the hours it was provisioned (busy or
// idle) against what each API would have charged for the same tokens; a verdict; break-even; what-if
// volumes. Pure: the clock comes in as `generatedAtMicros`. Renderers are in ReportRender.swift.
//
// Self-hosting is a fixed hourly cost: the bill is machine $/h x provisioned hours, and "savings" are only
// ever API cost minus that bill. The busy-share cost (machine $/h x engine busy time) is the unit cost at
// full utilization, labelled so, never compared as if it were the bill.

import Foundation

/// A money figure three ways.
package struct Money: Sendable, Equatable, Codable {
    package var totalNanoUSD: Int64
    package var perRequestNanoUSD: Int64
    /// Per 1M tokens, prompt (cached included) plus generated.
    package var perMillionTokensNanoUSD: Int64

    package init(total: Int64, requests: Int, tokens: Int) {
        totalNanoUSD = total
        perRequestNanoUSD = requests == 0 ? 0 : CostModel.mulDiv(total, 1, Int64(requests))
        perMillionTokensNanoUSD = tokens == 0 ? 0 : CostModel.mulDiv(total, CostModel.tokensPerMillion, Int64(tokens))
    }
}

/// One API's figures for a set of records: each a sum of what the responses said, request by request.
package struct APILine: Sendable, Equatable, Codable {
    package var model: String
    /// Standard tier with its prompt-cache discount on the tokens tally's prefix cache hit.
    package var standard: Money
    /// Standard tier with no cache hits (list price for every prompt token).
    package var uncached: Money
    package var batch: Money
    /// API standard minus the machine's bill (this line's share of it): what self-hosting saved (negative:
    /// it cost more).
    package var savingsVsBillNanoUSD: Int64
    /// API batch minus the bill share.
    package var batchSavingsVsBillNanoUSD: Int64
    /// What the cached tokens saved on this API: `uncached - standard`.
    package var cacheSavingsNanoUSD: Int64
}

/// Figures of one group (or of everything: key `all`).
package struct ReportLine: Sendable, Equatable, Codable {
    package var key: String
    package var requests: Int
    package var promptTokens: Int
    package var cachedTokens: Int
    package var cacheWriteTokens: Int
    package var generatedTokens: Int
    /// Prompt tokens of embedding requests (not in promptTokens: priced at the APIs' embedding prices).
    package var embeddingTokens: Int
    package var totalTokens: Int
    /// cached / prompt tokens.
    package var cacheHitRate: Double
    /// Generated tokens per second of decode time: the speed a client saw.
    package var decodeTokensPerSecond: Double
    /// Computed tokens (uncached prompt + generated) per second of busy share: engine throughput.
    package var busyTokensPerSecond: Double
    package var busyShareMicros: Int64
    /// This line's share of the machine's bill (bill x its busy share / all busy time): what its requests
    /// cost end to end at the measured utilization.
    package var bill: Money
    /// Machine $/h x busy share: the cost at full utilization (what `usage.cost.local` says per response).
    package var local: Money
    package var gpu: Money
    /// GPU-equivalent cost with no prefix-cache hits minus the real one.
    package var gpuCacheSavingsNanoUSD: Int64
    package var apis: [APILine]
}

/// The machine's bill over the report's window: provisioned hours, busy and idle.
package struct Utilization: Sendable, Equatable, Codable {
    /// Calendar span of the window.
    package var windowMicros: Int64
    /// Machine-time provisioned in the window: server runs, merged per host, summed over hosts.
    package var provisionedMicros: Int64
    /// Hosts (replicas) that ran a server in the window.
    package var machines: Int
    package var runs: Int
    package var busyMicros: Int64
    package var idleMicros: Int64
    /// busy / provisioned.
    package var utilization: Double
    /// machine $/h x provisioned hours: what self-hosting cost in the window.
    package var billNanoUSD: Int64
    /// Bill per 1M tokens: the unit cost at the measured utilization.
    package var perMillionAtMeasuredNanoUSD: Int64
    /// Busy-share cost per 1M tokens: the unit cost at full utilization.
    package var perMillionAtFullNanoUSD: Int64
    /// Tokens one machine serves per second when busy: the measured capacity the what-if uses.
    package var capacityTokensPerSecond: Double
    /// Where the capacity came from: `busy throughput`, `peak minute` or `given`.
    package var capacitySource: String
}

/// Against one API (standard tier with caching, at the recorded token mix): the monthly volume where the
/// machines cost the same as the API.
package struct BreakEven: Sendable, Equatable, Codable {
    package var model: String
    /// 730 hours of one machine.
    package var machineMonthlyNanoUSD: Int64
    /// The API's price per 1M tokens at the recorded mix (input, cached, output shares).
    package var apiPerMillionNanoUSD: Int64
    /// One machine's monthly cost / API price per token; 0 when the API cost nothing.
    package var breakEvenTokensPerMonth: Int64
    /// Tokens per month one machine serves at full utilization (measured capacity).
    package var capacityTokensPerMonth: Int64
    /// break-even / capacity; above 1 one machine can never serve enough to break even.
    package var breakEvenUtilization: Double
    /// The window's volume at its rate over a 730-hour month.
    package var recordedTokensPerMonth: Int64
}

/// The window's volume scaled by `factor`, served by as many always-on machines as the capacity needs.
package struct WhatIf: Sendable, Equatable, Codable {
    package var factor: Int
    package var requests: Int
    package var tokens: Int
    package var tokensPerMonth: Int64
    /// ceil(tokens / (capacity x provisioned hours per machine)), at least 1.
    package var machines: Int
    package var utilization: Double
    /// machines x $/h x provisioned hours per machine.
    package var billNanoUSD: Int64
    package var gpuNanoUSD: Int64
    package var apis: [APITierCosts]
}

/// The answer first: what self-hosting cost against the cheapest API for the same tokens, and where that flips.
package struct Verdict: Sendable, Equatable, Codable {
    /// One paragraph saying it.
    package var text: String
    package var billNanoUSD: Int64
    /// The cheapest API and tier for the same tokens (`standard` with caching, or `batch`).
    package var cheapestAPI: String
    package var cheapestTier: String
    package var cheapestAPINanoUSD: Int64
    package var selfHostCheaper: Bool
    /// The dearer over the cheaper, >= 1 (0 when either is 0).
    package var factor: Double
    /// Against the cheapest API's standard tier: the monthly volume and one machine's utilization where it flips.
    package var breakEvenTokensPerMonth: Int64
    package var breakEvenUtilization: Double
    package var recordedTokensPerMonth: Int64
}

/// The workflows (`X-Tally-Session`) in the window: how many calls one takes and what one costs.
package struct Workflows: Sendable, Equatable, Codable {
    /// Distinct (tenant, session) pairs.
    package var workflows: Int
    /// Calls that carried a session.
    package var calls: Int
    package var callsPerWorkflow: Double
    /// The workflows' share of the bill / workflows.
    package var billPerWorkflowNanoUSD: Int64
    /// Each API's standard tier / workflows.
    package var apiPerWorkflow: [APITierCosts]
    /// Calls without a session.
    package var callsOutsideWorkflows: Int
}

/// What one outcome label cost: the calls its outcomes mark, directly (request id) or through their
/// workflow (session). `UsageGroup.noOutcome` holds the calls no outcome marks.
package struct OutcomeLine: Sendable, Equatable, Codable {
    package var label: String
    /// Outcomes with this label that mark a call in the window (0 for the no-outcome line).
    package var outcomes: Int
    /// Sum of their values (those sent with one).
    package var valueSum: Double
    /// The marked calls' figures: requests, tokens, bill share (`bill`), API costs.
    package var line: ReportLine
    /// bill share / outcomes: "what a resolved case cost"; 0 when there are no outcomes.
    package var billPerOutcomeNanoUSD: Int64
    package var apiPerOutcome: [APITierCosts]
}

/// One spend limit of one tenant in the period containing the report's generation time.
package struct BudgetLine: Sendable, Equatable, Codable {
    package var tenant: String
    package var period: String
    /// `local-cost` or `MODEL TIER-equivalent`.
    package var basis: String
    package var limitNanoUSD: Int64
    package var spentNanoUSD: Int64
    package var periodStart: String
    package var periodEnd: String
}

/// One UTC day, for the cost-over-time chart.
package struct DayPoint: Sendable, Equatable, Codable {
    package var day: String
    package var requests: Int
    package var localNanoUSD: Int64
    package var gpuNanoUSD: Int64
    /// Standard tier, in price-table order.
    package var apiNanoUSD: [Int64]
}

package struct Report: Sendable, Equatable, Codable {
    package struct Source: Sendable, Equatable, Codable {
        package var name: String
        package var asOf: String
        package var source: String
    }
    package var generatedAt: String
    /// The range asked for (`--since`, `--until`), as `YYYY-MM-DDTHH:MM:SSZ`; nil: open.
    package var since: String?
    package var until: String?
    /// The window billed: the asked range, else the span of the server runs and records.
    package var windowStart: String
    package var windowEnd: String
    package var grouping: Grouping?
    package var prices: Source
    package var machine: MachineProfile
    package var gpu: GPUProfile
    package var verdict: Verdict
    package var total: ReportLine
    package var groups: [ReportLine]
    package var utilization: Utilization
    package var breakEven: [BreakEven]
    package var whatIf: [WhatIf]
    package var workflows: Workflows
    /// One line per label, then the calls no outcome marks.
    package var outcomes: [OutcomeLine]
    package var days: [DayPoint]
    /// Spend against each budget this period (empty without a budget policy).
    package var budgets: [BudgetLine] = []
    package var notes: [String]

    /// JSON keys are snake_case, as the API's.
    static let jsonKeys = JSONEncoder.KeyEncodingStrategy.convertToSnakeCase
}

/// Hours in the month used for monthly figures (8,760 / 12), as the break-even calculators use.
package let hoursPerMonth: Int64 = 730

/// Builds a report over the records finished in `[since, until)` (Unix µs; nil: open) and the server runs
/// up in it, with the outcomes that mark those records. `capacityTokensPerSecond` overrides the measured capacity (for example a `tally bench` result).
package func makeReport(records: [UsageRecord], runs: [ServerRun] = [], outcomes: [Outcome] = [], since: Int64?, until: Int64?, by grouping: Grouping?,
                        prices: PriceTable, machine: MachineProfile, gpu: GPUProfile,
                        generatedAtMicros: Int64, budgets policy: BudgetPolicy? = nil,
                        capacityTokensPerSecond: Double? = nil) -> Report {
    let range = TimeRange(sinceMicros: since, untilMicros: until)
    let selected = records.filter { range.contains($0.timeMicros) }.sorted { ($0.timeMicros, $0.id) < ($1.timeMicros, $1.id) }
    let runsInRange = runs.filter { range.overlaps(start: $0.startMicros, end: $0.lastSeenMicros) }
    let busy = selected.reduce(Int64(0)) { $0 + $1.busyShareMicros }
    var notes: [String] = []

    // The window: the asked range, else from the first run start or arrival to the last heartbeat or finish.
    let start = since ?? (runsInRange.map(\.startMicros) + selected.map(\.arrivalMicros)).min() ?? 0
    let end = max(start, until ?? (runsInRange.map(\.lastSeenMicros) + selected.map(\.timeMicros)).max() ?? start)
    let window = end - start
    var provisioned = ProvisionedTime.micros(runsInRange, within: start..<end)
    let machines = max(1, Set(runsInRange.map(\.host)).count)
    if runsInRange.isEmpty {
        provisioned = window
        if !selected.isEmpty {
            notes.append("No server runs are recorded in this window (usage written before tally recorded runs, or by tally bench): the bill assumes one machine provisioned for the whole window.")
        }
    }
    if provisioned < busy {
        notes.append("The records' busy time exceeds the provisioned time of the recorded runs; the bill counts the busy time instead.")
        provisioned = busy
    }
    let bill = CostModel.machineCostNanoUSD(wallMicros: provisioned, machine: machine)

    /// One group's figures; `billShare` is its part of the bill.
    func line(_ key: String, _ group: [UsageRecord], billShare: Int64) -> ReportLine {
        let totals = UsageTotals(group)
        let local = group.reduce(Int64(0)) { $0 + CostModel.localCostNanoUSD($1, machine: machine) }
        let gpuCost = group.reduce(Int64(0)) { $0 + CostModel.gpuCostNanoUSD($1, gpu: gpu) }
        let gpuUncached = group.reduce(Int64(0)) { $0 + CostModel.gpuCostNanoUSD($1.withoutCacheHits, gpu: gpu) }
        func money(_ total: Int64) -> Money { Money(total: total, requests: totals.requests, tokens: totals.totalTokens) }
        // Summed request by request, as each response's usage.cost was: cache-write caps and rounding per request.
        let apis = prices.models.map { price -> APILine in
            var standard: Int64 = 0, uncached: Int64 = 0, batch: Int64 = 0
            for record in group {
                let billed = CostModel.BilledTokens(record)
                standard += CostModel.apiCostNanoUSD(billed, price: price, tier: .standard)
                batch += CostModel.apiCostNanoUSD(billed, price: price, tier: .batch)
                uncached += CostModel.apiCostNanoUSD(CostModel.BilledTokens(record.withoutCacheHits), price: price, tier: .standard)
            }
            return APILine(model: price.label, standard: money(standard), uncached: money(uncached), batch: money(batch),
                           savingsVsBillNanoUSD: standard - billShare, batchSavingsVsBillNanoUSD: batch - billShare,
                           cacheSavingsNanoUSD: uncached - standard)
        }
        let computed = totals.uncachedPromptTokens + totals.generatedTokens + totals.embeddingTokens
        return ReportLine(
            key: key, requests: totals.requests, promptTokens: totals.promptTokens, cachedTokens: totals.cachedTokens,
            cacheWriteTokens: totals.cacheWriteTokens, generatedTokens: totals.generatedTokens,
            embeddingTokens: totals.embeddingTokens, totalTokens: totals.totalTokens,
            cacheHitRate: ratio(Double(totals.cachedTokens), Double(totals.promptTokens)),
            decodeTokensPerSecond: ratio(Double(totals.generatedTokens) * 1e6, Double(totals.decodeMicros)),
            busyTokensPerSecond: ratio(Double(computed) * 1e6, Double(totals.busyShareMicros)),
            busyShareMicros: totals.busyShareMicros, bill: money(billShare), local: money(local), gpu: money(gpuCost),
            gpuCacheSavingsNanoUSD: gpuUncached - gpuCost, apis: apis)
    }
    /// A group's part of the bill: by busy share (by request count if nothing was busy).
    func share(_ group: [UsageRecord]) -> Int64 {
        if busy > 0 { return CostModel.mulDiv(bill, group.reduce(0) { $0 + $1.busyShareMicros }, busy) }
        return selected.isEmpty ? 0 : CostModel.mulDiv(bill, Int64(group.count), Int64(selected.count))
    }

    let total = line(UsageGroup.all, selected, billShare: bill)
    var groups: [ReportLine] = []
    if let grouping {
        var byKey: [String: [UsageRecord]] = [:]
        for record in selected {
            for key in UsageGroup.keys(of: record, by: grouping) { byKey[key, default: []].append(record) }
        }
        groups = byKey.keys.sorted().map { line($0, byKey[$0]!, billShare: share(byKey[$0]!)) }
    }

    // Capacity: tokens per busy second, or the busiest minute's rate if higher, unless given.
    let busyRate = busy == 0 ? 0 : Double(total.totalTokens) * 1e6 / Double(busy)
    var perMinute: [Int64: Int] = [:]
    for record in selected { perMinute[record.timeMicros / 60_000_000, default: 0] += record.promptTokens + record.generatedTokens }
    let peakRate = Double(perMinute.values.max() ?? 0) / 60
    // Kept exact for the sums below; rounded only where it is shown.
    let capacity = capacityTokensPerSecond ?? max(busyRate, peakRate)
    let capacitySource = capacityTokensPerSecond != nil ? "given" : peakRate > busyRate ? "peak minute" : "busy throughput"

    let utilization = Utilization(
        windowMicros: window, provisionedMicros: provisioned, machines: machines, runs: runsInRange.count,
        busyMicros: busy, idleMicros: provisioned - busy, utilization: ratio(Double(busy), Double(provisioned)),
        billNanoUSD: bill, perMillionAtMeasuredNanoUSD: total.bill.perMillionTokensNanoUSD,
        perMillionAtFullNanoUSD: total.local.perMillionTokensNanoUSD,
        capacityTokensPerSecond: rounded(capacity), capacitySource: capacitySource)

    let machineMonthly = machine.hourlyNanoUSD * hoursPerMonth
    let monthMicros = hoursPerMonth * CostModel.microsPerHour
    let capacityPerMonth = Int64((capacity * Double(monthMicros) / 1e6).rounded())
    let recordedPerMonth = window == 0 ? 0 : CostModel.mulDiv(Int64(total.totalTokens), monthMicros, window)
    let breakEven = total.apis.map { api -> BreakEven in
        let tokens = api.standard.totalNanoUSD == 0 ? 0
            : CostModel.mulDiv(machineMonthly, Int64(total.totalTokens), api.standard.totalNanoUSD)
        return BreakEven(
            model: api.model, machineMonthlyNanoUSD: machineMonthly, apiPerMillionNanoUSD: api.standard.perMillionTokensNanoUSD,
            breakEvenTokensPerMonth: tokens, capacityTokensPerMonth: capacityPerMonth,
            breakEvenUtilization: ratio(Double(tokens), Double(capacityPerMonth)), recordedTokensPerMonth: recordedPerMonth)
    }

    // What if: the same window with f times the tokens, on as many machines as the capacity needs, each
    // provisioned as long as this window's machines were on average.
    let perMachine = max(1, provisioned / Int64(machines))
    let whatIf = [1, 10, 100].map { factor -> WhatIf in
        let tokens = total.totalTokens * factor
        let oneMachine = capacity * Double(perMachine) / 1e6
        let needed = oneMachine == 0 ? 1 : max(1, Int((Double(tokens) / oneMachine).rounded(.up)))
        return WhatIf(
            factor: factor, requests: total.requests * factor, tokens: tokens, tokensPerMonth: recordedPerMonth * Int64(factor),
            machines: needed, utilization: ratio(Double(tokens), oneMachine * Double(needed)),
            billNanoUSD: Int64(needed) * CostModel.machineCostNanoUSD(wallMicros: perMachine, machine: machine),
            gpuNanoUSD: total.gpu.totalNanoUSD * Int64(factor),
            apis: total.apis.map {
                APITierCosts(model: $0.model, standardNanoUSD: $0.standard.totalNanoUSD * Int64(factor),
                             batchNanoUSD: $0.batch.totalNanoUSD * Int64(factor))
            })
    }

    // Workflows: the calls that carried a session, per (tenant, session).
    let inWorkflows = selected.filter { $0.session != nil }
    let workflowCount = Set(inWorkflows.map { [$0.tenant ?? "", $0.session!] }).count
    let workflowLine = line("workflows", inWorkflows, billShare: share(inWorkflows))
    let workflows = Workflows(
        workflows: workflowCount, calls: inWorkflows.count, callsPerWorkflow: ratio(Double(inWorkflows.count), Double(workflowCount)),
        billPerWorkflowNanoUSD: workflowCount == 0 ? 0 : workflowLine.bill.totalNanoUSD / Int64(workflowCount),
        apiPerWorkflow: workflowLine.apis.map {
            APITierCosts(model: $0.model, standardNanoUSD: workflowCount == 0 ? 0 : $0.standard.totalNanoUSD / Int64(workflowCount),
                         batchNanoUSD: workflowCount == 0 ? 0 : $0.batch.totalNanoUSD / Int64(workflowCount))
        },
        callsOutsideWorkflows: selected.count - inWorkflows.count)

    // Outcomes: each marks its tenant's call (request id) or the calls of its tenant's session.
    var marksOf: [String: [Outcome]] = [:]
    for outcome in outcomes {
        let key = outcome.requestID.map { "r\u{0}\(outcome.tenant ?? "")\u{0}\($0)" }
            ?? "s\u{0}\(outcome.tenant ?? "")\u{0}\(outcome.session ?? "")"
        marksOf[key, default: []].append(outcome)
    }
    var callsOf: [String: [UsageRecord]] = [:], outcomesOf: [String: [String: Outcome]] = [:], unmarked: [UsageRecord] = []
    for record in selected {
        var marks = marksOf["r\u{0}\(record.tenant ?? "")\u{0}\(record.id)"] ?? []
        if let session = record.session { marks += marksOf["s\u{0}\(record.tenant ?? "")\u{0}\(session)"] ?? [] }
        if marks.isEmpty { unmarked.append(record) }
        for label in Set(marks.map(\.label)) { callsOf[label, default: []].append(record) }
        for mark in marks { outcomesOf[mark.label, default: [:]][mark.id] = mark }
    }
    func outcomeLine(_ label: String, _ calls: [UsageRecord], _ marks: [Outcome]) -> OutcomeLine {
        let callsLine = line(label, calls, billShare: share(calls))
        let count = Int64(marks.count)
        return OutcomeLine(
            label: label, outcomes: marks.count, valueSum: marks.compactMap(\.value).reduce(0, +), line: callsLine,
            billPerOutcomeNanoUSD: count == 0 ? 0 : callsLine.bill.totalNanoUSD / count,
            apiPerOutcome: callsLine.apis.map {
                APITierCosts(model: $0.model, standardNanoUSD: count == 0 ? 0 : $0.standard.totalNanoUSD / count,
                             batchNanoUSD: count == 0 ? 0 : $0.batch.totalNanoUSD / count)
            })
    }
    var outcomeLines = callsOf.keys.sorted().map { outcomeLine($0, callsOf[$0]!, Array(outcomesOf[$0]!.values)) }
    if !outcomeLines.isEmpty { outcomeLines.append(outcomeLine(UsageGroup.noOutcome, unmarked, [])) }

    var byDay: [String: [UsageRecord]] = [:]
    for record in selected { byDay[UTC.day(micros: record.timeMicros), default: []].append(record) }
    let days = byDay.keys.sorted().map { day -> DayPoint in
        let dayLine = line(day, byDay[day]!, billShare: 0)
        return DayPoint(day: day, requests: dayLine.requests, localNanoUSD: dayLine.local.totalNanoUSD,
                        gpuNanoUSD: dayLine.gpu.totalNanoUSD, apiNanoUSD: dayLine.apis.map(\.standard.totalNanoUSD))
    }

    let unknownShape = Set(selected.filter { $0.modelShape.parameterCount == 0 }.map(\.model)).sorted()
    if !unknownShape.isEmpty {
        notes.append("GPU-equivalent cost is 0 for \(unknownShape.joined(separator: ", ")): records carry no model shape.")
    }
    if selected.isEmpty { notes.append("No usage records in the range.") }
    let embeddingTokens = selected.filter(\.isEmbedding).reduce(0) { $0 + $1.promptTokens }
    if embeddingTokens > 0 {
        let pairs = prices.models.map { "\($0.label) -> \($0.embedding?.label ?? "its input price")" }
        notes.append("\(embeddingTokens) tokens of embedding requests are priced at each API's embedding model: \(pairs.joined(separator: ", ")).")
    }

    var report = Report(
        generatedAt: UTC.timestamp(micros: generatedAtMicros), since: since.map(UTC.timestamp), until: until.map(UTC.timestamp),
        windowStart: UTC.timestamp(micros: start), windowEnd: UTC.timestamp(micros: end), grouping: grouping,
        prices: .init(name: prices.name, asOf: prices.asOf, source: prices.source), machine: machine, gpu: gpu,
        verdict: verdict(total: total, utilization: utilization, breakEven: breakEven),
        total: total, groups: groups, utilization: utilization, breakEven: breakEven, whatIf: whatIf,
        workflows: workflows, outcomes: outcomeLines, days: days,
        budgets: policy.map { budgetLines(records: records, policy: $0, nowMicros: generatedAtMicros, machine: machine, prices: prices) } ?? [],
        notes: notes)
    report.verdict.text = report.verdictText { formatUSD($0) }
    return report
}

extension UsageRecord {
    /// The same request had its whole prompt missed the prefix cache.
    var withoutCacheHits: UsageRecord {
        var cold = self
        cold.cachedTokens = 0
        return cold
    }
}

/// The verdict's figures: the cheapest API and tier for the same tokens against the bill, and where that flips.
private func verdict(total: ReportLine, utilization u: Utilization, breakEven: [BreakEven]) -> Verdict {
    let candidates = total.apis.flatMap { [($0.model, "standard", $0.standard.totalNanoUSD), ($0.model, "batch", $0.batch.totalNanoUSD)] }
    guard let cheapest = candidates.min(by: { $0.2 < $1.2 }) else {
        return Verdict(text: "", billNanoUSD: u.billNanoUSD, cheapestAPI: "", cheapestTier: "",
                       cheapestAPINanoUSD: 0, selfHostCheaper: false, factor: 0, breakEvenTokensPerMonth: 0,
                       breakEvenUtilization: 0, recordedTokensPerMonth: 0)
    }
    let bill = u.billNanoUSD
    let selfHostCheaper = bill < cheapest.2
    let (dearer, cheaper) = selfHostCheaper ? (cheapest.2, bill) : (bill, cheapest.2)
    let even = breakEven.first { $0.model == cheapest.0 }
    return Verdict(text: "", billNanoUSD: bill, cheapestAPI: cheapest.0, cheapestTier: cheapest.1, cheapestAPINanoUSD: cheapest.2,
                   selfHostCheaper: selfHostCheaper, factor: cheaper == 0 ? 0 : ratio(Double(dearer), Double(cheaper)),
                   breakEvenTokensPerMonth: even?.breakEvenTokensPerMonth ?? 0,
                   breakEvenUtilization: even?.breakEvenUtilization ?? 0, recordedTokensPerMonth: even?.recordedTokensPerMonth ?? 0)
}

extension Report {
    /// The report's first paragraph: what the machine cost, what each API would have, which is cheaper and
    /// by how much, and the volume (utilization) where that flips. `usd` formats money: exact in text and
    /// JSON, cents in HTML; `rate` formats the hourly price (3 significant figures in HTML).
    package func verdictText(_ usd: (Int64) -> String, rate: (Int64) -> String = { formatUSD($0) }) -> String {
        let u = utilization, v = verdict
        guard total.requests > 0 || u.provisionedMicros > 0 else { return "No usage records or server runs in this window." }
        guard !v.cheapestAPI.isEmpty else { return "No API prices to compare with." }
        var text = "From \(windowStart) to \(windowEnd), \(u.machines == 1 ? "the machine" : "\(u.machines) machines") (\(machine.name), "
            + "\(rate(machine.hourlyNanoUSD))/h) ran \(hoursText(u.provisionedMicros)) and \(percentText(u.utilization)) of that time was busy, "
            + "serving \(grouped(total.requests)) requests (\(grouped(total.totalTokens)) tokens). Self-hosting cost \(usd(v.billNanoUSD)), "
            + "a fixed hourly cost whether busy or idle. The same tokens would have cost: "
            + total.apis.map {
                "\($0.model) \(usd($0.standard.totalNanoUSD)) (\(usd($0.uncached.totalNanoUSD)) without prompt caching, "
                    + "\(usd($0.batch.totalNanoUSD)) batch)"
            }.joined(separator: "; ") + ". "
        let tierName = v.cheapestTier == "batch" ? " (batch)" : ""
        if v.billNanoUSD == v.cheapestAPINanoUSD {
            text += "Self-hosting cost the same as the cheapest API, \(v.cheapestAPI)\(tierName). "
        } else if v.selfHostCheaper {
            text += "Self-hosting was cheaper than every API: \(factorText(v.factor)) cheaper than the cheapest, \(v.cheapestAPI)\(tierName) "
                + "(\(usd(v.cheapestAPINanoUSD))), saving \(usd(v.cheapestAPINanoUSD - v.billNanoUSD)). "
        } else {
            text += "The cheapest API, \(v.cheapestAPI)\(tierName), would have cost \(usd(v.cheapestAPINanoUSD)): self-hosting cost "
                + "\(v.factor == 0 ? "more" : factorText(v.factor) + " as much"), \(usd(v.billNanoUSD - v.cheapestAPINanoUSD)) more. "
        }
        if let even = breakEven.first(where: { $0.model == v.cheapestAPI }), even.breakEvenTokensPerMonth > 0 {
            text += "One machine breaks even with \(v.cheapestAPI) (standard tier) at \(grouped(even.breakEvenTokensPerMonth)) tokens a month"
            if even.capacityTokensPerMonth == 0 {
                text += "; no throughput was measured, so whether one machine can serve that is unknown. "
            } else if even.breakEvenUtilization <= 1 {
                text += ", \(percentText(even.breakEvenUtilization)) utilization of its measured capacity "
                    + "(\(grouped(even.capacityTokensPerMonth)) tokens a month). "
            } else {
                text += ", more than its measured capacity (\(grouped(even.capacityTokensPerMonth)) tokens a month): "
                    + "at these prices it cannot beat \(v.cheapestAPI) on this machine. "
            }
            text += "This window's rate is \(grouped(even.recordedTokensPerMonth)) tokens a month."
        }
        return text
    }
}

/// Spend of every tenant with limits (named in the policy, or seen in `records` under the default limits)
/// in the current day or month, whatever range the rest of the report covers.
private func budgetLines(records: [UsageRecord], policy: BudgetPolicy, nowMicros: Int64,
                         machine: MachineProfile, prices: PriceTable) -> [BudgetLine] {
    let tenants = Set(records.compactMap(\.tenant)).union(policy.tenants.keys).sorted()
    return tenants.flatMap { tenant -> [BudgetLine] in
        var usage: [SpendPeriod: UsageTotals] = [:]
        for period in BudgetCheck.periods(policy: policy, tenant: tenant) {
            let start = period.start(containing: nowMicros)
            usage[period] = UsageTotals(records.filter { $0.tenant == tenant && $0.timeMicros >= start && $0.timeMicros <= nowMicros })
        }
        return BudgetCheck.status(policy: policy, tenant: tenant, usage: usage, nowMicros: nowMicros, machine: machine, prices: prices).map {
            BudgetLine(tenant: tenant, period: $0.limit.period.rawValue, basis: $0.limit.basis.label, limitNanoUSD: $0.limit.limitNanoUSD,
                       spentNanoUSD: $0.spentNanoUSD, periodStart: UTC.timestamp(micros: $0.periodStartMicros),
                       periodEnd: UTC.timestamp(micros: $0.periodEndMicros))
        }
    }
}

/// a / b rounded to 6 decimals, 0 when b is 0: reports print these, and goldens must not depend on the
/// last bits of a Double.
private func ratio(_ a: Double, _ b: Double) -> Double {
    b == 0 ? 0 : rounded(a / b)
}

private func rounded(_ x: Double) -> Double {
    (x * 1_000_000).rounded() / 1_000_000
}

// MARK: Figures as words (the verdict and the renderers)

/// An integer with thousands separators: 1234567 -> "1,234,567".
func grouped<T: BinaryInteger>(_ n: T) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// Two decimals, or four for small non-zero shares (a lightly used machine is 0.0041 %, not 0.00 %).
func percentText(_ x: Double) -> String {
    x > 0 && x < 0.0001 ? String(format: "%.4f%%", x * 100) : String(format: "%.2f%%", x * 100)
}

func hoursText(_ micros: Int64) -> String { String(format: "%.3f h", Double(micros) / 3.6e9) }

/// A ratio to 3 significant figures ("2.45x", "17.3x"), whole with separators from 1,000 up.
func factorText(_ x: Double) -> String {
    x >= 1000 ? grouped(Int64(x.rounded())) + "x" : String(format: "%.3g", x) + "x"
}

/// A total for a finance reader: dollars and cents with separators ("$1,234.57"); a non-zero amount under
/// half a cent is "<$0.01" rather than a misleading "$0.00".
package func centsText(_ nano: Int64) -> String {
    let sign = nano < 0 ? "-" : ""
    let cents = (nano.magnitude + 5_000_000) / 10_000_000
    if cents == 0 && nano != 0 { return sign + "<$0.01" }
    let fraction = cents % 100
    return "\(sign)$\(grouped(cents / 100)).\(fraction < 10 ? "0" : "")\(fraction)"
}

/// A unit cost to 3 significant figures ("$0.0000823", "$0.0266", "$647", "$1,230"), rounded half up in
/// integers (0.08925 has no exact binary double).
package func unitUSDText(_ nano: Int64) -> String {
    guard nano != 0 else { return "$0" }
    var magnitude = nano.magnitude
    var digits = String(magnitude).count
    if digits > 3 {
        var step: UInt64 = 1
        for _ in 0..<(digits - 3) { step *= 10 }
        magnitude = (magnitude + step / 2) / step * step
        digits = String(magnitude).count
    }
    // Decimals down to the third significant digit (all nine for amounts under a micro-dollar).
    let decimals = max(0, 9 - max(0, digits - 3))
    let fraction = String(magnitude % 1_000_000_000)
    let padded = String(repeating: "0", count: 9 - fraction.count) + fraction
    return (nano < 0 ? "-" : "") + "$" + grouped(magnitude / 1_000_000_000) + (decimals > 0 ? "." + padded.prefix(decimals) : "")
}
