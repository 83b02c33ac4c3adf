// `tally fleet`: configuration for running several replicas (Prometheus scrape config and recording rules).

import ArgumentParser
import OpenAIServer

struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Configuration for a fleet of tally replicas.", subcommands: [FleetPrometheusConfig.self, FleetRules.self])
}

struct FleetPrometheusConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prometheus", abstract: "Print a Prometheus scrape configuration for the replicas.",
        discussion: "Example: tally fleet prometheus --replica a=10.0.0.1:8080 --replica b=10.0.0.2:8080 > prometheus.yml")

    @Option(help: "A replica as NAME=HOST:PORT (NAME as its --replica); repeat for each.") var replica: [String]
    @Option(help: "Seconds between scrapes.") var interval = 15
    @Option(help: "The rules file to load (write it with `tally fleet rules`).") var rulesFile = "tally-rules.yml"
    @Option(help: "A file holding the servers' --metrics-key, sent as a bearer token.") var metricsKeyFile: String?

    func run() throws {
        let targets = try replica.map { text in
            guard let t = FleetPrometheus.Target(text) else { throw ValidationError("--replica \(text): expected NAME=HOST:PORT") }
            return t
        }
        guard !targets.isEmpty else { throw ValidationError("give at least one --replica NAME=HOST:PORT") }
        print(FleetPrometheus.scrapeConfig(targets, interval: interval, rulesFile: rulesFile, metricsKeyFile: metricsKeyFile), terminator: "")
    }
}

struct FleetRules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Print Prometheus recording rules for the fleet (tokens/s, prefix hit rate, cost per hour).",
        discussion: "Example: tally fleet rules > tally-rules.yml")

    func run() { print(FleetPrometheus.rules, terminator: "") }
}
