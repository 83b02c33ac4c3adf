// Reports over the fixed records: hand-checked figures, then golden text/CSV/JSON (regenerate with
// `TALLY_UPDATE_GOLDENS=1 swift test --filter MeteringTests`, then read the diff before committing).

import Foundation
@testable import Metering
import Testing

@Suite struct ReportTests {
    static let generatedAt = Fixtures.nov20 + 3 * 24 * Fixtures.hour  // 2026-11-23T00:00:00Z
    static let hardware = HardwareProfiles.shipped

    static func report(by grouping: Grouping?, since: Int64? = Fixtures.nov20,
                       until: Int64? = Fixtures.nov20 + 2 * 24 * Fixtures.hour) -> Report {
        makeReport(records: Fixtures.records, since: since, until: until, by: grouping, prices: .shipped,
                   machine: hardware.defaultMachine, gpu: hardware.defaultGPU, generatedAtMicros: generatedAt)
    }

    @Test func totalsAreHandChecked() {
        let report = Self.report(by: nil)
        let total = report.total
        #expect(total.requests == 6)
        #expect(total.promptTokens == 5_764 && total.cachedTokens == 3_072 && total.generatedTokens == 860)
        #expect(total.totalTokens == 6_624)
        #expect(total.cacheHitRate == 0.532963)  // 3,072 / 5,764 = 0.5329632
        // busy 7,120,000 µs at 89,250,000 nUSD/h = 176,516.67 -> 176,517
        #expect(total.busyShareMicros == 7_120_000)
        #expect(total.local.totalNanoUSD == 176_517)
        #expect(total.local.perRequestNanoUSD == 29_420)  // 176,517 / 6 = 29,419.5 -> 29,420
        #expect(total.local.perMillionTokensNanoUSD == 26_648_098)  // 176,517 x 1e6 / 6,624
        // gpt-5-nano: uncached 2,692 x 50e6 + cached 3,072 x 5e6 + 860 x 400e6 = 4.9396e11 / 1e6
        let nano = total.apis.first { $0.model == "openai/gpt-5-nano" }!
        #expect(nano.standard.totalNanoUSD == 493_960)
        #expect(nano.savingsVsLocalNanoUSD == 493_960 - 176_517)
        // Without the cache the 3,072 cached tokens pay 50e6 instead of 5e6: 3,072 x 45e6 / 1e6 = 138,240.
        #expect(nano.cacheSavingsNanoUSD == 138_240)
        #expect(report.notes == ["GPU-equivalent cost is 0 for other-model: records carry no model shape."])
    }

    @Test func utilizationBreakEvenAndWhatIf() {
        let report = Self.report(by: nil)
        let u = report.utilization
        #expect(u.windowMicros == 48 * Fixtures.hour)
        #expect(u.busyMicros == 7_120_000 && u.idleMicros == 48 * Fixtures.hour - 7_120_000)
        #expect(u.machineCostNanoUSD == 48 * 89_250_000)
        let nano = report.breakEven.first { $0.model == "openai/gpt-5-nano" }!
        #expect(nano.machineMonthlyNanoUSD == 730 * 89_250_000)
        // 65,152,500,000 x 6,624 / 493,960 = 873,694,550.2 tokens a month
        #expect(nano.breakEvenTokensPerMonth == 873_694_550)
        // 6,624 tokens per 7.12 s busy, for 730 h: 6,624 x 2.628e12 / 7,120,000 = 2,444,925,843
        #expect(nano.capacityTokensPerMonth == 2_444_925_843)
        #expect(nano.breakEvenUtilization == 0.35735)  // 873,694,550 / 2,444,925,843 = 0.3573501
        let x100 = report.whatIf[2]
        #expect(x100.factor == 100 && x100.machines == 1 && x100.tokens == 662_400)
        #expect(x100.apis.first { $0.model == "openai/gpt-5-nano" }?.standardNanoUSD == 49_396_000)
    }

    @Test func whatIfAddsMachinesWhenBusyTimeOverflowsTheWindow() {
        // Window = first arrival to last finish of one request that was busy the whole time: x10 needs 10.
        let record = UsageRecord(id: "x", timeMicros: 10_000_000, model: "m", promptTokens: 1, generatedTokens: 1,
                                 decodeMicros: 10_000_000, busyShareMicros: 10_000_000)
        let report = makeReport(records: [record], since: nil, until: nil, by: nil, prices: .shipped,
                                machine: Fixtures.roundMachine, gpu: Self.hardware.defaultGPU, generatedAtMicros: 0)
        #expect(report.utilization.utilization == 1)
        #expect(report.whatIf.map(\.machines) == [1, 10, 100])
        #expect(report.whatIf.map(\.localNanoUSD) == [10_000_000, 100_000_000, 1_000_000_000])
    }

