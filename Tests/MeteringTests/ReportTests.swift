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

    /// An embedding record adds its tokens to the embedding column, not the prompt, and to each API's cost at
    /// that provider's embedding price: 10,000 tokens x 20e6 (text-embedding-3-small) / 1e6 = 200,000 nUSD
    /// on top of the generation records' gpt-5-nano cost; the text report shows the column and a note names
    /// the pairing.
    @Test func embeddingRecordsArePricedAtEmbeddingModels() {
        let embedding = UsageRecord(id: "embd-1", timeMicros: Fixtures.nov20 + 10 * Fixtures.hour, model: "smollm2-135m",
                                    modelShape: Fixtures.smol, promptTokens: 10_000, generatedTokens: 0,
                                    prefillMicros: 500_000, busyShareMicros: 500_000, kind: .embedding)
        let report = makeReport(records: Fixtures.records + [embedding], since: Fixtures.nov20, until: Fixtures.nov20 + 2 * 24 * Fixtures.hour,
                                by: nil, prices: .shipped, machine: Self.hardware.defaultMachine, gpu: Self.hardware.defaultGPU,
                                generatedAtMicros: Self.generatedAt)
        let total = report.total
        #expect(total.requests == 7 && total.promptTokens == 5_764 && total.embeddingTokens == 10_000)
        #expect(total.totalTokens == 16_624)
        let nano = total.apis.first { $0.model == "openai/gpt-5-nano" }!
        #expect(nano.standard.totalNanoUSD == 493_960 + 200_000)
        // claude-haiku-4-5 -> voyage-3.5 at 60e6: 600,000 nUSD of it.
        let without = Self.report(by: nil).total.apis.first { $0.model == "anthropic/claude-haiku-4-5" }!.standard.totalNanoUSD
        let haiku = total.apis.first { $0.model == "anthropic/claude-haiku-4-5" }!
        #expect(haiku.standard.totalNanoUSD == without + 600_000)
        #expect(report.notes.contains { $0.hasPrefix("10000 tokens of embedding requests") && $0.contains("openai/gpt-5-nano -> openai/text-embedding-3-small") })
        #expect(report.renderText().contains("| embedding |") || report.renderText().contains(" embedding "))
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
        // Savings are against the bill: no runs recorded, so one machine for the 48 h asked for.
        #expect(total.bill.totalNanoUSD == 48 * 89_250_000)
        #expect(nano.savingsVsBillNanoUSD == 493_960 - 48 * 89_250_000)
        // Without the cache the 3,072 cached tokens pay 50e6 instead of 5e6: 3,072 x 45e6 / 1e6 = 138,240.
        #expect(nano.cacheSavingsNanoUSD == 138_240)
        #expect(report.notes.last == "GPU-equivalent cost is 0 for other-model: records carry no model shape.")
        #expect(report.notes.first?.hasPrefix("No server runs are recorded in this window") == true)
    }

    @Test func utilizationBreakEvenAndWhatIf() {
        let report = Self.report(by: nil)
        let u = report.utilization
        #expect(u.windowMicros == 48 * Fixtures.hour)
        #expect(u.busyMicros == 7_120_000 && u.idleMicros == 48 * Fixtures.hour - 7_120_000)
        #expect(u.provisionedMicros == 48 * Fixtures.hour && u.machines == 1 && u.runs == 0)
        #expect(u.billNanoUSD == 48 * 89_250_000)
        #expect(u.capacitySource == "busy throughput")
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
        #expect(report.whatIf.map(\.billNanoUSD) == [10_000_000, 100_000_000, 1_000_000_000])
    }

    @Test func groupsSplitTheTotal() {
        for grouping in [Grouping.tenant, .model, .day] {
            let report = Self.report(by: grouping)
            #expect(report.groups.map(\.requests).reduce(0, +) == 6)
            #expect(report.groups.map(\.local.totalNanoUSD).reduce(0, +) == report.total.local.totalNanoUSD)
            #expect(abs(report.groups.map(\.bill.totalNanoUSD).reduce(0, +) - report.total.bill.totalNanoUSD) <= Int64(report.groups.count))
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

    @Test func htmlIsOneSelfContainedPageWithFourChartsAndTheVerdictFirst() {
        let report = Self.report(by: .tenant)
        let html = report.renderHTML()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)
        #expect(html.range(of: "id=\"verdict\"")!.lowerBound < html.range(of: "<svg")!.lowerBound)
        // The same verdict with money for a finance reader.
        #expect(html.contains(htmlEscape(report.verdictText(centsText, rate: unitUSDText))))
        #expect(html.contains("(aws-c7i.large, $0.0893/h)"))
        #expect(html.contains("Self-hosting cost $4.28, a fixed hourly cost"))
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"))
        #expect(html.contains("api-prices-2026-11.json (shipped)"))
    }

    @Test func financeFormatsAreCentsAndThreeSignificantFigures() {
        let cases: [(Int64, String, String)] = [
            (0, "$0.00", "$0"), (4_283_753_020, "$4.28", "$4.28"), (4_285_000_000, "$4.29", "$4.29"),
            (1_234_567_890_123, "$1,234.57", "$1,230"), (646_739_130_435, "$646.74", "$647"),
            (26_648_098, "$0.03", "$0.0266"), (82_327, "<$0.01", "$0.0000823"), (4_999_999, "<$0.01", "$0.00500"),
            (5_000_000, "$0.01", "$0.00500"), (-4_283_506_040, "-$4.28", "-$4.28"), (999_999_999, "$1.00", "$1.00"),
        ]
        for (nano, cents, unit) in cases {
            #expect(centsText(nano) == cents, "\(nano)")
            #expect(unitUSDText(nano) == unit, "\(nano)")
        }
    }

    /// The report's own case: a machine up for six days serving a few requests. The bill is six days of
    /// the machine; every API is far cheaper; the verdict says so and no "savings" appear.
    @Test func aMostlyIdleMachineIsBilledForItsHoursAndLosesToEveryAPI() {
        let day = 24 * Fixtures.hour
        let runs = [ServerRun(id: "r1", host: "box", startMicros: Fixtures.nov20, lastSeenMicros: Fixtures.nov20 + 6 * day, stopped: true)]
        let report = makeReport(records: Fixtures.records, runs: runs, since: nil, until: nil, by: nil, prices: .shipped,
                                machine: Self.hardware.defaultMachine, gpu: Self.hardware.defaultGPU, generatedAtMicros: Self.generatedAt)
        // 144 h x $0.08925 = $12.852
        #expect(report.utilization.provisionedMicros == 144 * Fixtures.hour)
        #expect(report.utilization.billNanoUSD == 12_852_000_000)
        #expect(report.windowStart == "2026-11-20T00:00:00Z" && report.windowEnd == "2026-11-26T00:00:00Z")
        #expect(report.total.apis.allSatisfy { $0.savingsVsBillNanoUSD < 0 && $0.batchSavingsVsBillNanoUSD < 0 })
        let v = report.verdict
        #expect(!v.selfHostCheaper && v.billNanoUSD == 12_852_000_000)
        let cheapest = report.total.apis.flatMap { [$0.standard.totalNanoUSD, $0.batch.totalNanoUSD] }.min()!
        #expect(v.cheapestAPINanoUSD == cheapest)
        #expect(v.text.contains("Self-hosting cost $12.852") && v.text.contains("The cheapest API, \(v.cheapestAPI)"))
        #expect(!report.notes.contains { $0.hasPrefix("No server runs") })
    }

    @Test func runsOnOneHostAreMergedAndReplicasAreSummed() {
        let h = Fixtures.hour, t = Fixtures.nov20
        let runs = [
            ServerRun(id: "a1", host: "a", startMicros: t, lastSeenMicros: t + 2 * h),
            ServerRun(id: "a2", host: "a", startMicros: t + h, lastSeenMicros: t + 3 * h),  // overlaps a1: same machine
            ServerRun(id: "b1", host: "b", startMicros: t + 10 * h, lastSeenMicros: t + 11 * h),
            ServerRun(id: "c1", host: "c", startMicros: t + 40 * h, lastSeenMicros: t + 50 * h),  // clipped by --until
        ]
        let report = makeReport(records: [], runs: runs, since: t, until: t + 45 * h, by: nil, prices: .shipped,
                                machine: Fixtures.roundMachine, gpu: Self.hardware.defaultGPU, generatedAtMicros: 0)
        #expect(report.utilization.provisionedMicros == (3 + 1 + 5) * h)
        #expect(report.utilization.machines == 3 && report.utilization.runs == 4)
        #expect(report.utilization.billNanoUSD == 9 * 3_600_000_000)
        #expect(report.total.bill.totalNanoUSD == report.utilization.billNanoUSD)
    }

    @Test func aBusyMachineBeatsTheAPIsAndTheVerdictSaysWhereItFlips() {
        // One hour, busy the whole time, generating 3.6M tokens: a round $3.60 machine against APIs.
        let h = Fixtures.hour
        let records = (0..<60).map { i in
            UsageRecord(id: "r\(i)", timeMicros: Int64(i + 1) * 60_000_000, model: "m", promptTokens: 40_000,
                        generatedTokens: 20_000, decodeMicros: 60_000_000, busyShareMicros: 60_000_000)
        }
        let runs = [ServerRun(id: "r", host: "box", startMicros: 0, lastSeenMicros: h, stopped: true)]
        let report = makeReport(records: records, runs: runs, since: nil, until: nil, by: nil, prices: .shipped,
                                machine: Fixtures.roundMachine, gpu: Self.hardware.defaultGPU, generatedAtMicros: h)
        #expect(report.utilization.utilization == 1 && report.utilization.billNanoUSD == 3_600_000_000)
        #expect(report.utilization.capacityTokensPerSecond == 1000)
        let v = report.verdict
        let cheapest = report.total.apis.flatMap { [$0.standard.totalNanoUSD, $0.batch.totalNanoUSD] }.min()!
        #expect(v.selfHostCheaper == (3_600_000_000 < cheapest))
        #expect(v.breakEvenUtilization > 0)
        // x10 and x100 need 10 and 100 machines at 1,000 tokens/s each.
        #expect(report.whatIf.map(\.machines) == [1, 10, 100])
        #expect(report.whatIf.map(\.billNanoUSD) == [3_600_000_000, 36_000_000_000, 360_000_000_000])
    }

    /// Cost per workflow and per outcome, by hand: a round $3.60/h machine up 10 s with 4 calls busy 1 s each,
    /// so the bill is $0.01 and each call's share $0.0025.
    @Test func workflowsAndOutcomesAreCostedByHand() {
        func call(_ id: String, tenant: String?, session: String?) -> UsageRecord {
            UsageRecord(id: id, timeMicros: 5_000_000, model: "m", tenant: tenant, session: session, promptTokens: 100,
                        generatedTokens: 50, busyShareMicros: 1_000_000)
        }
        let records = [call("a1", tenant: "support", session: "case-1"), call("a2", tenant: "support", session: "case-1"),
                       call("b1", tenant: "support", session: "case-2"), call("c1", tenant: "ci", session: nil)]
        let outcomes = [
            Outcome(id: "o1", timeMicros: 9_000_000, tenant: "support", session: "case-1", label: "resolved", value: 10),
            Outcome(id: "o2", timeMicros: 9_000_000, tenant: "support", requestID: "b1", label: "resolved", value: 2.5),
            Outcome(id: "o3", timeMicros: 9_000_000, tenant: "support", requestID: "a2", label: "escalated"),
            // Another tenant's session of the same name marks nothing and is not counted.
            Outcome(id: "o4", timeMicros: 9_000_000, tenant: "ci", session: "case-1", label: "resolved"),
        ]
        let runs = [ServerRun(id: "r", host: "box", startMicros: 0, lastSeenMicros: 10_000_000, stopped: true)]
        let report = makeReport(records: records, runs: runs, outcomes: outcomes, since: nil, until: nil, by: .session,
                                prices: .shipped, machine: Fixtures.roundMachine, gpu: Self.hardware.defaultGPU, generatedAtMicros: 0)
        #expect(report.utilization.billNanoUSD == 10_000_000)
        let w = report.workflows
        #expect(w.workflows == 2 && w.calls == 3 && w.callsPerWorkflow == 1.5 && w.callsOutsideWorkflows == 1)
        #expect(w.billPerWorkflowNanoUSD == 3_750_000)  // 3 calls x $0.0025 / 2 workflows
        #expect(report.groups.map(\.key) == ["(no session)", "case-1", "case-2"])
        #expect(report.groups.map(\.requests) == [1, 2, 1])

        let byLabel = Dictionary(uniqueKeysWithValues: report.outcomes.map { ($0.label, $0) })
        #expect(report.outcomes.map(\.label) == ["escalated", "resolved", UsageGroup.noOutcome])
        let resolved = try! #require(byLabel["resolved"])
        #expect(resolved.outcomes == 2 && resolved.line.requests == 3 && resolved.valueSum == 12.5)
        #expect(resolved.line.bill.totalNanoUSD == 7_500_000 && resolved.billPerOutcomeNanoUSD == 3_750_000)
        let escalated = try! #require(byLabel["escalated"])
        #expect(escalated.outcomes == 1 && escalated.line.requests == 1 && escalated.billPerOutcomeNanoUSD == 2_500_000)
        let none = try! #require(byLabel[UsageGroup.noOutcome])
        #expect(none.outcomes == 0 && none.line.requests == 1 && none.line.bill.totalNanoUSD == 2_500_000)
        // Per outcome on an API: the marked calls' standard cost over the outcomes.
        let api = report.total.apis[0]
        #expect(resolved.apiPerOutcome[0].standardNanoUSD == api.standard.totalNanoUSD * 3 / 4 / 2)
        #expect(report.renderText().contains("Outcomes (POST /v1/outcomes"))
        #expect(report.renderHTML().contains("<h2>Cost per outcome</h2>"))
    }

    /// Every total equals the sum of what each response's usage.cost said, to the nano-USD, for every API and
    /// tier, over random records (cache writes and odd token counts included).
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64]) func reportTotalsEqualTheSumOfTheResponses(seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let prices = PriceTable.shipped, machine = Self.hardware.defaultMachine, gpu = Self.hardware.defaultGPU
        let records = (0..<200).map { i -> UsageRecord in
            let prompt = 1 + next(5_000), cached = next(prompt + 1)
            return UsageRecord(id: "p\(i)", timeMicros: Fixtures.nov20 + Int64(next(1_000_000_000)), model: "smol",
                               modelShape: Fixtures.smol, tenant: ["a", "b", nil][next(3)], tags: next(2) == 0 ? [] : ["t\(next(3))"],
                               promptTokens: prompt, cachedTokens: cached, cacheWriteTokens: next(prompt + 50),
                               generatedTokens: next(900), decodeMicros: Int64(next(9_000_000)), busyShareMicros: Int64(next(3_000_000)))
        }
        let responses = records.map { CostModel.cost(of: $0, machine: machine, gpu: gpu, prices: prices) }
        for grouping in [nil, Grouping.tenant, .tag] {
            let report = makeReport(records: records, since: nil, until: nil, by: grouping, prices: prices, machine: machine, gpu: gpu,
                                    generatedAtMicros: 0)
            #expect(report.total.local.totalNanoUSD == responses.map(\.localNanoUSD).reduce(0, +))
            #expect(report.total.gpu.totalNanoUSD == responses.map(\.gpuNanoUSD).reduce(0, +))
            for (i, api) in report.total.apis.enumerated() {
                #expect(api.standard.totalNanoUSD == responses.map { $0.apis[i].standardNanoUSD }.reduce(0, +), "\(api.model)")
                #expect(api.batch.totalNanoUSD == responses.map { $0.apis[i].batchNanoUSD }.reduce(0, +), "\(api.model) batch")
            }
            if grouping == .tenant {  // groups partition the records, so their API totals add up too
                for (i, api) in report.total.apis.enumerated() {
                    #expect(report.groups.map { $0.apis[i].standard.totalNanoUSD }.reduce(0, +) == api.standard.totalNanoUSD)
                }
            }
        }
    }

    @Test func jsonUsesSnakeCaseKeys() throws {
        let json = Self.report(by: .tenant).renderJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["window_start"] is String && object["verdict"] is [String: Any])
        #expect((object["total"] as? [String: Any])?["total_tokens"] as? Int == 6_624)
        #expect(!json.contains("totalTokens") && !json.contains("NanoUSD"))
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
