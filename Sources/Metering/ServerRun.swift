// Server runs: when a server was up, so a report can bill the machine for the hours it was provisioned,
// busy or idle. A run is written at start, stamped by a heartbeat every minute and closed at stop; a run
// that crashed ends at its last heartbeat (so a crash under-bills by at most one heartbeat interval).

import Foundation

/// One run of `tally serve` on one machine.
package struct ServerRun: Sendable, Equatable, Codable, Hashable {
    /// Random per run.
    package var id: String
    /// The machine (replica) the server ran on: runs on the same host share one bill.
    package var host: String
    /// Unix µs.
    package var startMicros: Int64
    /// The last heartbeat, or the stop; the run is billed until then.
    package var lastSeenMicros: Int64
    /// Whether the server stopped cleanly (false: it is running, or it crashed after `lastSeenMicros`).
    package var stopped: Bool

    package init(id: String, host: String, startMicros: Int64, lastSeenMicros: Int64? = nil, stopped: Bool = false) {
        self.id = id
        self.host = host
        self.startMicros = startMicros
        self.lastSeenMicros = lastSeenMicros ?? startMicros
        self.stopped = stopped
    }

    /// How often a running server stamps its run.
    package static let heartbeatMicros: Int64 = 60_000_000
}

/// The hours a set of runs kept machines provisioned.
package enum ProvisionedTime {
    /// Intervals `[start, end)` per host, merged where they overlap (two servers on one machine are one
    /// bill), clipped to `window`.
    package static func intervals(_ runs: [ServerRun], within window: Range<Int64>) -> [String: [Range<Int64>]] {
        var byHost: [String: [Range<Int64>]] = [:]
        for run in runs {
            let start = max(run.startMicros, window.lowerBound), end = min(max(run.lastSeenMicros, run.startMicros), window.upperBound)
            if start < end { byHost[run.host, default: []].append(start..<end) }
        }
        return byHost.mapValues { ranges in
            var merged: [Range<Int64>] = []
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if let last = merged.last, range.lowerBound <= last.upperBound {
                    merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
                } else {
                    merged.append(range)
                }
            }
            return merged
        }
    }

    /// Machine-microseconds provisioned in `window`, summed over hosts.
    package static func micros(_ runs: [ServerRun], within window: Range<Int64>) -> Int64 {
        intervals(runs, within: window).values.reduce(0) { $0 + $1.reduce(0) { $0 + ($1.upperBound - $1.lowerBound) } }
    }
}

/// A running server's run: written at `start`, stamped every `interval` until `stop`. Stamps that fail
/// (a store briefly unavailable) are retried at the next beat; the run then ends at its last stamp.
package final class RunHeartbeat: Sendable {
    package let run: ServerRun
    private let store: any UsageStore
    private let beat: Task<Void, Never>

    package static func start(store: any UsageStore, host: String, interval: Duration = .seconds(60)) async throws -> RunHeartbeat {
        let run = ServerRun(id: "run-" + UUID().uuidString.lowercased(), host: host, startMicros: UTC.micros(Date()))
        try await store.startRun(run)
        return RunHeartbeat(run: run, store: store, interval: interval)
    }

    private init(run: ServerRun, store: any UsageStore, interval: Duration) {
        self.run = run
        self.store = store
        beat = Task {
            while (try? await Task.sleep(for: interval)) != nil {
                try? await store.stampRun(id: run.id, atMicros: UTC.micros(Date()), stopped: false)
            }
        }
    }

    /// Stamps the run as stopped now.
    package func stop() async {
        beat.cancel()
        try? await store.stampRun(id: run.id, atMicros: UTC.micros(Date()), stopped: true)
    }
}