    @Test func groupsSplitTheTotal() {
        for grouping in [Grouping.tenant, .model, .day] {
            let report = Self.report(by: grouping)
            #expect(report.groups.map(\.requests).reduce(0, +) == 6)
            #expect(report.groups.map(\.local.totalNanoUSD).reduce(0, +) - report.total.local.totalNanoUSD <= Int64(report.groups.count))
        }
        #expect(Self.report(by: .tag).groups.map(\.key) == ["(untagged)", "batch-job", "chat", "team-a"])
    }

    @Test func rangeFiltersRecords() {
        let report = Self.report(by: .day, since: Fixtures.nov20 + 24 * Fixtures.hour, until: nil)
        #expect(report.total.requests == 3 && report.groups.map(\.key) == ["2026-11-21"])
        #expect(report.since == "2026-11-21T00:00:00Z" && report.until == nil)
    }

    @Test func anEmptyReportRenders() {
        let report = makeReport(records: [], since: nil, until: nil, by: .tenant, prices: .shipped,
                                machine: Self.hardware.defaultMachine, gpu: Self.hardware.defaultGPU, generatedAtMicros: 0)
        #expect(report.total.requests == 0 && report.total.local.perMillionTokensNanoUSD == 0)
        for format in ReportFormat.allCases { #expect(!report.render(format).isEmpty) }
    }

    @Test func htmlIsOneSelfContainedPageWithThreeCharts() {
        let html = Self.report(by: .tenant).renderHTML()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 3)
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"))
        #expect(html.contains("api-prices-2026-11.json (shipped)"))
    }

    static let goldenCases: [(String, Grouping, ReportFormat)] = [
        ("report-by-tenant.txt", .tenant, .text),
        ("report-by-tag.txt", .tag, .text),
        ("report-by-day.csv", .day, .csv),
        ("report-by-model.json", .model, .json),
    ]

    @Test(arguments: goldenCases)
    func golden(file: String, grouping: Grouping, format: ReportFormat) throws {
        let rendered = Self.report(by: grouping).render(format)
        let url = Fixtures.goldens.appendingPathComponent(file)
        if ProcessInfo.processInfo.environment["TALLY_UPDATE_GOLDENS"] == "1" {
            try rendered.write(to: url, atomically: true, encoding: .utf8)
        }
        let golden = try? String(contentsOf: url, encoding: .utf8)
        #expect(golden == rendered, """
            \(file) differs from the rendered report. If the change is intended, regenerate with \
            TALLY_UPDATE_GOLDENS=1 swift test --filter MeteringTests and review the diff.
            """)
    }
}

@Suite struct ReportBudgetTests {
    @Test func budgetLinesShowThisPeriodsSpendPerTenant() {
        // Generated on Nov 21 at 12:00: the daily limit counts only Nov 21 (req-6 for tenant A; req-5 for B),
        // the monthly one all of November. Round machine: local nUSD = busy µs.
        let now = Fixtures.nov20 + 36 * Fixtures.hour
        let policy = BudgetPolicy(defaultSpendLimits: [SpendLimit(period: .day, basis: .local, limitNanoUSD: 1_000_000)],
                                  tenants: [Fixtures.tenantA: TenantBudget(spendLimits: [
                                      SpendLimit(period: .month, basis: .local, limitNanoUSD: 5_000_000)])])
        let report = makeReport(records: Fixtures.records, since: nil, until: nil, by: nil, prices: .shipped,
                                machine: Fixtures.roundMachine, gpu: HardwareProfiles.shipped.defaultGPU,
                                generatedAtMicros: now, budgets: policy)
        let lines = report.budgets.map { "\($0.tenant.suffix(4)) \($0.period) \($0.spentNanoUSD)/\($0.limitNanoUSD)" }
        let a = Fixtures.tenantA.suffix(4), b = Fixtures.tenantB.suffix(4)
        #expect(Set(lines) == ["\(a) month 3200000/5000000", "\(b) day 300000/1000000"])
        #expect(report.renderText().contains("Budgets (spend this period"))
        // Without a policy there is no budget section.
        #expect(ReportTests.report(by: nil).budgets.isEmpty)
    }
}
