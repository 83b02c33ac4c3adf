// `tally report`: usage records from the store -> a cost report (self-host versus GPU versus each API).

import ArgumentParser
import Foundation
import Metering

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report what usage cost: the machine's bill for the hours it ran against each API for the same tokens, with a verdict, break-even and what-if.",
        discussion: """
            The window defaults to the span of the recorded server runs (and requests); --since and --until narrow it.
            Self-host cost = machine $/h x provisioned hours, busy or idle.
            Workflows (X-Tally-Session) and outcomes (POST /v1/outcomes) give the cost per workflow and per outcome.

            Example: tally report --since 2026-11-01 --until 2026-12-01 --by tenant --format html --output report.html
            """)

    @Option(help: "Usage database: a SQLite file (default: $TALLY_DB or ~/.local/share/tally/usage.db) or postgres://USER@HOST:PORT/DB.") var db: String?
    @Option(help: "Only requests finished at or after this UTC time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ).") var since: String?
    @Option(help: "Only requests finished before this UTC time.") var until: String?
    @Option(help: "Group by tenant, model, day, tag, user (the OpenAI user field) or session (X-Tally-Session).") var by: Grouping?
    @Option(help: "text, csv, json or html.") var format: ReportFormat = .text
    @Option(help: "Write the report here instead of standard output.") var output: String?
    @Option(help: "Budget file, to show spend against each budget this period.") var budgets: String?
    @Option(help: "Tokens per second one machine serves at full load (for example from `tally bench`); default: measured from the records.")
    var capacity: Double?
    @OptionGroup var pricingOptions: PricingOptions

    func run() async throws {
        func time(_ text: String?, _ flag: String) throws -> Int64? {
            guard let text else { return nil }
            guard let micros = UTC.parse(text) else { throw ValidationError("\(flag) \(text) is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ") }
            return micros
        }
        let sinceMicros = try time(since, "--since"), untilMicros = try time(until, "--until")
        let pricing = try pricingOptions.pricing()
        let policy = try budgets.map { try BudgetPolicy.load(path: $0, prices: pricing.prices) }
        let path = db ?? defaultUsageDatabase()
        guard PostgresUsageStore.isURL(path) || FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no usage database at \(path); serve some requests first or pass --db")
        }
        let store = try await openUsageStore(path)
        let records: [UsageRecord], runs: [ServerRun], outcomes: [Outcome]
        do {
            let range = TimeRange(sinceMicros: sinceMicros, untilMicros: untilMicros)
            // Budgets look at the current period whatever the range, so they need every record.
            records = try await store.records(in: policy == nil ? range : .all)
            runs = try await store.runs(in: range)
            // Outcomes are posted after the calls they mark, so any after the window's start may mark one.
            outcomes = try await store.outcomes(sinceMicros: sinceMicros)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        if let capacity, !(capacity > 0) { throw ValidationError("--capacity \(capacity) must be a positive number of tokens per second") }
        let report = makeReport(records: records, runs: runs, outcomes: outcomes, since: sinceMicros, until: untilMicros, by: by, prices: pricing.prices,
                                machine: pricing.machine, gpu: pricing.gpu, generatedAtMicros: UTC.micros(Date()), budgets: policy,
                                capacityTokensPerSecond: capacity)
        let text = report.render(format)
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
            printError("wrote \(format.rawValue) report of \(report.total.requests) requests to \(output)")
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

extension Grouping: ExpressibleByArgument {}
extension ReportFormat: ExpressibleByArgument {}
