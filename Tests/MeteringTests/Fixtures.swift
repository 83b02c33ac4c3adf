// Shared fixtures of the Metering tests: fixed records on fixed dates, small profiles with round numbers,
// and the path of the committed goldens.

import Foundation
@testable import Metering

enum Fixtures {
    /// 2026-11-20T00:00:00Z in Unix µs.
    static let nov20: Int64 = 1_795_132_800_000_000
    static let hour: Int64 = 3_600_000_000
    static let second: Int64 = 1_000_000

    /// SmolLM2-135M-like shape (Q8_0): 30 layers, 9 heads x 64, 3 KV heads x 64.
    static let smol = ModelShape(parameterCount: 134_515_008, weightBytes: 144_811_008, layerCount: 30,
                                 attentionWidth: 576, kvWidth: 192)

    /// Qwen3-0.6B as in the cost anchors' vLLM run: 0.6e9 parameters, bf16 weights, 28 layers,
    /// 16 heads x 128, 8 KV heads x 128.
    static let qwen3 = ModelShape(parameterCount: 600_000_000, weightBytes: 1_200_000_000, layerCount: 28,
                                  attentionWidth: 2048, kvWidth: 1024)

    static let tenantA = Tenant.fingerprint(apiKey: "sk-tenant-a")
    static let tenantB = Tenant.fingerprint(apiKey: "sk-tenant-b")

    /// Six requests over two UTC days: two tenants and a keyless one, a shared prefix (cache hits), tags,
    /// two models (one without a shape), an aborted request.
    static let records: [UsageRecord] = [
        UsageRecord(id: "req-1", timeMicros: nov20 + 9 * hour, model: "smollm2-135m", modelShape: smol,
                    tenant: tenantA, user: "alice", tags: ["chat", "team-a"], session: "case-1", replica: "replica-a", promptTokens: 1_000, cachedTokens: 0,
                    cacheWriteTokens: 960, generatedTokens: 200, queueMicros: 1_000, prefillMicros: 400_000,
                    decodeMicros: 2_000_000, busyShareMicros: 2_000_000),
        UsageRecord(id: "req-2", timeMicros: nov20 + 9 * hour + 30 * second, model: "smollm2-135m", modelShape: smol,
                    tenant: tenantA, user: "alice", tags: ["chat"], session: "case-1", promptTokens: 1_100, cachedTokens: 960,
                    cacheWriteTokens: 128, generatedTokens: 100, queueMicros: 2_000, prefillMicros: 60_000,
                    decodeMicros: 1_000_000, busyShareMicros: 800_000),
        UsageRecord(id: "req-3", timeMicros: nov20 + 15 * hour, model: "smollm2-135m", modelShape: smol,
                    tenant: tenantB, tags: ["batch-job"], session: "case-2", replica: "replica-b", promptTokens: 500, cachedTokens: 0, generatedTokens: 500,
                    queueMicros: 50_000, prefillMicros: 200_000, decodeMicros: 5_000_000, busyShareMicros: 3_500_000,
                    finishReason: .length),
        UsageRecord(id: "req-4", timeMicros: nov20 + 24 * hour + 2 * hour, model: "smollm2-135m", modelShape: smol,
                    tenant: nil, promptTokens: 64, generatedTokens: 10, prefillMicros: 20_000, decodeMicros: 100_000,
                    busyShareMicros: 120_000),
        UsageRecord(id: "req-5", timeMicros: nov20 + 24 * hour + 3 * hour, model: "other-model",
                    tenant: tenantB, tags: ["batch-job", "team-a"], promptTokens: 2_000, cachedTokens: 1_024,
                    generatedTokens: 0, prefillMicros: 300_000, busyShareMicros: 300_000, finishReason: .aborted),
        UsageRecord(id: "req-6", timeMicros: nov20 + 24 * hour + 4 * hour, model: "smollm2-135m", modelShape: smol,
                    tenant: tenantA, user: "bob", tags: ["chat"], promptTokens: 1_100, cachedTokens: 1_088,
                    generatedTokens: 50, queueMicros: 500, prefillMicros: 5_000, decodeMicros: 500_000,
                    busyShareMicros: 400_000),
    ]

    /// A machine at 3.6 $/h = 1,000,000 nUSD per second: local cost in nUSD = busy µs.
    static let roundMachine = MachineProfile(name: "round", description: "3.6 $/h test machine", hourlyNanoUSD: 3_600_000_000, vcpus: 2)

    static let goldens = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens")
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// This test process's folder for temporary files, removed when the process exits.
    private static let runRoot: URL = {
        atexit { try? FileManager.default.removeItem(at: Fixtures.runRootPath) }
        return runRootPath
    }()
    private static var runRootPath: URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tally-metering-tests-\(getpid())")
    }

    static func temporaryDirectory() throws -> URL {
        let url = runRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
