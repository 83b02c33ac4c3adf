// Prometheus for a fleet of replicas: the scrape configuration (each replica a target with a `replica`
// label) and recording rules over the metric names ServerMetrics writes. `tally fleet prometheus` and
// `tally fleet rules` print them; CI checks both with promtool.

package enum FleetPrometheus {
    /// A replica to scrape: its name (the `replica` label, as `tally serve --replica`) and HOST:PORT.
    package struct Target: Sendable, Equatable {
        package var name: String
        package var address: String

        /// Parses NAME=HOST:PORT.
        package init?(_ text: String) {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains(":"),
                  parts[0].allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else { return nil }
            (name, address) = (parts[0], parts[1])
        }
    }

    /// prometheus.yml: scrape every replica's /metrics (with the metrics key as a bearer token when set),
    /// loading the recording rules from `rulesFile`.
    package static func scrapeConfig(_ targets: [Target], interval: Int = 15, rulesFile: String = "tally-rules.yml",
                                     metricsKeyFile: String? = nil) -> String {
        var out = """
            # Prometheus for a tally fleet (tally fleet prometheus). Check it with: promtool check config FILE
            global:
              scrape_interval: \(interval)s
              evaluation_interval: \(interval)s
            rule_files:
              - \(rulesFile)
            scrape_configs:
              - job_name: tally
                metrics_path: /metrics

            """
        if let metricsKeyFile {
            out += "    authorization:\n      type: Bearer\n      credentials_file: \(metricsKeyFile)\n"
        }
        out += "    static_configs:\n"
        for t in targets {
            out += "      - targets: [\"\(t.address)\"]\n        labels:\n          replica: \(t.name)\n"
        }
        return out
    }

    /// Recording rules: per replica and for the fleet, tokens per second, the prefix-cache hit rate (in
    /// tokens, over 5 minutes), running and waiting requests, KV use, and metered cost per hour.
    package static let rules = """
        # Recording rules for a tally fleet (tally fleet rules). Check them with: promtool check rules FILE
        groups:
          - name: tally-fleet
            rules:
              - record: replica:tally_generation_tokens:rate1m
                expr: sum by (replica) (rate(tally_generation_tokens_total[1m]))
              - record: fleet:tally_generation_tokens:rate1m
                expr: sum(rate(tally_generation_tokens_total[1m]))
              - record: replica:tally_prompt_tokens:rate1m
                expr: sum by (replica) (rate(tally_prompt_tokens_total[1m]))
              - record: fleet:tally_prompt_tokens:rate1m
                expr: sum(rate(tally_prompt_tokens_total[1m]))
              - record: replica:tally_prefix_cache_hit_ratio:rate5m
                expr: >
                  sum by (replica) (rate(tally_prefix_cache_hits_total[5m]))
                  / sum by (replica) (rate(tally_prefix_cache_queries_total[5m]))
              - record: fleet:tally_prefix_cache_hit_ratio:rate5m
                expr: >
                  sum(rate(tally_prefix_cache_hits_total[5m]))
                  / sum(rate(tally_prefix_cache_queries_total[5m]))
              - record: fleet:tally_num_requests_running:sum
                expr: sum(tally_num_requests_running)
              - record: fleet:tally_num_requests_waiting:sum
                expr: sum(tally_num_requests_waiting)
              - record: replica:tally_kv_cache_usage:ratio
                expr: max by (replica) (tally_kv_cache_usage_perc)
              - record: replica:tally_cost_local_usd:per_hour
                expr: sum by (replica) (rate(tally_cost_local_usd_total[1h])) * 3600
              - record: fleet:tally_cost_local_usd:per_hour
                expr: sum(rate(tally_cost_local_usd_total[1h])) * 3600
              - record: fleet:tally_cost_gpu_equivalent_usd:per_hour
                expr: sum(rate(tally_cost_gpu_equivalent_usd_total[1h])) * 3600
              - record: fleet:tally_cost_api_equivalent_usd:per_hour
                expr: sum by (api, tier) (rate(tally_cost_api_equivalent_usd_total[1h])) * 3600

        """
}
