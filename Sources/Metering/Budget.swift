// Budgets and guardrails: output-token caps and per-tenant spend limits per UTC day or month, in local or
// API-equivalent USD. `BudgetCheck.decide` is pure: the server reads the tenant's totals for the periods
// `BudgetCheck.periods` names from the store, asks, and turns a rejection into HTTP 429.

import Foundation

/// A UTC calendar period a spend limit resets on.
package enum SpendPeriod: String, Sendable, Codable, CaseIterable, Hashable {
    case day
    case month

    /// Start of the period containing `micros`.
    package func start(containing micros: Int64) -> Int64 {
        switch self {
        case .day: return UTC.startOfDay(micros: micros)
        case .month: return UTC.startOfMonth(micros: micros)
        }
    }

    /// Start of the next period after the one containing `micros`.
    package func end(containing micros: Int64) -> Int64 {
        switch self {
        case .day: return UTC.startOfDay(micros: micros) + UTC.microsPerDay
        case .month: return UTC.startOfMonth(micros: UTC.startOfMonth(micros: micros) + 32 * UTC.microsPerDay)
        }
    }

    var adjective: String { self == .day ? "daily" : "monthly" }
}

/// Which money a spend limit counts.
package enum SpendBasis: Sendable, Codable, Hashable {
    /// Local cost (machine $/hour x busy share).
    case local
    /// What the same tokens would have cost on this API model (by model name in the price table).
    case api(model: String, tier: PriceTier)

    var label: String {
        switch self {
        case .local: return "local-cost"
        case .api(let model, let tier): return "\(model) \(tier.rawValue)-equivalent"
        }
    }
}

/// At most `limitNanoUSD` of `basis` money per `period`.
package struct SpendLimit: Sendable, Codable, Hashable {
    package var period: SpendPeriod
    package var basis: SpendBasis
    package var limitNanoUSD: Int64

    package init(period: SpendPeriod, basis: SpendBasis, limitNanoUSD: Int64) {
        self.period = period
        self.basis = basis
        self.limitNanoUSD = limitNanoUSD
    }
}

/// One tenant's guardrails. nil fields fall back to the policy's defaults.
package struct TenantBudget: Sendable, Codable, Hashable {
    package var maxOutputTokens: Int?
    package var spendLimits: [SpendLimit]?

    package init(maxOutputTokens: Int? = nil, spendLimits: [SpendLimit]? = nil) {
        self.maxOutputTokens = maxOutputTokens
        self.spendLimits = spendLimits
    }
}

/// The server's budget configuration. Tenants are keyed by `Tenant.fingerprint(apiKey:)`.
package struct BudgetPolicy: Sendable, Codable, Hashable {
    /// Output-token cap for everyone without their own; nil = no cap.
    package var defaultMaxOutputTokens: Int?
    /// Spend limits of every tenant without their own. Keyless requests have no tenant and no spend limit.
    package var defaultSpendLimits: [SpendLimit]
    package var tenants: [String: TenantBudget]

    package init(defaultMaxOutputTokens: Int? = nil, defaultSpendLimits: [SpendLimit] = [], tenants: [String: TenantBudget] = [:]) {
        self.defaultMaxOutputTokens = defaultMaxOutputTokens
        self.defaultSpendLimits = defaultSpendLimits
        self.tenants = tenants
    }

    package static let unlimited = BudgetPolicy()

    package func maxOutputTokens(for tenant: String?) -> Int? {
        tenant.flatMap { tenants[$0]?.maxOutputTokens } ?? defaultMaxOutputTokens
    }

    package func spendLimits(for tenant: String?) -> [SpendLimit] {
        guard let tenant else { return [] }
        return tenants[tenant]?.spendLimits ?? defaultSpendLimits
    }

    /// Names every API model a limit counts that the price table lacks; empty when the policy is usable.
    package func missingPrices(in prices: PriceTable) -> [String] {
        let limits = defaultSpendLimits + tenants.values.flatMap { $0.spendLimits ?? [] }
        var missing: [String] = []
        for case .api(let model, _) in limits.map(\.basis)
        where !prices.models.contains(where: { $0.model == model }) && !missing.contains(model) {
            missing.append(model)
        }
        return missing
    }
}

