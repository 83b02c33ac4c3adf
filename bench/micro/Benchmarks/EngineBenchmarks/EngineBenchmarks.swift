// Kernels and one engine step. Time is reported, never gated; the thresholds are on allocation counts,
// which do not depend on the machine or its load.

import Benchmark
import CKernels
import Engine
import Foundation
import GGUF
import ModelRuntime
import Sampling

/// A model that computes nothing: zero logits, so one step measures the scheduler, batch building,
/// sampling and bookkeeping alone, deterministically, without a model file.
final class NullRunner: ModelRunner {
    let vocabSize = 49152
    let contextLength = 8192
    func forward(_ batch: ForwardBatch) throws -> [Float] { [Float](repeating: 0, count: batch.logitRows.count * vocabSize) }
    func copyKV(from source: BlockID, to destination: BlockID, slots: Int) {}
}

/// `count` requests decoding (prompts already prefilled), greedy, never stopping before `maxTokens`.
func decodingCore(runner: ModelRunner, requests count: Int, promptLength: Int = 64, kvBlocks: Int = 2048) throws -> EngineCore {
    var config = EngineConfig()
    config.kvBlocks = kvBlocks
    config.maxSeqs = max(16, count)
    let core = EngineCore(config: config, runner: runner)
    for i in 0..<count {
        let prompt = (0..<promptLength).map { TokenID(100 + ($0 * 7 + i * 13) % 1000) }
        try core.add(EngineRequest(id: "r\(i)", promptTokens: prompt, sampling: .greedy, maxTokens: 4096, ignoreEOS: true),
                     continuation: nil)
    }
    // Prefill outside the measurement: after this every step is one decode token per request.
    while core.snapshot().running < count || core.snapshot().waiting > 0 { try core.step() }
    try core.step()
    return core
}

/// Random Q8_0 rows: k/32 blocks of { f16 scale, 32 x int8 } per row.
func randomQ8Rows(rows: Int, k: Int) -> [UInt8] {
    var generator = SplitMix64(seed: 42)
    var bytes = [UInt8](repeating: 0, count: rows * k / 32 * 34)
    for block in 0..<(rows * k / 32) {
        let scale = tally_f32_to_f16(Float.random(in: 0.001...0.01, using: &generator))
        bytes[block * 34] = UInt8(scale & 0xFF)
        bytes[block * 34 + 1] = UInt8(scale >> 8)
        for i in 0..<32 { bytes[block * 34 + 2 + i] = UInt8.random(in: 0...255, using: &generator) }
    }
    return bytes
}

// Names use only letters, digits and dashes: `thresholds update` writes file names made shell-safe, while
// `thresholds check` looks them up by the raw name, so a space or comma in a name never matches.
let benchmarks: @Sendable () -> Void = {
    // Allocation counts are nearly exact for a given build (an engine step allocates a little more when a
    // request crosses into a new KV block); allow at most 5 % and 5 allocations more at p90.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 3,
        maxDuration: .seconds(3),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 5])])

    // The ffn_up shape of SmolLM2-135M: 1536 rows of 576, one activation column (a decode token) and 16.
    for cols in [1, 16] {
        Benchmark("Q8_0-GEMM-1536x576-cols\(cols)") { benchmark in
            let rows = 1536, k = 576
            let weights = randomQ8Rows(rows: rows, k: k)
            var generator = SplitMix64(seed: 7)
            let x = (0..<(cols * k)).map { _ in Float.random(in: -1...1, using: &generator) }
            var xd = [Float](repeating: 0, count: cols * k / 32)
            var xq = [Int8](repeating: 0, count: cols * k)
            var y = [Float](repeating: 0, count: cols * rows)
            tally_quantize_rows_q8(x, Int32(cols), Int32(k), &xd, &xq)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                weights.withUnsafeBytes { w in
                    tally_gemm_q8(w.baseAddress, Int32(k), 0, Int32(rows), xd, xq, Int32(cols), &y, Int32(rows))
                }
                blackHole(y[0])
            }
        }
    }

    Benchmark("EngineStep-8-decoding-null-model") { benchmark in
        let core = try decodingCore(runner: NullRunner(), requests: 8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try core.step()) }
    }

    // The real forward pass of the default model (tally pull), if it is there.
    let modelPath = ProcessInfo.processInfo.environment["TALLY_MODEL"] ?? "../../models/SmolLM2-135M-Instruct-Q8_0.gguf"
    if FileManager.default.fileExists(atPath: modelPath) {
        Benchmark("EngineStep-4-decoding-SmolLM2-135M", configuration: .init(maxDuration: .seconds(5), maxIterations: 200)) { benchmark in
            let model = try LlamaModel(path: modelPath, threads: ProcessInfo.processInfo.activeProcessorCount)
            var config = EngineConfig()
            config.kvBlocks = 512
            let core = try decodingCore(runner: LlamaRunner(model: model, config: config), requests: 4, kvBlocks: 512)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try core.step()) }
        }
    }
}
