// The scheduler with a fake model (no weights): exact block ids, reference counts, eviction order,
// prefix-cache hits, chunked prefill, preemption and abort.

import Engine
import Foundation
import GGUF
import ModelRuntime
import Sampling
import Testing

/// A model whose next token is always (this token + 1) mod vocab; it records every batch it ran.
final class FakeRunner: ModelRunner {
    let vocabSize = 64
    let contextLength: Int
    var batches: [ForwardBatch] = []
    var copies: [(from: BlockID, to: BlockID, slots: Int)] = []
    var released: [[BlockID]] = []

    init(contextLength: Int = 256) { self.contextLength = contextLength }

    func copyKV(from source: BlockID, to destination: BlockID, slots: Int) { copies.append((source, destination, slots)) }
    func releaseKV(of blocks: [BlockID]) -> Int { released.append(blocks); return blocks.count }

    func forward(_ batch: ForwardBatch) throws -> [Float] {
        batches.append(batch)
        var logits = [Float](repeating: 0, count: batch.logitRows.count * vocabSize)
        for (i, row) in batch.logitRows.enumerated() { logits[i * vocabSize + Int(batch.tokens[row] + 1) % vocabSize] = 10 }
        return logits
    }
}

struct ManualClock: EngineClock { func nowMicros() -> Int64 { 0 } }

/// Collects a request's events synchronously (EngineCore yields on the calling thread).
final class Collector: @unchecked Sendable {
    var tokens: [TokenID] = []
    var logprobs: [TokenLogprob?] = []
    var promptLogprobs: [[TokenLogprob]] = []
    /// Event kinds in order: "prompt", "token", "finished".
    var order: [String] = []
    var finish: (FinishReason, RequestStats)?
    let continuation: AsyncThrowingStream<EngineEvent, Error>.Continuation
    let stream: AsyncThrowingStream<EngineEvent, Error>

    init() { (stream, continuation) = AsyncThrowingStream.makeStream(of: EngineEvent.self, bufferingPolicy: .unbounded) }

    func drain() async throws {
        for try await event in stream {
            switch event {
            case .promptLogprobs(let p): promptLogprobs.append(p); order.append("prompt")
            case .embedding: order.append("embedding")
            case .token(let t, let l): tokens.append(t); logprobs.append(l); order.append("token")
            case .finished(let r, let s): finish = (r, s); order.append("finished")
            }
        }
    }
}

func makeCore(blocks: Int = 16, blockSize: Int = 4, maxBatchTokens: Int = 64, maxSeqs: Int = 8, runner: FakeRunner = FakeRunner()) -> EngineCore {
    var config = EngineConfig()
    config.kvBlocks = blocks
    config.blockSize = blockSize
    config.maxBatchTokens = maxBatchTokens
    config.maxSeqs = maxSeqs
    return EngineCore(config: config, runner: runner, clock: ManualClock())
}

func greedyRequest(_ id: String, _ prompt: [TokenID], maxTokens: Int) -> EngineRequest {
    var p = SamplingParams()
    p.temperature = 0
    return EngineRequest(id: id, promptTokens: prompt, sampling: p, maxTokens: maxTokens)
}

/// Token ids lo..<hi, then `extra` (spelled out so the type checker has nothing to infer).
func ids(_ range: Range<Int32>, then extra: [TokenID] = []) -> [TokenID] { Array(range) + extra }

func runToCompletion(_ core: EngineCore, limit: Int = 1000) throws {
    var steps = 0
    while core.hasWork && steps < limit { try core.step(); steps += 1 }
    #expect(!core.hasWork, "engine did not finish within \(limit) steps")
}