/// What to do with a request.
package enum BudgetDecision: Sendable, Equatable {
    /// Go ahead; generate at most `maxOutputTokens` (nil: no cap beyond the model's).
    case allow(maxOutputTokens: Int?)
    /// Refuse (HTTP 429) with this message for the client.
    case reject(message: String)
}

/// The spend of a tenant in one limit's current period.
package struct SpendStatus: Sendable, Equatable, Codable {
    package var limit: SpendLimit
    package var spentNanoUSD: Int64
    package var periodStartMicros: Int64
    package var periodEndMicros: Int64
}

package enum BudgetCheck {
    /// Periods whose totals `decide` needs for this tenant; query the store for each
    /// (`store.totals(tenant:sinceMicros: period.start(containing: now))`).
    package static func periods(policy: BudgetPolicy, tenant: String?) -> [SpendPeriod] {
        let used = Set(policy.spendLimits(for: tenant).map(\.period))
        return SpendPeriod.allCases.filter(used.contains)
    }

    /// Spend of `totals` on a basis. An API model missing from the table counts as 0 (validate the policy
    /// with `missingPrices` at startup so this never happens).
    package static func spend(_ totals: UsageTotals, basis: SpendBasis, machine: MachineProfile, prices: PriceTable) -> Int64 {
        switch basis {
        case .local:
            return CostModel.localCostNanoUSD(busyMicros: totals.busyShareMicros, machine: machine)
        case .api(let model, let tier):
            guard let price = prices.models.first(where: { $0.model == model }) else { return 0 }
            return CostModel.apiCostNanoUSD(totals, price: price, tier: tier)
        }
    }

    /// Each limit of the tenant with what it has spent this period. `usage[period]` is the tenant's totals
    /// since that period's start; a missing entry counts as nothing spent.
    package static func status(policy: BudgetPolicy, tenant: String?, usage: [SpendPeriod: UsageTotals], nowMicros: Int64,
                               machine: MachineProfile, prices: PriceTable) -> [SpendStatus] {
        policy.spendLimits(for: tenant).map { limit in
            SpendStatus(limit: limit,
                        spentNanoUSD: spend(usage[limit.period] ?? UsageTotals(), basis: limit.basis, machine: machine, prices: prices),
                        periodStartMicros: limit.period.start(containing: nowMicros),
                        periodEndMicros: limit.period.end(containing: nowMicros))
        }
    }

    /// Allow or reject a new request.
    ///
    /// - An explicit `max_tokens` above the tenant's cap is rejected (silently generating less than asked
    ///   would look like a model stop); no `max_tokens` means the cap.
    /// - A tenant whose spend this period has reached a limit is rejected until the period ends. The check
    ///   is on spend so far, so the request that crosses the limit still runs: limits are soft by at most
    ///   one request per concurrent slot.
    package static func decide(policy: BudgetPolicy, tenant: String?, requestedMaxOutputTokens: Int?,
                               usage: [SpendPeriod: UsageTotals], nowMicros: Int64,
                               machine: MachineProfile, prices: PriceTable) -> BudgetDecision {
        let who = tenant.map { "API key \($0)" } ?? "requests without an API key"
        let cap = policy.maxOutputTokens(for: tenant)
        if let cap, let requested = requestedMaxOutputTokens, requested > cap {
            return .reject(message: "max_tokens \(requested) is over the output-token cap of \(cap) for \(who); ask for at most \(cap) tokens.")
        }
        for status in status(policy: policy, tenant: tenant, usage: usage, nowMicros: nowMicros, machine: machine, prices: prices)
        where status.spentNanoUSD >= status.limit.limitNanoUSD {
            let limit = status.limit
            return .reject(message: "\(who) has spent \(formatUSD(status.spentNanoUSD)) of its \(limit.period.adjective) "
                + "\(limit.basis.label) budget of \(formatUSD(limit.limitNanoUSD)); it resets at "
                + "\(UTC.timestamp(micros: status.periodEndMicros)). Wait until then or ask the operator to raise the budget.")
        }
        return .allow(maxOutputTokens: requestedMaxOutputTokens ?? cap)
    }
}

