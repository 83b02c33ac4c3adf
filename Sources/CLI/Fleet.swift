// `tally fleet`: configuration for running several replicas (Prometheus scrape config and recording rules).

import ArgumentParser
import Foundation
import OpenAIServer

struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Configuration for a fleet of tally replicas.",
        discussion: "Example: tally fleet nginx --replica a=10.0.0.1:8080 --replica b=10.0.0.2:8080 --listen 0.0.0.0:8080 --dir fleet",
        subcommands: [FleetNginxConfig.self, FleetPrometheusConfig.self, FleetRules.self])
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

struct FleetNginxConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nginx", abstract: "Write an nginx configuration with prefix affinity for the replicas into a folder.",
        discussion: """
            Writes DIR/nginx.conf and DIR/tally_prefix.js (the affinity key, for nginx's njs module: Debian's \
            libnginx-mod-http-js), then run: nginx -p DIR -c nginx.conf -e logs/error.log

            Example: tally fleet nginx --replica a=127.0.0.1:8081 --replica b=127.0.0.1:8082 --listen 127.0.0.1:8080 --dir fleet
            """)

    @Option(help: "A replica as NAME=HOST:PORT; repeat for each.") var replica: [String]
    @Option(help: "Where nginx listens (ADDRESS:PORT).") var listen = "127.0.0.1:8080"
    @Option(help: "The folder to write into (created).") var dir: String
    @Option(help: "nginx's njs module.") var jsModule = "/usr/lib/nginx/modules/ngx_http_js_module.so"
    @Option(help: "Seconds a failed replica is skipped.") var failTimeout = 10
    @Flag(help: "Balance round-robin, without prefix affinity (a baseline to compare with).") var roundRobin = false

    func run() throws {
        let targets = try replica.map { text in
            guard let t = FleetPrometheus.Target(text) else { throw ValidationError("--replica \(text): expected NAME=HOST:PORT") }
            return t
        }
        guard !targets.isEmpty else { throw ValidationError("give at least one --replica NAME=HOST:PORT") }
        let files = FileManager.default
        for sub in ["logs", "tmp"] { try files.createDirectory(atPath: (dir as NSString).appendingPathComponent(sub), withIntermediateDirectories: true) }
        try FleetNginx.config(targets, listen: listen, jsModule: jsModule, failTimeoutSeconds: failTimeout, affinity: !roundRobin)
            .write(toFile: (dir as NSString).appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        try FleetNginx.script.write(toFile: (dir as NSString).appendingPathComponent("tally_prefix.js"), atomically: true, encoding: .utf8)
        print("wrote \(dir)/nginx.conf and \(dir)/tally_prefix.js; run: nginx -p \(dir) -c nginx.conf -e logs/error.log")
    }
}
