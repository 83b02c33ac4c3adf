// The server's meter: asks the budget before a request runs, and after it finishes writes its usage record
// durably and prices it. One actor per server; it keeps running spend per tenant and period in memory
// (loaded once from the store) so a budget check costs no query, and cost totals for /metrics.

import Foundation
import Logging

package actor Meter {
    /// What records are priced with. Prices and profiles never change stored records, only what is shown.
    package struct Pricing: Sendable {
        package var machine: MachineProfile
        package var gpu: GPUProfile
        package var prices: PriceTable

        package init(machine: MachineProfile = HardwareProfiles.shipped.defaultMachine,
                     gpu: GPUProfile = HardwareProfiles.shipped.defaultGPU, prices: PriceTable = .shipped) {
            self.machine = machine
            self.gpu = gpu
            self.prices = prices
        }
    }

    /// Cumulative figures for /metrics, by served model (tenants stay out of metric labels).
    package struct Totals: Sendable, Equatable {
        package struct ModelCost: Sendable, Equatable {
            package var localNanoUSD: Int64 = 0
            package var gpuNanoUSD: Int64 = 0
            /// Standard and batch tier by API model, in price-table order.
            package var apiStandardNanoUSD: [String: Int64] = [:]
            package var apiBatchNanoUSD: [String: Int64] = [:]
        }
        /// Records written durably.
        package var recorded = 0
        /// Records the store refused (disk full, I/O error): counted and logged, the response still goes out.
        package var lost = 0
        /// Requests refused by a budget.
        package var budgetRejections = 0
        package var costByModel: [String: ModelCost] = [:]
    }

    package nonisolated let store: any UsageStore
    package nonisolated let pricing: Pricing
    package nonisolated let budgets: BudgetPolicy
    private let nowMicros: @Sendable () -> Int64
    private let log: @Sendable (String) -> Void
    private var totals = Totals()
    /// Tenant -> period -> (period start, totals since then), for tenants with spend limits.
    private var spend: [String: [SpendPeriod: (start: Int64, totals: UsageTotals)]] = [:]
    private var pendingWrites = 0
    /// The last write failed and none has succeeded since: `--require-metering` refuses work meanwhile.
    private var storeFailing = false
    /// When the store last failed, or a request was last let through as a probe of it.
    private var lastProbeMicros: Int64 = 0
    /// How often a failing store is probed by letting one request through (its write is the probe).
    package static let probeIntervalMicros: Int64 = 1_000_000

    package init(store: any UsageStore, pricing: Pricing = Pricing(), budgets: BudgetPolicy = .unlimited,
                 nowMicros: @escaping @Sendable () -> Int64 = { UTC.micros(Date()) },
                 log: @escaping @Sendable (String) -> Void = { Logger(label: "tally.meter").error("\($0)") }) {
        self.store = store
        self.pricing = pricing
        self.budgets = budgets
        self.nowMicros = nowMicros
        self.log = log
    }

    /// Unix time in µs from the injected clock (records are stamped with it).
    package nonisolated var now: Int64 { nowMicros() }

    // MARK: Before

    /// With `--require-metering`: whether a request may be served, i.e. records are being written. While the
    /// store is failing, one request a second goes through as a probe; the rest get 503.
    package func storeAcceptsWork() -> Bool {
        guard storeFailing else { return true }
        let time = nowMicros()
        guard time - lastProbeMicros >= Self.probeIntervalMicros else { return false }
        lastProbeMicros = time
        return true
    }

    /// Allow or refuse a request of `tenant` (an API key fingerprint; nil without keys) before it runs.
    package func admit(tenant: String?, requestedMaxOutputTokens: Int?) async -> BudgetDecision {
        let time = nowMicros()
        var usage: [SpendPeriod: UsageTotals] = [:]
        if let tenant {
            for period in BudgetCheck.periods(policy: budgets, tenant: tenant) {
                usage[period] = await spent(tenant: tenant, period: period, at: time)
            }
        }
        let decision = BudgetCheck.decide(policy: budgets, tenant: tenant, requestedMaxOutputTokens: requestedMaxOutputTokens,
                                          usage: usage, nowMicros: time, machine: pricing.machine, prices: pricing.prices)
        if case .reject = decision { totals.budgetRejections += 1 }
        return decision
    }

    /// The tenant's totals in the current `period`, from memory; loaded from the store when the period is new.
    private func spent(tenant: String, period: SpendPeriod, at time: Int64) async -> UsageTotals {
        let start = period.start(containing: time)
        if let known = spend[tenant]?[period], known.start == start { return known.totals }
        var loaded = UsageTotals()
        do {
            loaded = try await store.totals(tenant: tenant, sinceMicros: start)
        } catch {
            log("usage store unreadable for the budget of \(tenant): \(error); counting this period from zero")
        }
        // Another request may have loaded it while we waited on the store.
        if let known = spend[tenant]?[period], known.start == start { return known.totals }
        spend[tenant, default: [:]][period] = (start, loaded)
        return loaded
    }

    /// Spend of each of the tenant's limits this period, for reports and errors.
    package func budgetStatus(tenant: String) async -> [SpendStatus] {
        let time = nowMicros()
        var usage: [SpendPeriod: UsageTotals] = [:]
        for period in BudgetCheck.periods(policy: budgets, tenant: tenant) {
            usage[period] = await spent(tenant: tenant, period: period, at: time)
        }
        return BudgetCheck.status(policy: budgets, tenant: tenant, usage: usage, nowMicros: time,
                                  machine: pricing.machine, prices: pricing.prices)
    }

    // MARK: After

    /// Writes `record` durably (the caller sends the final chunk after this returns) and returns its cost.
    /// A store failure is counted and logged, never thrown: the client still gets its answer.
    package func record(_ record: UsageRecord) async -> CostModel.RequestCost {
        pendingWrites += 1
        defer { pendingWrites -= 1 }
        do {
            try await store.append(record)
            totals.recorded += 1
            storeFailing = false
        } catch {
            totals.lost += 1
            storeFailing = true
            lastProbeMicros = nowMicros()
            log("usage record \(record.id) lost (\(totals.lost) so far): \(error)")
        }
        let cost = CostModel.cost(of: record, machine: pricing.machine, gpu: pricing.gpu, prices: pricing.prices)
        var byModel = totals.costByModel[record.model, default: .init()]
        byModel.localNanoUSD += cost.localNanoUSD
        byModel.gpuNanoUSD += cost.gpuNanoUSD
        for api in cost.apis {
            byModel.apiStandardNanoUSD[api.model, default: 0] += api.standardNanoUSD
            byModel.apiBatchNanoUSD[api.model, default: 0] += api.batchNanoUSD
        }
        totals.costByModel[record.model] = byModel
        if let tenant = record.tenant, var periods = spend[tenant] {
            for (period, entry) in periods where entry.start <= record.timeMicros {
                periods[period]!.totals.add(record)
            }
            spend[tenant] = periods
        }
        return cost
    }

    /// Starts writing `record` now (from any thread, e.g. the engine's); await the task for its cost. Aborted
    /// requests nobody waits on are written this way too; `flush` waits for them at shutdown.
    @discardableResult
    package nonisolated func recordInBackground(_ record: UsageRecord) -> Task<CostModel.RequestCost, Never> {
        Task { await self.record(record) }
    }

    /// Waits until background writes are done (shutdown).
    package func flush(limit: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + limit
        // A background Task may not have reached the actor yet: give it a moment before trusting 0.
        try? await Task.sleep(for: .milliseconds(50))
        while pendingWrites > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    package func snapshot() -> Totals { totals }
}
