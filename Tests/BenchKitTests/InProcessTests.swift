// One small run against the real engine and the default model (skipped when `tally pull` has not run).

@testable import BenchKit
import Foundation
import Testing

@Suite struct InProcessTests {
    static let modelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../models/SmolLM2-135M-Instruct-Q8_0.gguf").standardized.path

    @Test(.enabled(if: FileManager.default.fileExists(atPath: modelPath)))
    func sharedPrefixRunHitsThePrefixCache() async throws {
        let loaded = try LoadedModel(path: Self.modelPath, threads: 2, kvMemoryMiB: 64)
        defer { loaded.engine.shutdown(deadline: .seconds(5)) }
        // reference/smollm2-135m.md: 134,515,008 parameters, of which the 61 norm vectors of 576 are no matmul.
        #expect(loaded.shape.parameterCount == 134_515_008 - 61 * 576)
        #expect(loaded.shape.weightBytes == 144_811_072)
        let workload = Workload(name: "t", syntheticTokens: [48], sharedPrefixShare: 0.75, concurrency: [2], maxTokens: 4,
                                ignoreEOS: true, requests: 4, timeLimitSeconds: 60)
        let target = InProcessTarget(engine: loaded.engine, stopTokenIDs: loaded.tokenizer.endOfGenerationIDs, label: "engine")
        let report = try await BenchSession.run(workload, target: target, tokenizer: loaded.tokenizer,
                                                options: BenchOptions(cost: .shipped(shape: loaded.shape, shapeSource: "test")))
        let run = try #require(report.runs.first)
        #expect(run.completed == 4 && run.failed == 0)
        #expect(run.promptTokens == 4 * 48)
        #expect(run.outputTokens == 4 * 4)
        // 36 shared tokens = 2 full blocks of 16 that later requests find cached.
        #expect(run.cachedTokens >= 2 * 32)
        #expect((run.cost?.gpuNanoUSD ?? 0) > 0)
    }
}