// MARK: Budget file

/// The budget file `tally serve --budgets FILE` reads (dollars, not nano-USD; tenants by key fingerprint,
/// which `tally serve` prints for each configured key at start):
///
///     {
///       "max_output_tokens": 1024,
///       "spend_limits": [{"period": "day", "basis": "local", "usd": 5}],
///       "tenants": {
///         "sha256:0123456789abcdef": {
///           "max_output_tokens": 256,
///           "spend_limits": [{"period": "month", "basis": "gpt-5-nano", "tier": "batch", "usd": 0.5}]
///         }
///       }
///     }
///
/// `basis` is `local` or a model of the price table (its API-equivalent cost, `tier` standard by default).
extension BudgetPolicy {
    private struct FileLimit: Decodable {
        var period: String
        var basis: String
        var tier: String?
        var usd: Double
    }
    private struct FileTenant: Decodable {
        var max_output_tokens: Int?
        var spend_limits: [FileLimit]?
    }
    private struct File: Decodable {
        var max_output_tokens: Int?
        var spend_limits: [FileLimit]?
        var tenants: [String: FileTenant]?
    }

    package static func load(path: String, prices: PriceTable) throws -> BudgetPolicy {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw MeteringError.badBudgetFile(path: path, reason: "cannot be read (\(error.localizedDescription))")
        }
        return try parse(data, name: path, prices: prices)
    }

    package static func parse(_ data: Data, name: String, prices: PriceTable) throws -> BudgetPolicy {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw MeteringError.badBudgetFile(path: name, reason: "is not a budget JSON object (\(error))")
        }
        func limit(_ l: FileLimit) throws -> SpendLimit {
            guard let period = SpendPeriod(rawValue: l.period) else {
                throw MeteringError.badBudgetFile(path: name, reason: "period \"\(l.period)\" is neither day nor month")
            }
            guard l.usd >= 0, l.usd.isFinite else {
                throw MeteringError.badBudgetFile(path: name, reason: "usd \(l.usd) must be a non-negative number")
            }
            let basis: SpendBasis
            if l.basis == "local" {
                basis = .local
            } else {
                guard prices.models.contains(where: { $0.model == l.basis }) else {
                    throw MeteringError.badBudgetFile(path: name, reason: "basis \"\(l.basis)\" is neither local nor a model of the price table (\(prices.models.map(\.model).joined(separator: ", ")))")
                }
                guard let tier = PriceTier(rawValue: l.tier ?? "standard") else {
                    throw MeteringError.badBudgetFile(path: name, reason: "tier \"\(l.tier ?? "")\" is neither standard nor batch")
                }
                basis = .api(model: l.basis, tier: tier)
            }
            return SpendLimit(period: period, basis: basis, limitNanoUSD: nanoUSD(l.usd))
        }
        func cap(_ value: Int?) throws -> Int? {
            if let value, value < 1 { throw MeteringError.badBudgetFile(path: name, reason: "max_output_tokens \(value) must be at least 1") }
            return value
        }
        var policy = BudgetPolicy(defaultMaxOutputTokens: try cap(file.max_output_tokens),
                                  defaultSpendLimits: try (file.spend_limits ?? []).map(limit))
        for (tenant, budget) in file.tenants ?? [:] {
            policy.tenants[tenant] = TenantBudget(maxOutputTokens: try cap(budget.max_output_tokens),
                                                  spendLimits: try budget.spend_limits.map { try $0.map(limit) })
        }
        return policy
    }
}
