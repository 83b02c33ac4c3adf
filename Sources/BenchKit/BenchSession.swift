// One `tally bench` invocation: build the prompts, run each load level of the sweep in turn, summarise.

import Foundation
import Tokenization

package struct BenchOptions: Sendable {
    /// Closed-loop levels; nil: the workload's own (or its arrival rate).
    package var concurrency: [Int]?
    package var slo: SLO?
    package var cost: CostInputs?

    package init(concurrency: [Int]? = nil, slo: SLO? = nil, cost: CostInputs? = nil) {
        self.concurrency = concurrency
        self.slo = slo
        self.cost = cost
    }
}

package enum BenchSession {
    /// The load levels a workload and options ask for: `--concurrency` first, then the workload's arrival
    /// rate, then its concurrency list.
    package static func plans(_ workload: Workload, _ options: BenchOptions) -> [LoadPlan] {
        let modes: [LoadPlan.Mode]
        if let levels = options.concurrency {
            modes = levels.map { .concurrency($0) }
        } else if let rate = workload.arrivalRate {
            modes = [.arrivalRate(rate)]
        } else {
            modes = workload.concurrency.map { .concurrency($0) }
        }
        return modes.map {
            LoadPlan(mode: $0, requests: workload.requests, timeLimitSeconds: workload.timeLimitSeconds,
                     maxTokens: workload.maxTokens, ignoreEOS: workload.ignoreEOS, seed: workload.seed)
        }
    }

    /// Runs every level; `log` gets a line per level, `progress(level, done, total)` after each request.
    package static func run(_ workload: Workload, target: any BenchTarget, tokenizer: Tokenizer?, options: BenchOptions,
                            log: @Sendable (String) -> Void = { _ in },
                            progress: @escaping @Sendable (String, Int, Int) -> Void = { _, _, _ in }) async throws -> BenchReport {
        if let levels = options.concurrency, levels.isEmpty || levels.contains(where: { $0 < 1 }) {
            throw BenchError.badWorkload(path: "--concurrency", reason: "levels must be integers >= 1")
        }
        let started = Date()
        var runs: [RunSummary] = []
        for (index, plan) in plans(workload, options).enumerated() {
            let prompts = try workload.prompts(tokenizer: tokenizer, run: index)
            let label = RunSummary.label(plan.mode)
            log("run \(index + 1): \(label), \(plan.requests) requests, at most \(formatNumber(plan.timeLimitSeconds)) s")
            let record = try await LoadRunner.run(plan, target: target, prompts: prompts) { done, total in
                progress(label, done, total)
            }
            let summary = RunSummary(record, slo: options.slo, pricing: options.cost)
            log("\(label): \(summary.completed) completed, \(summary.failed) failed, \(summary.cancelled) cancelled in \(String(format: "%.1f", summary.wallSeconds)) s, \(String(format: "%.1f", summary.outputTokensPerSecond)) output tok/s")
            runs.append(summary)
        }
        return BenchReport(workload: workload, target: target.label, startedAt: started, runs: runs)
    }
}

extension RunSummary {
    static func label(_ mode: LoadPlan.Mode) -> String {
        switch mode {
        case .concurrency(let n): return "c=\(n)"
        case .arrivalRate(let rate): return "rate=\(formatNumber(rate))/s"
        }
    }
}
