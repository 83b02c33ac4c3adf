// Flags shared by `serve` and `report`: where usage is stored and what it is priced with.

import ArgumentParser
import Foundation
import Metering

struct PricingOptions: ParsableArguments {
    @Option(help: "API price file: tally's format or LiteLLM's model_prices_and_context_window.json (default: the shipped table).")
    var prices: String?
    @Option(help: "Comma-separated API models to compare against (default: every model of the price table).")
    var compare: String?
    @Option(help: "Hardware profile file with machines and GPUs (default: the shipped profiles).")
    var hardware: String?
    @Option(help: "Machine profile this server runs on (default: the profile file's default).")
    var machine: String?
    @Option(help: "Reference GPU for the GPU-equivalent cost (default: the profile file's default).")
    var gpu: String?

    func pricing() throws -> Meter.Pricing {
        let profiles = try hardware.map { try HardwareProfiles.load(path: $0) } ?? .shipped
        let names = compare.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        var table = try prices.map { try PriceTable.load(path: $0, compare: names) } ?? .shipped
        if prices == nil, let names {
            let missing = names.filter { name in !table.models.contains { $0.model == name } }
            guard missing.isEmpty else {
                throw CLIError("--compare names \(missing.joined(separator: ", ")), which the shipped price table lacks (it has \(table.models.map(\.model).joined(separator: ", ")))")
            }
            table.models = table.models.filter { names.contains($0.model) }
        }
        return Meter.Pricing(machine: try machine.map { try profiles.machine(named: $0) } ?? profiles.defaultMachine,
                             gpu: try gpu.map { try profiles.gpu(named: $0) } ?? profiles.defaultGPU, prices: table)
    }
}

/// The usage database when `--db` is not given: `$TALLY_DB`, else `$XDG_DATA_HOME/tally/usage.db`
/// (`~/.local/share/tally/usage.db`).
func defaultUsageDatabase() -> String {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["TALLY_DB"], !path.isEmpty { return path }
    let base = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
        ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
    return ((base as NSString).appendingPathComponent("tally") as NSString).appendingPathComponent("usage.db")
}