@Suite struct EngineCoreTests {
    @Test func blocksAreAllocatedAndFreedExactly() async throws {
        let core = makeCore()
        let a = Collector()
        let prompt: [TokenID] = Array(0..<10)
        try core.add(greedyRequest("a", prompt, maxTokens: 3), continuation: a.continuation)
        try core.step()  // prefill: 10 tokens -> blocks 0, 1, 2; samples token 10
        #expect(core.blockTable(of: "a") == [0, 1, 2])
        for b: BlockID in 0..<3 { #expect(core.pool.refCount(b) == 1) }
        try core.step()  // token 10 at position 10 (block 2), samples 11
        try core.step()  // token 11 at position 11, samples 12: maxTokens reached
        #expect(!core.hasWork)
        try await a.drain()
        #expect(a.tokens == [10, 11, 12])
        #expect(a.finish?.0 == .length)
        // Freed last block first: the shared prefix (block 0) is evicted last.
        let tail: [BlockID] = Array(core.pool.freeList.suffix(3))
        #expect(tail == [2, 1, 0])
        #expect(core.pool.usedCount == 0)
    }

    @Test func aSharedPrefixIsReusedWithItsBlocks() async throws {
        let core = makeCore()
        let a = Collector(), b = Collector()
        try core.add(greedyRequest("a", ids(0..<10), maxTokens: 1), continuation: a.continuation)
        try runToCompletion(core)
        // Blocks 0 and 1 hold full blocks [0..3], [4..7] and are cached; block 2 was partial.
        try core.add(greedyRequest("b", ids(0..<9, then: [40, 41, 42]), maxTokens: 1), continuation: b.continuation)
        try core.step()
        try await a.drain()
        try await b.drain()
        #expect(b.finish?.1.cachedTokens == 8)
        #expect(b.finish?.1.promptTokens == 12)
        // Cache writes: a put its two full prompt blocks in the cache; b only its new third block.
        #expect(a.finish?.1.cacheWriteTokens == 8)
        #expect(b.finish?.1.cacheWriteTokens == 4)
        let runner = core.runner as! FakeRunner
        // Only the 4 uncached prompt tokens were computed, from position 8.
        #expect(runner.batches.last?.tokens == [8, 40, 41, 42])
        #expect(runner.batches.last?.positions == [8, 9, 10, 11])
        let table: [BlockID] = runner.batches.last?.blockTables.first ?? []
        #expect(Array(table.prefix(2)) == [0, 1])
        let s = core.snapshot()
        #expect(s.prefixCacheQueriedTokens == 22)
        #expect(s.prefixCacheHitTokens == 8)
    }

    /// Salted requests share cached blocks, full or partial, only with requests of the same salt.
    @Test func aSaltedPrefixIsSharedOnlyWithinItsSalt() async throws {
        let core = makeCore()
        func run(_ id: String, salt: String?, _ prompt: [TokenID] = ids(0..<10)) async throws -> Int {
            let c = Collector()
            var request = greedyRequest(id, prompt, maxTokens: 1)
            request.cacheSalt = salt
            try core.add(request, continuation: c.continuation)
            try runToCompletion(core)
            try await c.drain()
            return try #require(c.finish?.1.cachedTokens)
        }
        #expect(try await run("a", salt: "tenant=a") == 0)
        #expect(try await run("b", salt: "tenant=b") == 0, "another salt sees nothing of a's blocks")
        #expect(try await run("unsalted", salt: nil) == 0, "nor does an unsalted request")
        #expect(try await run("a2", salt: "tenant=a") == 8, "the same salt shares the full blocks")
        // A partial (mid-block) match is scoped too: b2 shares 6 tokens with a's prompt, b's salt has them.
        #expect(try await run("b2", salt: "tenant=b", ids(0..<6, then: [50, 51, 52])) == 6)
        #expect(try await run("c", salt: "tenant=c", ids(0..<6, then: [50, 51, 52])) == 0)
        #expect(core.pool.usedCount == 0)
    }

    @Test func aFullyCachedPromptStillComputesItsLastToken() async throws {
        let core = makeCore()
        let a = Collector(), b = Collector()
        try core.add(greedyRequest("a", ids(0..<8), maxTokens: 1), continuation: a.continuation)
        try runToCompletion(core)
        try core.add(greedyRequest("b", ids(0..<8), maxTokens: 1), continuation: b.continuation)
        try runToCompletion(core)
        try await b.drain()
        // Two full blocks match, but the last token's logits are needed: block 0 is shared, the first
        // 3 positions of block 1 are copied into a new block, and only the last token is computed.
        #expect(b.finish?.1.cachedTokens == 7)
        #expect(b.tokens == [8])
        let runner = core.runner as! FakeRunner
        #expect(runner.copies.count == 1)
        #expect(runner.copies.first?.from == 1)
        #expect(runner.copies.first?.slots == 3)
        #expect(runner.batches.last?.tokens == [7])
        #expect(runner.batches.last?.positions == [7])
        #expect(runner.batches.last?.blockTables.first == [0, runner.copies.first!.to])
        // The completed block was in the cache already: nothing new written.
        #expect(b.finish?.1.cacheWriteTokens == 0)
    }

    @Test func aPromptThatDiffersMidBlockCopiesTheSharedPart() async throws {
        let core = makeCore()
        let a = Collector(), b = Collector(), c = Collector()
        try core.add(greedyRequest("a", ids(0..<12), maxTokens: 1), continuation: a.continuation)
        try runToCompletion(core)  // a cached [0..3], [4..7], [8..11] in blocks 0, 1, 2
        // b shares 10 tokens: blocks 0 and 1, then 2 positions of block 2.
        try core.add(greedyRequest("b", ids(0..<10, then: [40, 41, 42]), maxTokens: 1), continuation: b.continuation)
        try runToCompletion(core)
        try await b.drain()
        let runner = core.runner as! FakeRunner
        #expect(b.finish?.1.cachedTokens == 10)
        #expect(runner.copies.count == 1)
        let copy = try #require(runner.copies.first)
        #expect(copy.from == 2)
        #expect(copy.slots == 2)
        #expect(copy.to != 2, "a's block 2 stays cached; b writes its own")
        #expect(runner.batches.last?.tokens == [40, 41, 42])
        #expect(runner.batches.last?.positions == [10, 11, 12])
        #expect(runner.batches.last?.blockTables.first?.prefix(3) == [0, 1, copy.to])
        #expect(b.tokens == [43])
        // a's block 2 is still found by the full prompt; c, sharing nothing, copies nothing.
        try core.add(greedyRequest("c", [60, 61, 62], maxTokens: 1), continuation: c.continuation)
        try runToCompletion(core)
        try await c.drain()
        #expect(c.finish?.1.cachedTokens == 0)
        #expect(runner.copies.count == 1)
        #expect(core.pool.usedCount == 0)
    }

    @Test func evictionTakesTheLeastRecentlyFreedCachedBlock() async throws {
        let core = makeCore(blocks: 4, blockSize: 4)
        let cs = (0..<3).map { _ in Collector() }
        try core.add(greedyRequest("a", ids(0..<4, then: [50]), maxTokens: 1), continuation: cs[0].continuation)
        try runToCompletion(core)  // a used blocks 0 (cached [0..3]) and 1; freed 1 then 0
        #expect(core.pool.freeList == [2, 3, 1, 0])
        try core.add(greedyRequest("b", ids(20..<32, then: [51]), maxTokens: 1), continuation: cs[1].continuation)
        try core.step()  // b needs 4 blocks: takes 2, 3, 1 and finally 0, evicting a's cached prefix
        #expect(core.blockTable(of: "b") == nil)  // finished in one step
        try core.add(greedyRequest("c", ids(0..<4, then: [52]), maxTokens: 1), continuation: cs[2].continuation)
        try core.step()
        try await cs[2].drain()
        #expect(cs[2].finish?.1.cachedTokens == 0, "a's prefix block was evicted by b")
    }

    @Test func chunkedPrefillRespectsTheTokenBudget() async throws {
        let runner = FakeRunner()
        let core = makeCore(maxBatchTokens: 4, runner: runner)
        let a = Collector(), b = Collector()
        try core.add(greedyRequest("a", ids(0..<10), maxTokens: 2), continuation: a.continuation)
        try core.add(greedyRequest("b", [30, 31], maxTokens: 2), continuation: b.continuation)
        try runToCompletion(core)
        for batch in runner.batches { #expect(batch.tokenCount <= 4) }
        // a's prompt goes in chunks of 4, 4 then 2 (with b's prompt joining the third step).
        #expect(runner.batches[0].tokens == [0, 1, 2, 3])
        #expect(runner.batches[1].tokens == [4, 5, 6, 7])
        #expect(runner.batches[2].tokens == [8, 9, 30, 31])
        try await a.drain()
        try await b.drain()
        #expect(a.tokens == [10, 11])
        #expect(b.tokens == [32, 33])
    }

    @Test func preemptionRecomputesAndGivesTheSameTokens() async throws {
        // 6 blocks of 4: two requests of 10 prompt tokens growing to 19 cannot both fit.
        let core = makeCore(blocks: 6, blockSize: 4)
        let a = Collector(), b = Collector()
        try core.add(greedyRequest("a", ids(0..<10), maxTokens: 9), continuation: a.continuation)
        try core.add(greedyRequest("b", ids(20..<30), maxTokens: 9), continuation: b.continuation)
        try runToCompletion(core)
        try await a.drain()
        try await b.drain()
        let expectedA: [TokenID] = Array(10..<19), expectedB: [TokenID] = Array(30..<39)
        #expect(a.tokens == expectedA)
        #expect(b.tokens == expectedB)
        #expect(core.snapshot().preemptions >= 1)
        let preemptions: Int = b.finish?.1.preemptions ?? 0
        #expect(preemptions >= 1, "the newer request is the one preempted")
        #expect(core.pool.usedCount == 0)
    }

    /// A batch line waits behind every interactive request, even one that came later, and is the one
    /// preempted when blocks run short, though it is older.
    @Test func batchLinesGiveWayToInteractiveRequests() async throws {
        let core = makeCore(maxSeqs: 1)
        var line = greedyRequest("line", ids(0..<4), maxTokens: 2)
        line.priority = .batch
        try core.add(line, continuation: nil)
        try core.add(greedyRequest("chat", ids(10..<14), maxTokens: 2), continuation: nil)
        #expect(core.waitingIDs == ["chat", "line"])
        try core.step()
        #expect(core.runningIDs == ["chat"])
        try runToCompletion(core)

        // A batch line already running pauses (keeps its blocks, computes nothing) while an interactive
        // request runs, and goes on after it.
        let shared = makeCore()
        let batchLine = Collector()
        var long = greedyRequest("long", ids(0..<4), maxTokens: 12)
        long.priority = .batch
        try shared.add(long, continuation: batchLine.continuation)
        try shared.step()
        try shared.step()
        try shared.add(greedyRequest("chat", ids(10..<14), maxTokens: 3), continuation: nil)
        let before = shared.snapshot().steps
        var chatSteps = 0
        while shared.runningIDs.contains("chat") || shared.waitingIDs.contains("chat") {
            try shared.step()
            chatSteps += 1
        }
        #expect(shared.runningIDs == ["long"] && chatSteps == 3 && shared.snapshot().steps == before + 3)
        try runToCompletion(shared)
        try await batchLine.drain()
        #expect(batchLine.tokens == Array(4..<16))

        // 6 blocks of 4: the running batch line gives its blocks back to a later interactive request.
        let tight = makeCore(blocks: 6, blockSize: 4)
        let a = Collector(), b = Collector()
        var old = greedyRequest("a", ids(0..<10), maxTokens: 9)
        old.priority = .batch
        try tight.add(old, continuation: a.continuation)
        for _ in 0..<4 { try tight.step() }
        try tight.add(greedyRequest("b", ids(20..<30), maxTokens: 9), continuation: b.continuation)
        try runToCompletion(tight)
        try await a.drain()
        try await b.drain()
        #expect(a.tokens == Array(10..<19) && b.tokens == Array(30..<39))
        #expect((a.finish?.1.preemptions ?? 0) >= 1 && b.finish?.1.preemptions == 0)
    }

    @Test func abortFreesBlocksAtOnceAndStillReportsStats() async throws {
        let core = makeCore()
        let a = Collector()
        let heard = FinishLog()
        var request = greedyRequest("a", ids(0..<10), maxTokens: 50)
        request.onFinish = { reason, stats in heard.add(reason, stats) }
        try core.add(request, continuation: a.continuation)
        try core.step()
        #expect(core.pool.usedCount == 3)
        #expect(core.abort("a"))
        #expect(core.pool.usedCount == 0)
        #expect(!core.hasWork)
        try await a.drain()
        #expect(a.finish?.0 == .abort)
        // The hook hears it even when nobody reads the stream (a client that went away).
        #expect(heard.entries.map(\.0) == [.abort])
        #expect(heard.entries.first?.1 == a.finish?.1)
        #expect(heard.entries.first?.1.generatedTokens == 1)
    }

    @Test func endAsStopFinishesWithStats() async throws {
        let core = makeCore()
        let a = Collector()
        try core.add(greedyRequest("a", ids(0..<6), maxTokens: 50), continuation: a.continuation)
        try core.step()
        try core.step()
        #expect(core.end("a", .stop))
        #expect(!core.end("a", .stop), "a finished request is not found again")
        #expect(core.pool.usedCount == 0)
        try await a.drain()
        #expect(a.finish?.0 == .stop)
        #expect(a.finish?.1.generatedTokens == 2 && a.finish?.1.promptTokens == 6)
    }

    @Test func maxSeqsLimitsRunningRequests() throws {
        let core = makeCore(maxSeqs: 2)
        for i in 0..<4 {
            let prompt: [TokenID] = [TokenID(i)]
            try core.add(greedyRequest("r\(i)", prompt, maxTokens: 5), continuation: nil)
        }
        try core.step()
        #expect(core.runningIDs == ["r0", "r1"])
        #expect(core.waitingIDs == ["r2", "r3"])
        try runToCompletion(core)
    }

    @Test func tooLongAndEmptyPromptsAreRefused() throws {
        let core = makeCore(blocks: 4, blockSize: 4)
        let long: [TokenID] = Array(repeating: 1, count: 16)
        #expect(throws: EngineError.promptTooLong(tokens: 16, limit: 15)) { try core.add(greedyRequest("x", long, maxTokens: 1), continuation: nil) }
        #expect(throws: EngineError.emptyPrompt) { try core.add(greedyRequest("y", [], maxTokens: 1), continuation: nil) }
    }
}

/// What `EngineRequest.onFinish` heard, in order.
final class FinishLog: @unchecked Sendable {
    private let lock = NSLock()
    private var log: [(FinishReason, RequestStats)] = []
    var entries: [(FinishReason, RequestStats)] { lock.lock(); defer { lock.unlock() }; return log }
    func add(_ reason: FinishReason, _ stats: RequestStats) { lock.lock(); log.append((reason, stats)); lock.unlock() }
}

/// `echo` with `logprobs`: prompt tokens scored by the logits of the positions before them.
@Suite struct PromptLogprobsTests {
    /// FakeRunner's logits row after token t: 10 at (t + 1) mod 64, 0 elsewhere.
    static func fakeRow(after t: TokenID) -> [Float] {
        var row = [Float](repeating: 0, count: 64)
        row[Int(t + 1) % 64] = 10
        return row
    }

    static func expected(_ row: [Float], _ chosen: TokenID, top: Int) -> TokenLogprob {
        let lp = row.withUnsafeBufferPointer { Sampler.logProbabilities($0, chosen: chosen, top: top) }
        return TokenLogprob(logprob: lp.chosen, top: lp.top)
    }

    @Test func everyPromptTokenAfterTheFirstIsScoredOnceAcrossPrefillChunks() async throws {
        let core = makeCore(maxBatchTokens: 4)
        let a = Collector()
        let prompt: [TokenID] = [5, 6, 9, 10, 11, 30, 31, 2, 3, 4]  // some tokens the fake predicts, some it does not
        var request = greedyRequest("a", prompt, maxTokens: 2)
        request.promptLogprobs = 3
        try core.add(request, continuation: a.continuation)
        try runToCompletion(core)
        try await a.drain()
        #expect(a.order == ["prompt", "token", "token", "finished"])
        let scored = try #require(a.promptLogprobs.first)
        #expect(scored.count == prompt.count - 1)
        for i in 1..<prompt.count {
            #expect(scored[i - 1] == Self.expected(Self.fakeRow(after: prompt[i - 1]), prompt[i], top: 3), "prompt token \(i)")
        }
        // Chunks of 4: the scored positions' rows were asked of the model, every prompt position but the last
        // (whose row is the first generated token's).
        let runner = core.runner as! FakeRunner
        #expect(runner.batches[0].logitRows == [0, 1, 2, 3])
        #expect(runner.batches[2].logitRows == [0, 1])  // positions 8 and 9: 8 is scored, 9 samples
    }

    @Test func aRequestThatScoresItsPromptTakesNothingFromThePrefixCache() async throws {
        let core = makeCore()
        let a = Collector(), b = Collector()
        try core.add(greedyRequest("a", ids(0..<10), maxTokens: 1), continuation: a.continuation)
        try runToCompletion(core)
        var request = greedyRequest("b", ids(0..<10), maxTokens: 1)
        request.promptLogprobs = 0
        try core.add(request, continuation: b.continuation)
        try runToCompletion(core)
        try await b.drain()
        #expect(b.finish?.1.cachedTokens == 0)
        #expect(b.promptLogprobs.first?.count == 9)
        #expect(b.promptLogprobs.first?.allSatisfy { $0.top.isEmpty } == true)
    }

    @Test func maxTokensZeroScoresThePromptAndGeneratesNothing() async throws {
        let core = makeCore()
        let a = Collector()
        var request = greedyRequest("a", ids(0..<6), maxTokens: 0)
        request.promptLogprobs = 1
        try core.add(request, continuation: a.continuation)
        try runToCompletion(core)
        try await a.drain()
        #expect(a.order == ["prompt", "finished"])
        #expect(a.finish?.0 == .length && a.finish?.1.generatedTokens == 0)
        #expect(core.pool.usedCount == 0)
    }

    /// ignore_eos changes which token is drawn, not the distribution reported: the end-of-generation token
    /// keeps its probability in logprobs (it used to be masked and the rest renormalised).
    @Test func logprobsUnderIgnoreEOSAreTheModelsDistribution() async throws {
        let core = makeCore()
        let a = Collector()
        var request = greedyRequest("a", [3], maxTokens: 1)
        request.stopTokenIDs = [4]  // the fake model's choice after 3
        request.ignoreEOS = true
        request.topLogprobs = 2
        try core.add(request, continuation: a.continuation)
        try runToCompletion(core)
        try await a.drain()
        let chosen = try #require(a.tokens.first)
        #expect(chosen != 4)
        let logprob = try #require(a.logprobs.first ?? nil)
        #expect(logprob == Self.expected(Self.fakeRow(after: 3), chosen, top: 2))
        #expect(logprob.top.first?.token == 4)
    }
}
