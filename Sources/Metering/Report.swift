// Cost reports: `makeReport` turns usage records plus dated prices and profiles into figures (requests,
// tokens, cache hit rate, speed, local / GPU-equivalent / API-equivalent cost, savings, break-even,
// what-if volumes, idle time). Pure: the clock comes in as `generatedAtMicros`. Renderers are in
// ReportRender.swift.

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

/// One API's figures for a set of records.
package struct APILine: Sendable, Equatable, Codable {
    package var model: String
    package var standard: Money
    package var batch: Money
    /// API standard minus local cost: what self-hosting saved (negative: it cost more).
    package var savingsVsLocalNanoUSD: Int64
    /// API batch minus local cost.
    package var batchSavingsVsLocalNanoUSD: Int64
    /// What the cached tokens saved on this API: its standard cost with no cache hits minus its real one.
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
    package var totalTokens: Int
    /// cached / prompt tokens.
    package var cacheHitRate: Double
    /// Generated tokens per second of decode time: the speed a client saw.
    package var decodeTokensPerSecond: Double
    /// Computed tokens (uncached prompt + generated) per second of busy share: engine throughput.
    package var busyTokensPerSecond: Double
    package var busyShareMicros: Int64
    package var local: Money
    package var gpu: Money
    /// GPU-equivalent cost with no prefix-cache hits minus the real one.
    package var gpuCacheSavingsNanoUSD: Int64
    package var apis: [APILine]
}

/// Busy and idle time of the machine over the report's window.
package struct Utilization: Sendable, Equatable, Codable {
    package var windowMicros: Int64
    package var busyMicros: Int64
    package var idleMicros: Int64
    /// busy / window.
    package var utilization: Double
    /// The machine's bill for the whole window, idle included.
    package var machineCostNanoUSD: Int64
    /// Local cost per 1M tokens at the measured utilization (the window's bill / tokens).
    package var localPerMillionAtMeasuredNanoUSD: Int64
    /// Local cost per 1M tokens at full load (busy-share cost / tokens).
    package var localPerMillionAtFullLoadNanoUSD: Int64
}

/// Against one API (standard tier, at the recorded token mix): the monthly volume where an always-on
/// machine costs the same as the API.
package struct BreakEven: Sendable, Equatable, Codable {
    package var model: String
    /// 730 hours of the machine.
    package var machineMonthlyNanoUSD: Int64
    /// The API's price per 1M tokens at the recorded mix (input, cached, output shares).
    package var apiPerMillionNanoUSD: Int64
    /// machine monthly cost / API price per token; 0 when the API cost nothing.
    package var breakEvenTokensPerMonth: Int64
    /// Tokens per month the machine serves at full load, at the measured busy throughput.
    package var capacityTokensPerMonth: Int64
    /// break-even / capacity; above 1 the machine can never serve enough to break even.
    package var breakEvenUtilization: Double
    /// The recorded volume scaled to a 730-hour month.
    package var recordedTokensPerMonth: Int64
}

/// The recorded volume scaled by `factor` over the same window.
package struct WhatIf: Sendable, Equatable, Codable {
    package var factor: Int
    package var requests: Int
    package var tokens: Int
    /// Machines needed so busy time fits the window: ceil(factor x busy / window), at least 1.
    package var machines: Int
    package var utilization: Double
    /// The machines' bill for the window, idle included.
    package var localNanoUSD: Int64
    package var gpuNanoUSD: Int64
    package var apis: [APITierCosts]
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
    /// The window utilization is measured over: the asked range, or first arrival to last finish.
    package var windowStart: String
    package var windowEnd: String
    package var grouping: Grouping?
    package var prices: Source
    package var machine: MachineProfile
    package var gpu: GPUProfile
    package var total: ReportLine
    package var groups: [ReportLine]
    package var utilization: Utilization
    package var breakEven: [BreakEven]
    package var whatIf: [WhatIf]
    package var days: [DayPoint]
    /// Spend against each budget this period (empty without a budget policy).
    package var budgets: [BudgetLine] = []
    package var notes: [String]
}

