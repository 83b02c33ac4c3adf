// The server's log: swift-log, bootstrapped by `tally serve` with `--log-level` and `--log-format text|json`,
// written to stderr one line per event. What it says: start-up facts, one info line per finished request
// (id, tenant, tokens, timings, cost, finish reason; never prompt or output text), and while busy a stats
// line every few seconds like vLLM's (prompt and generation tokens/s, running and waiting, KV use, prefix-cache
// hit rate).

import Engine
import Foundation
import Logging

package enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// One line per event on stderr: `2026-12-07T06:40:00.123Z info tally: message key=value ...` or a JSON object
/// with `time`, `level`, `logger`, `message` and the metadata as string members.
package struct ServerLogHandler: LogHandler {
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]
    let label: String
    let format: LogFormat

    package init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        FileHandle.standardError.write(Data((render(event) + "\n").utf8))
    }

    package func render(_ event: LogEvent) -> String {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let time = Date().ISO8601Format(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        switch format {
        case .text:
            let pairs = merged.keys.sorted().map { key in
                let value = "\(merged[key]!)"
                return "\(key)=" + (value.contains(" ") || value.isEmpty ? "\"\(value)\"" : value)
            }
            return ([time, event.level.rawValue, "\(label):", "\(event.message)"] + pairs).joined(separator: " ")
        case .json:
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "logger": label, "message": "\(event.message)"]
            for (key, value) in merged where object[key] == nil { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }
}

package enum ServerLogging {
    /// Once per process, before any logger is made (`tally serve`).
    package static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in ServerLogHandler(label: label, level: level, format: format) }
    }

    /// The stats line every `interval` while the server has work (requests running or waiting, or tokens
    /// processed since the last line); silent when idle. Runs until cancelled.
    package static func runStats(engine: any InferenceEngine, metrics: ServerMetrics, logger: Logger, interval: Duration) async {
        var last = (snapshot: engine.snapshot(), tokens: metrics.tokenTotals(), at: ContinuousClock.now)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = (snapshot: engine.snapshot(), tokens: metrics.tokenTotals(), at: ContinuousClock.now)
            let seconds = max((now.at - last.at).inSeconds, 1e-9)
            let prompt = now.tokens.prompt - last.tokens.prompt, generated = now.tokens.generated - last.tokens.generated
            let queried = now.snapshot.prefixCacheQueriedTokens - last.snapshot.prefixCacheQueriedTokens
            let hits = now.snapshot.prefixCacheHitTokens - last.snapshot.prefixCacheHitTokens
            defer { last = now }
            guard now.snapshot.running + now.snapshot.waiting > 0 || prompt + generated > 0 else { continue }
            let kv = now.snapshot.kvBlocksTotal == 0 ? 0 : 100 * Double(now.snapshot.kvBlocksUsed) / Double(now.snapshot.kvBlocksTotal)
            func f(_ x: Double) -> String { String(format: "%.1f", x) }
            logger.info("stats", metadata: [
                "prompt_tokens_per_s": "\(f(Double(prompt) / seconds))", "generation_tokens_per_s": "\(f(Double(generated) / seconds))",
                "running": "\(now.snapshot.running)", "waiting": "\(now.snapshot.waiting)", "kv_cache_usage_pct": "\(f(kv))",
                "prefix_cache_hit_rate_pct": "\(f(queried == 0 ? 0 : 100 * Double(hits) / Double(queried)))",
            ])
        }
    }
}
