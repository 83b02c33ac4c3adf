// Budgets: output-token caps and per-tenant spend limits per UTC day/month, decided from totals so far.

import Foundation
@testable import Metering
import Testing

@Suite struct BudgetTests {
    let now = Fixtures.nov20 + 10 * Fixtures.hour  // 2026-11-20T10:00:00Z
    let machine = Fixtures.roundMachine  // local nUSD = busy µs

    func totals(busy: Int64 = 0, prompt: Int = 0, generated: Int = 0) -> UsageTotals {
        var t = UsageTotals()
        t.requests = 1
        t.busyShareMicros = busy
        t.promptTokens = prompt
        t.generatedTokens = generated
        return t
    }

    func decide(_ policy: BudgetPolicy, tenant: String? = "t1", maxTokens: Int? = nil,
                usage: [SpendPeriod: UsageTotals] = [:]) -> BudgetDecision {
        BudgetCheck.decide(policy: policy, tenant: tenant, requestedMaxOutputTokens: maxTokens, usage: usage,
                           nowMicros: now, machine: machine, prices: .shipped)
    }

    @Test func outputTokenCaps() {
        let policy = BudgetPolicy(defaultMaxOutputTokens: 256, tenants: ["big": TenantBudget(maxOutputTokens: 4096)])
        #expect(decide(policy, maxTokens: nil) == .allow(maxOutputTokens: 256))
        #expect(decide(policy, maxTokens: 100) == .allow(maxOutputTokens: 100))
        #expect(decide(policy, tenant: "big", maxTokens: 1000) == .allow(maxOutputTokens: 1000))
        #expect(decide(policy, tenant: nil, maxTokens: nil) == .allow(maxOutputTokens: 256))
        guard case .reject(let message) = decide(policy, maxTokens: 300) else { Issue.record("not rejected"); return }
        #expect(message == "max_tokens 300 is over the output-token cap of 256 for API key t1; ask for at most 256 tokens.")
        #expect(decide(.unlimited, maxTokens: 1_000_000) == .allow(maxOutputTokens: 1_000_000))
    }

    @Test func dailyLocalSpendLimit() {
        // $0.01 a day of local cost = 10,000,000 nUSD = 10 s of busy time on the round machine.
        let policy = BudgetPolicy(defaultSpendLimits: [SpendLimit(period: .day, basis: .local, limitNanoUSD: 10_000_000)])
        #expect(BudgetCheck.periods(policy: policy, tenant: "t1") == [.day])
        #expect(decide(policy, usage: [.day: totals(busy: 9_999_999)]) == .allow(maxOutputTokens: nil))
        guard case .reject(let message) = decide(policy, usage: [.day: totals(busy: 10_000_000)]) else {
            Issue.record("not rejected"); return
        }
        #expect(message == "API key t1 has spent $0.01 of its daily local-cost budget of $0.01; it resets at 2026-11-21T00:00:00Z. Wait until then or ask the operator to raise the budget.")
        // Keyless requests are no tenant: spend limits do not apply to them.
        #expect(decide(policy, tenant: nil, usage: [.day: totals(busy: 99_000_000)]) == .allow(maxOutputTokens: nil))
    }

    @Test func monthlyAPIEquivalentLimitPerTenant() {
        // gpt-5-nano standard: 1,000 prompt x 50e6 + 1,000 out x 400e6 over 1e6 = 450,000 nUSD.
        let limit = SpendLimit(period: .month, basis: .api(model: "gpt-5-nano", tier: .standard), limitNanoUSD: 450_000)
        let policy = BudgetPolicy(tenants: ["t1": TenantBudget(spendLimits: [limit])])
        #expect(BudgetCheck.periods(policy: policy, tenant: "t2").isEmpty)
        #expect(decide(policy, usage: [.month: totals(prompt: 1_000, generated: 999)]) == .allow(maxOutputTokens: nil))
        guard case .reject(let message) = decide(policy, usage: [.month: totals(prompt: 1_000, generated: 1_000)]) else {
            Issue.record("not rejected"); return
        }
        #expect(message.contains("monthly gpt-5-nano standard-equivalent budget of $0.00045"))
        #expect(message.contains("resets at 2026-12-01T00:00:00Z"))
        #expect(decide(policy, tenant: "t2", usage: [.month: totals(prompt: 1_000_000)]) == .allow(maxOutputTokens: nil))
    }