/// Hours in the month used for monthly figures (8,760 / 12), as the break-even calculators use.
package let hoursPerMonth: Int64 = 730

/// Builds a report over the records finished in `[since, until)` (Unix µs; nil: open).
package func makeReport(records: [UsageRecord], since: Int64?, until: Int64?, by grouping: Grouping?,
                        prices: PriceTable, machine: MachineProfile, gpu: GPUProfile,
                        generatedAtMicros: Int64, budgets policy: BudgetPolicy? = nil) -> Report {
    let range = TimeRange(sinceMicros: since, untilMicros: until)
    let selected = records.filter { range.contains($0.timeMicros) }.sorted { ($0.timeMicros, $0.id) < ($1.timeMicros, $1.id) }

    func line(_ key: String, _ group: [UsageRecord]) -> ReportLine {
        let totals = UsageTotals(group)
        let local = CostModel.localCostNanoUSD(busyMicros: totals.busyShareMicros, machine: machine)
        let gpuCost = group.reduce(Int64(0)) { $0 + CostModel.gpuCostNanoUSD($1, gpu: gpu) }
        let gpuUncached = group.reduce(Int64(0)) {
            var cold = $1
            cold.cachedTokens = 0
            return $0 + CostModel.gpuCostNanoUSD(cold, gpu: gpu)
        }
        var cold = totals
        cold.cachedTokens = 0
        let apis = prices.models.map { price -> APILine in
            let standard = CostModel.apiCostNanoUSD(totals, price: price, tier: .standard)
            let batch = CostModel.apiCostNanoUSD(totals, price: price, tier: .batch)
            return APILine(
                model: price.label,
                standard: Money(total: standard, requests: totals.requests, tokens: totals.totalTokens),
                batch: Money(total: batch, requests: totals.requests, tokens: totals.totalTokens),
                savingsVsLocalNanoUSD: standard - local, batchSavingsVsLocalNanoUSD: batch - local,
                cacheSavingsNanoUSD: CostModel.apiCostNanoUSD(cold, price: price, tier: .standard) - standard)
        }
        let computed = totals.uncachedPromptTokens + totals.generatedTokens
        return ReportLine(
            key: key, requests: totals.requests, promptTokens: totals.promptTokens, cachedTokens: totals.cachedTokens,
            cacheWriteTokens: totals.cacheWriteTokens, generatedTokens: totals.generatedTokens,
            totalTokens: totals.totalTokens,
            cacheHitRate: ratio(Double(totals.cachedTokens), Double(totals.promptTokens)),
            decodeTokensPerSecond: ratio(Double(totals.generatedTokens) * 1e6, Double(totals.decodeMicros)),
            busyTokensPerSecond: ratio(Double(computed) * 1e6, Double(totals.busyShareMicros)),
            busyShareMicros: totals.busyShareMicros,
            local: Money(total: local, requests: totals.requests, tokens: totals.totalTokens),
            gpu: Money(total: gpuCost, requests: totals.requests, tokens: totals.totalTokens),
            gpuCacheSavingsNanoUSD: gpuUncached - gpuCost, apis: apis)
    }

    let total = line(UsageGroup.all, selected)
    var groups: [ReportLine] = []
    if let grouping {
        var byKey: [String: [UsageRecord]] = [:]
        for record in selected {
            for key in UsageGroup.keys(of: record, by: grouping) { byKey[key, default: []].append(record) }
        }
        groups = byKey.keys.sorted().map { line($0, byKey[$0]!) }
    }

    // Window: the asked range where given, else first arrival to last finish; never shorter than the busy
    // time, so utilization stays <= 1 when a range is narrower than its requests.
    let start = since ?? selected.map(\.arrivalMicros).min() ?? 0
    let end = until ?? selected.map(\.timeMicros).max() ?? start
    let window = max(end - start, total.busyShareMicros, 1)
    let busy = total.busyShareMicros
    let machineCost = CostModel.machineCostNanoUSD(wallMicros: window, machine: machine)
    let utilization = Utilization(
        windowMicros: window, busyMicros: busy, idleMicros: window - busy, utilization: rounded(Double(busy) / Double(window)),
        machineCostNanoUSD: machineCost,
        localPerMillionAtMeasuredNanoUSD: Money(total: machineCost, requests: total.requests, tokens: total.totalTokens).perMillionTokensNanoUSD,
        localPerMillionAtFullLoadNanoUSD: total.local.perMillionTokensNanoUSD)

    let machineMonthly = machine.hourlyNanoUSD * hoursPerMonth
    let monthMicros = hoursPerMonth * CostModel.microsPerHour
    let capacity = busy == 0 ? 0 : CostModel.mulDiv(Int64(total.totalTokens), monthMicros, busy)
    let breakEven = total.apis.map { api -> BreakEven in
        let tokens = api.standard.totalNanoUSD == 0 ? 0
            : CostModel.mulDiv(machineMonthly, Int64(total.totalTokens), api.standard.totalNanoUSD)
        return BreakEven(
            model: api.model, machineMonthlyNanoUSD: machineMonthly, apiPerMillionNanoUSD: api.standard.perMillionTokensNanoUSD,
            breakEvenTokensPerMonth: tokens, capacityTokensPerMonth: capacity,
            breakEvenUtilization: capacity == 0 ? 0 : rounded(Double(tokens) / Double(capacity)),
            recordedTokensPerMonth: CostModel.mulDiv(Int64(total.totalTokens), monthMicros, window))
    }

    let whatIf = [1, 10, 100].map { factor -> WhatIf in
        let scaledBusy = busy * Int64(factor)
        let machines = max(1, Int((scaledBusy + window - 1) / window))
        return WhatIf(
            factor: factor, requests: total.requests * factor, tokens: total.totalTokens * factor, machines: machines,
            utilization: rounded(Double(scaledBusy) / (Double(window) * Double(machines))),
            localNanoUSD: machineCost * Int64(machines), gpuNanoUSD: total.gpu.totalNanoUSD * Int64(factor),
            apis: total.apis.map {
                APITierCosts(model: $0.model, standardNanoUSD: $0.standard.totalNanoUSD * Int64(factor),
                             batchNanoUSD: $0.batch.totalNanoUSD * Int64(factor))
            })
    }

    var byDay: [String: [UsageRecord]] = [:]
    for record in selected { byDay[UTC.day(micros: record.timeMicros), default: []].append(record) }
    let days = byDay.keys.sorted().map { day -> DayPoint in
        let dayLine = line(day, byDay[day]!)
        return DayPoint(day: day, requests: dayLine.requests, localNanoUSD: dayLine.local.totalNanoUSD,
                        gpuNanoUSD: dayLine.gpu.totalNanoUSD, apiNanoUSD: dayLine.apis.map(\.standard.totalNanoUSD))
    }

    var notes: [String] = []
    let unknownShape = Set(selected.filter { $0.modelShape.parameterCount == 0 }.map(\.model)).sorted()
    if !unknownShape.isEmpty {
        notes.append("GPU-equivalent cost is 0 for \(unknownShape.joined(separator: ", ")): records carry no model shape.")
    }
    if selected.isEmpty { notes.append("No usage records in the range.") }

    return Report(
        generatedAt: UTC.timestamp(micros: generatedAtMicros), since: since.map(UTC.timestamp), until: until.map(UTC.timestamp),
        windowStart: UTC.timestamp(micros: start), windowEnd: UTC.timestamp(micros: start + window), grouping: grouping,
        prices: .init(name: prices.name, asOf: prices.asOf, source: prices.source), machine: machine, gpu: gpu,
        total: total, groups: groups, utilization: utilization, breakEven: breakEven, whatIf: whatIf, days: days,
        budgets: policy.map { budgetLines(records: records, policy: $0, nowMicros: generatedAtMicros, machine: machine, prices: prices) } ?? [],
        notes: notes)
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
