// Embedding requests through the threaded engine on the tiny model: each pooling gives the normalised pool
// of the hidden states one plain forward pass computes, whether the prompt is prefilled in chunks, batched
// with generating requests, or (last pooling) partly served from the prefix cache.

import Engine
import Foundation
import GGUF
import Kernels
import ModelRuntime
import Testing
import TestSupport

@Suite struct EmbeddingEngineTests {
    static let path = packageRoot + "/Tests/ModelRuntimeTests/Fixtures/tiny-q8_0.gguf"
    static let prompt: [TokenID] = (0..<23).map { TokenID(10 + ($0 * 37) % 240) }

    /// The vector computed by hand: one forward pass of the whole prompt on a fresh f16 store (the engine's
    /// KV type), every position's hidden state, pooled in Double and L2-normalised.
    static func reference(_ tokens: [TokenID], pooling: Pooling) throws -> [Float] {
        let model = try LlamaModel(file: GGUFFile(path: path), pool: ComputePool(threads: 1))
        let kv = KVStore(config: model.config, blockCount: tokens.count / 4 + 1, blockSize: 4, type: .f16)
        var batch = ForwardBatch()
        batch.append(sequence: tokens, from: 0, blockTable: (0..<kv.blockCount).map { BlockID($0) }, wantLogits: false)
        batch.hiddenRows = Array(tokens.indices)
        let hidden = try model.forwardStep(batch, kv: kv).hidden
        let e = model.config.embeddingLength
        #expect(hidden.count == tokens.count * e)
        let rows: [Int] = switch pooling {
        case .mean: Array(tokens.indices)
        case .cls: [0]
        case .last: [tokens.count - 1]
        }
        var pooled = [Double](repeating: 0, count: e)
        for r in rows { for j in 0..<e { pooled[j] += Double(hidden[r * e + j]) } }
        pooled = pooled.map { $0 / Double(rows.count) }
        let norm = pooled.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return pooled.map { Float($0 / norm) }
    }

    static func embed(_ engine: BatchingEngine, _ tokens: [TokenID], pooling: Pooling, id: String) async throws -> ([Float], RequestStats) {
        var request = EngineRequest(id: id, promptTokens: tokens, maxTokens: 0)
        request.pooling = pooling
        let stream: AsyncThrowingStream<EngineEvent, Error>
        do { stream = try engine.submit(request) } catch { throw error }
        var vector: [Float]?, stats: RequestStats?
        for try await event in stream {
            switch event {
            case .embedding(let v): vector = v
            case .finished(let reason, let s):
                #expect(reason == .stop)
                stats = s
            case .token, .promptLogprobs: Issue.record("an embedding request generated or scored tokens")
            }
        }
        return (try #require(vector), try #require(stats))
    }

    /// An embedding model's GGUF names its pooling (llama.cpp's enum: 1 mean, 2 cls, 3 last); a chat model's
    /// names none, and 0 (none) or 4 (rank) are not poolings for /v1/embeddings.
    @Test func thePoolingComesFromTheModelsMetadata() throws {
        var metadata = GGUFMetadata()
        #expect(Pooling(metadata: metadata, architecture: "qwen3") == nil)
        for (value, want) in [(1, Pooling.mean), (2, .cls), (3, .last)] {
            metadata.set("qwen3.pooling_type", .uint32(UInt32(value)))
            #expect(Pooling(metadata: metadata, architecture: "qwen3") == want)
            #expect(Pooling(metadata: metadata, architecture: "llama") == nil)
        }
        for value: UInt32 in [0, 4, 9] {
            metadata.set("qwen3.pooling_type", .uint32(value))
            #expect(Pooling(metadata: metadata, architecture: "qwen3") == nil)
        }
        let tiny = try GGUFFile(path: Self.path)
        #expect(Pooling(metadata: tiny.metadata, architecture: "llama") == nil)
    }

    @Test(arguments: Pooling.allCases)
    func eachPoolingEqualsThePoolOfOneForwardPass(pooling: Pooling) async throws {
        // Steps of at most 8 tokens: the 23-token prompt is prefilled in 3 chunks.
        let engine = try tinyEngine(maxBatchTokens: 8)
        defer { engine.shutdown(deadline: .seconds(1)) }
        let (vector, stats) = try await Self.embed(engine, Self.prompt, pooling: pooling, id: "e")
        let want = try Self.reference(Self.prompt, pooling: pooling)
        #expect(vector.count == want.count)
        #expect(zip(vector, want).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(pooling): max |Δ| \(zip(vector, want).map { abs($0 - $1) }.max()!)")
        #expect(abs(vector.reduce(0) { $0 + Double($1) * Double($1) } - 1) < 1e-5)
        #expect(stats.promptTokens == Self.prompt.count && stats.generatedTokens == 0)
        #expect(engine.snapshot().kvBlocksUsed == 0, "the request's blocks went back to the pool")
    }

    /// The same vector, to the bit, alone and among two generating requests and another embedding; last
    /// pooling takes the prefix cache (and still gives the same bits), mean pooling never does.
    @Test func aVectorDoesNotDependOnItsCompanyOrTheCache() async throws {
        let engine = try tinyEngine(maxBatchTokens: 16)
        defer { engine.shutdown(deadline: .seconds(1)) }
        let alone = try await Self.embed(engine, Self.prompt, pooling: .mean, id: "alone").0
        let other: [TokenID] = (0..<30).map { TokenID(20 + ($0 * 11) % 200) }
        async let g1 = run(engine, EngineRequest(id: "g1", promptTokens: other, maxTokens: 12, ignoreEOS: true))
        async let g2 = run(engine, EngineRequest(id: "g2", promptTokens: Array(other.reversed()), maxTokens: 9, ignoreEOS: true))
        async let e1 = Self.embed(engine, Self.prompt, pooling: .mean, id: "together")
        async let e2 = Self.embed(engine, other, pooling: .last, id: "other")
        let (together, togetherStats) = try await e1
        _ = try await (g1, g2, e2)
        #expect(together.map(\.bitPattern) == alone.map(\.bitPattern))
        #expect(togetherStats.cachedTokens == 0, "mean pooling needs every position's state: no cache")

        let first = try await Self.embed(engine, other, pooling: .last, id: "last-1")
        let cached = try await Self.embed(engine, other, pooling: .last, id: "last-2")
        #expect(cached.1.cachedTokens > 0)
        #expect(cached.0.map(\.bitPattern) == first.0.map(\.bitPattern))
    }
}