    @Test func statusReportsEveryLimit() {
        let limits = [SpendLimit(period: .day, basis: .local, limitNanoUSD: 5),
                      SpendLimit(period: .month, basis: .api(model: "gpt-5-nano", tier: .batch), limitNanoUSD: 7)]
        let status = BudgetCheck.status(policy: BudgetPolicy(defaultSpendLimits: limits), tenant: "t1",
                                        usage: [.day: totals(busy: 3), .month: totals(prompt: 40)], nowMicros: now,
                                        machine: machine, prices: .shipped)
        // 40 x 25e6 / 1e6 = 1,000
        #expect(status.map(\.spentNanoUSD) == [3, 1_000])
        #expect(status[0].periodStartMicros == Fixtures.nov20 && status[0].periodEndMicros == Fixtures.nov20 + 24 * Fixtures.hour)
        #expect(UTC.timestamp(micros: status[1].periodStartMicros) == "2026-11-01T00:00:00Z")
    }

    @Test func policyNamesAPIModelsItCannotPrice() {
        let policy = BudgetPolicy(defaultSpendLimits: [SpendLimit(period: .day, basis: .api(model: "gpt-9", tier: .standard), limitNanoUSD: 1)])
        #expect(policy.missingPrices(in: .shipped) == ["gpt-9"])
        #expect(BudgetPolicy.unlimited.missingPrices(in: .shipped).isEmpty)
    }

    @Test func policyRoundTripsThroughJSON() throws {
        let policy = BudgetPolicy(defaultMaxOutputTokens: 512, defaultSpendLimits: [SpendLimit(period: .day, basis: .local, limitNanoUSD: 1)],
                                  tenants: ["sha256:ab": TenantBudget(spendLimits: [SpendLimit(period: .month, basis: .api(model: "m", tier: .batch), limitNanoUSD: 2)])])
        let decoded = try JSONDecoder().decode(BudgetPolicy.self, from: JSONEncoder().encode(policy))
        #expect(decoded == policy)
    }
}

@Suite struct BudgetFileTests {
    @Test func parsesDollarsTenantsAndBases() throws {
        let json = #"""
        {"max_output_tokens": 1024,
         "spend_limits": [{"period": "day", "basis": "local", "usd": 5}],
         "tenants": {"sha256:0123456789abcdef": {"max_output_tokens": 256,
                     "spend_limits": [{"period": "month", "basis": "gpt-5-nano", "tier": "batch", "usd": 0.5}]},
                     "sha256:fedcba9876543210": {"max_output_tokens": 64}}}
        """#
        let policy = try BudgetPolicy.parse(Data(json.utf8), name: "b.json", prices: .shipped)
        #expect(policy.defaultMaxOutputTokens == 1024)
        #expect(policy.defaultSpendLimits == [SpendLimit(period: .day, basis: .local, limitNanoUSD: 5_000_000_000)])
        #expect(policy.maxOutputTokens(for: "sha256:0123456789abcdef") == 256)
        #expect(policy.spendLimits(for: "sha256:0123456789abcdef")
            == [SpendLimit(period: .month, basis: .api(model: "gpt-5-nano", tier: .batch), limitNanoUSD: 500_000_000)])
        // A tenant without its own limits falls back to the defaults; one without a key has none.
        #expect(policy.spendLimits(for: "sha256:fedcba9876543210") == policy.defaultSpendLimits)
        #expect(policy.spendLimits(for: nil).isEmpty)
    }

    @Test func namesWhatIsWrong() {
        let cases: [(String, String)] = [
            (#"{"spend_limits": [{"period": "week", "basis": "local", "usd": 1}]}"#, "period \"week\""),
            (#"{"spend_limits": [{"period": "day", "basis": "no-such-model", "usd": 1}]}"#, "basis \"no-such-model\""),
            (#"{"spend_limits": [{"period": "day", "basis": "gpt-5-nano", "tier": "spot", "usd": 1}]}"#, "tier \"spot\""),
            (#"{"spend_limits": [{"period": "day", "basis": "local", "usd": -1}]}"#, "usd -1"),
            (#"{"max_output_tokens": 0}"#, "max_output_tokens 0"),
            (#"[1, 2]"#, "not a budget JSON object"),
        ]
        for (json, expected) in cases {
            do {
                _ = try BudgetPolicy.parse(Data(json.utf8), name: "b.json", prices: .shipped)
                Issue.record("accepted \(json)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
                #expect("\(error)".contains("budget file b.json"))
            }
        }
    }
}
