// Durations as the plain numbers that cross module boundaries: whole microseconds for stats and records
// (`ttftMicros`, `queueMicros`), seconds as a Double for /metrics histograms.

extension Duration {
    /// Whole microseconds, truncated toward zero.
    package var inMicros: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
    package var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
