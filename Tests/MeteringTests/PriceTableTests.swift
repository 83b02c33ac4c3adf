// Price and hardware files: the shipped snapshots equal the shared reference, LiteLLM's format loads,
// and bad files fail with a message that says what to pass instead.

import Foundation
@testable import Metering
import Testing

@Suite struct PriceTableTests {
    @Test func shippedTableIsTheDatedReference() {
        let table = PriceTable.shipped
        #expect(table.asOf == "2026-11-22")
        #expect(table.name == "api-prices-2026-11.json (shipped)")
        #expect(table.source.contains("LiteLLM"))
        #expect(table.models.count == 8)
        let nano = table.models.first { $0.model == "gpt-5-nano" }
        var want = APIPrice(provider: "openai", model: "gpt-5-nano", input: 50_000_000, cachedInput: 5_000_000,
                            output: 400_000_000, inputBatch: 25_000_000, outputBatch: 200_000_000)
        want.embedding = EmbeddingPrice(provider: "openai", model: "text-embedding-3-small", input: 20_000_000, inputBatch: 10_000_000,
                                        pairs: ["openai"])
        #expect(nano == want)
        // Every shipped API is paired with its provider's embedding model.
        #expect(table.models.map { $0.embedding?.label } == ["openai/text-embedding-3-small", "openai/text-embedding-3-small",
            "openai/text-embedding-3-small", "openai/text-embedding-3-small", "openai/text-embedding-3-small",
            "google/gemini-embedding-001", "google/gemini-embedding-001", "voyage/voyage-3.5"])
        let haiku = table.models.first { $0.model == "claude-haiku-4-5" }
        #expect(haiku?.cacheWrite == 1_250_000_000)
        #expect(haiku?.label == "anthropic/claude-haiku-4-5")
    }

    @Test func shippedTableIsByteForByteTheSharedFile() throws {
        // The embedded copy must not drift from the reference it was taken from (when shared/ is present).
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/reference/api-prices-2026-11.json").standardized
        guard let text = try? String(contentsOf: shared, encoding: .utf8) else { return }
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines)
            == PriceTable.shipped2026_11JSON.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func liteLLMFormatLoadsPerTokenPrices() throws {
        let path = Fixtures.fixtures.appendingPathComponent("litellm-prices.json").path
        let table = try PriceTable.load(path: path)
        // Default comparison: the shipped table's models that the file has; embeddings and sample_spec skipped.
        #expect(table.models.map(\.model) == ["claude-haiku-4-5", "gpt-5-nano"])
        #expect(table.name == "litellm-prices.json")
        #expect(table.asOf.count == 10)  // the file's modification day
        // 5e-08 USD/token x 1e15 = 50,000,000 nUSD per 1M tokens: the same as the shipped table.
        let nano = table.models.first { $0.model == "gpt-5-nano" }
        #expect(nano == PriceTable.shipped.models.first { $0.model == "gpt-5-nano" })
        let haiku = table.models.first { $0.model == "claude-haiku-4-5" }
        #expect(haiku?.cacheWrite == 1_250_000_000 && haiku?.cachedInput == 100_000_000 && haiku?.inputBatch == nil)
    }

    @Test func liteLLMComparisonCanNameNewModels() throws {
        let path = Fixtures.fixtures.appendingPathComponent("litellm-prices.json").path
        let table = try PriceTable.load(path: path, compare: ["my-new-model"])
        #expect(table.models == [APIPrice(provider: "someone", model: "my-new-model", input: 300_000_000, output: 1_200_000_000)])
        #expect(throws: MeteringError.self) { try PriceTable.load(path: path, compare: ["gpt-9"]) }
    }

    @Test func tallyFormatFileLoadsWithItsDate() throws {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("prices-2027-01.json").path
        try #"{"as_of": "2027-01-05", "models": [{"provider": "x", "model": "m", "input": 0.1, "output": 0.2}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let table = try PriceTable.load(path: path)
        #expect(table.name == "prices-2027-01.json" && table.asOf == "2027-01-05")
        #expect(table.models == [APIPrice(provider: "x", model: "m", input: 100_000_000, output: 200_000_000)])
    }

    @Test func badFilesSayWhatToPass() throws {
        let dir = try Fixtures.temporaryDirectory()
        let notJSON = dir.appendingPathComponent("bad.json").path
        try "nope".write(toFile: notJSON, atomically: true, encoding: .utf8)
        let error = #expect(throws: MeteringError.self) { try PriceTable.load(path: notJSON) }
        #expect(error?.description.contains("--prices") == true)
        #expect(throws: MeteringError.badPriceFile(path: "missing.json", reason: "cannot read the file")) {
            try PriceTable.load(path: "missing.json")
        }
        let empty = dir.appendingPathComponent("empty.json").path
        try #"{"sample_spec": {}}"#.write(toFile: empty, atomically: true, encoding: .utf8)
        #expect(throws: MeteringError.self) { try PriceTable.load(path: empty) }
    }

    @Test func shippedHardwareProfiles() throws {
        let hw = HardwareProfiles.shipped
        #expect(hw.asOf == "2026-11-22")
        #expect(hw.defaultMachine.name == "aws-c7i.large" && hw.defaultMachine.hourlyNanoUSD == 89_250_000)
        #expect(hw.defaultGPU.hourlyNanoUSD == 6_880_000_000)
        #expect(hw.defaultGPU.peakFLOPS == 989e12 && hw.defaultGPU.memoryBandwidth == 3.35e12)
        #expect(hw.defaultGPU.assumptions.mfu == 0.078)
        #expect(try hw.gpu(named: "h100-sxm-market").hourlyNanoUSD == 2_950_000_000)
        #expect(try hw.machine(named: "hetzner-cx23").hourlyNanoUSD == 6_500_000)
        #expect(throws: MeteringError.unknownProfile(kind: "GPU profile", name: "b200", known: hw.gpus.map(\.name))) {
            try hw.gpu(named: "b200")
        }
    }
}
