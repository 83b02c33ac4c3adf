// Idle memory: after `idleRelease` without work the engine hands back the KV memory of free blocks that hold
// no cached prefix, and trims the prefix cache to `idlePrefixCacheBlocks` first.

import Foundation
import ModelRuntime
import Testing
@testable import Engine

/// A runner whose KV releases are counted under a lock (the engine's thread calls it).
final class ReleaseCountingRunner: ModelRunner, @unchecked Sendable {
    let vocabSize = 64
    let contextLength = 256
    private let lock = NSLock()
    private var releases: [[BlockID]] = []
    var released: [[BlockID]] { lock.withLock { releases } }

    func forward(_ batch: ForwardBatch) throws -> [Float] {
        var logits = [Float](repeating: 0, count: batch.logitRows.count * vocabSize)
        for (i, row) in batch.logitRows.enumerated() { logits[i * vocabSize + Int(batch.tokens[row] + 1) % vocabSize] = 10 }
        return logits
    }
    func copyKV(from source: BlockID, to destination: BlockID, slots: Int) {}
    func releaseKV(of blocks: [BlockID]) -> Int { lock.withLock { releases.append(blocks) }; return blocks.count }
}

@Suite struct IdleReleaseTests {
    func makeIdleCore(cacheLimit: Int?) -> (EngineCore, FakeRunner) {
        var config = EngineConfig()
        config.kvBlocks = 16
        config.blockSize = 4
        config.idlePrefixCacheBlocks = cacheLimit
        let runner = FakeRunner()
        return (EngineCore(config: config, runner: runner, clock: ManualClock()), runner)
    }

    @Test func freeBlocksWithoutACachedPrefixAreReleasedAndCachedOnesKept() async throws {
        let (core, runner) = makeIdleCore(cacheLimit: nil)
        let a = Collector()
        try core.add(greedyRequest("a", ids(0..<10), maxTokens: 1), continuation: a.continuation)
        try runToCompletion(core)
        try await a.drain()
        let cached = Set((0..<16).map { BlockID($0) }.filter { core.pool.hash(of: $0) != nil })
        #expect(cached.count == 2)  // [0..3] and [4..7]; the partial third block holds nothing reusable
        let (forgotten, _) = core.releaseIdleMemory()
        #expect(forgotten == 0)
        #expect(runner.released.count == 1 && Set(runner.released[0]) == Set((0..<16).map { BlockID($0) }).subtracting(cached))
        // The cached prefix still serves a later request.
        let b = Collector()
        try core.add(greedyRequest("b", ids(0..<10), maxTokens: 1), continuation: b.continuation)
        try runToCompletion(core)
        try await b.drain()
        #expect(b.finish?.1.cachedTokens == 8)
    }

    @Test func theIdleCacheLimitForgetsTheLeastRecentlyUsedFirst() async throws {
        let (core, runner) = makeIdleCore(cacheLimit: 1)
        let a = Collector()
        try core.add(greedyRequest("a", ids(0..<10), maxTokens: 1), continuation: a.continuation)
        try runToCompletion(core)
        try await a.drain()
        let (forgotten, _) = core.releaseIdleMemory()
        #expect(forgotten == 1)
        #expect(core.pool.freeCachedCount == 1 && runner.released[0].count == 15)
        // Freed last block first, so the sequence's first block is the most recently freed: it is the one kept.
        let b = Collector()
        try core.add(greedyRequest("b", ids(0..<10), maxTokens: 1), continuation: b.continuation)
        try runToCompletion(core)
        try await b.drain()
        #expect(b.finish?.1.cachedTokens == 4)
    }

    @Test func theBatchingEngineReleasesOnceAfterTheIdleTime() async throws {
        var config = EngineConfig()
        config.kvBlocks = 16
        config.blockSize = 4
        config.idleRelease = .milliseconds(150)
        let runner = ReleaseCountingRunner()
        let engine = BatchingEngine(runner: runner, config: config)
        defer { engine.shutdown(deadline: .seconds(1)) }
        for try await _ in try engine.submit(greedyRequest("a", ids(0..<10), maxTokens: 2)) {}
        // After the request: every block but the two that cache its prompt's full blocks. (A release at start-up,
        // before the request came, would list all 16.)
        let expected = Set((0..<16).map { BlockID($0) }).subtracting([0, 1])
        var waited = 0
        while !runner.released.contains(where: { Set($0) == expected }) && waited < 250 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        #expect(runner.released.contains { Set($0) == expected })
        let count = runner.released.count
        try await Task.sleep(for: .milliseconds(400))
        #expect(runner.released.count == count && count <= 2)  // once per idle period
    }
}
