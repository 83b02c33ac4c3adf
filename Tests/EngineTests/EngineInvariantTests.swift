// Engine invariants on a real (tiny) model, through the threaded Engine: a prefix-cache hit gives the
// same tokens as a cold run, and a request gives the same tokens alone or among others (greedy and
// seeded sampling).

import Engine
import Foundation
import GGUF
import Kernels
import ModelRuntime
import Sampling
import Testing
import TestSupport

func tinyEngine(prefixCaching: Bool = true, maxBatchTokens: Int = 64, blocks: Int = 64) throws -> BatchingEngine {
    let file = try GGUFFile(path: packageRoot + "/Tests/ModelRuntimeTests/Fixtures/tiny-q8_0.gguf")
    let model = try LlamaModel(file: file, pool: ComputePool(threads: 2))
    var config = EngineConfig()
    config.kvBlocks = blocks
    config.blockSize = 4
    config.maxBatchTokens = maxBatchTokens
    config.prefixCaching = prefixCaching
    return BatchingEngine(runner: LlamaRunner(model: model, config: config), config: config)
}

/// Submits and collects one request. Every typed-throws `submit` is its own statement here: the same
/// call inside an argument list or a `map` closure hung the Swift 6.3.1 compiler.
func run(_ engine: BatchingEngine, _ r: EngineRequest) async throws -> ([TokenID], FinishReason?, RequestStats?) {
    let stream: AsyncThrowingStream<EngineEvent, Error>
    do { stream = try engine.submit(r) } catch { throw error }
    return try await collect(stream)
}

func collect(_ stream: AsyncThrowingStream<EngineEvent, Error>) async throws -> ([TokenID], FinishReason?, RequestStats?) {
    var tokens: [TokenID] = []
    var finish: (FinishReason, RequestStats)?
    for try await event in stream {
        switch event {
        case .promptLogprobs, .embedding: break
        case .token(let t, _): tokens.append(t)
        case .finished(let r, let s): finish = (r, s)
        }
    }
    return (tokens, finish?.0, finish?.1)
}

func request(_ id: String, _ prompt: [TokenID], temperature: Float = 0, seed: UInt64 = 7, maxTokens: Int = 12) -> EngineRequest {
    var p = SamplingParams()
    p.temperature = temperature
    p.seed = seed
    return EngineRequest(id: id, promptTokens: prompt, sampling: p, maxTokens: maxTokens)
}

@Suite(.serialized) struct EngineInvariantTests {
    static let shared: [TokenID] = (0..<21).map { (i: Int) -> TokenID in TokenID((i * 13 + 5) % 256 + 4) }

    @Test(arguments: [Float(0), 0.9])
    func aPrefixCacheHitGivesTheSameTokensAsAColdRun(temperature: Float) async throws {
        let cold = try tinyEngine(prefixCaching: false)
        defer { cold.shutdown() }
        let warm = try tinyEngine(prefixCaching: true)
        defer { warm.shutdown() }
        let suffix: [TokenID] = [9, 10, 11], fill: [TokenID] = [99]
        let prompt: [TokenID] = Self.shared + suffix
        let reference = try await run(cold, request("cold", prompt, temperature: temperature))
        let filler: [TokenID] = Self.shared + fill
        _ = try await run(warm, request("fill", filler, temperature: temperature))
        let hit = try await run(warm, request("hit", prompt, temperature: temperature))
        // Five full blocks, and the first position of the sixth (copied: the filler's sixth block goes on
        // differently), of the shared prefix were reused.
        #expect(hit.2?.cachedTokens == 21)
        #expect(reference.2?.cachedTokens == 0)
        #expect(hit.0 == reference.0)
        #expect(hit.0.count == 12)
    }

    @Test(arguments: [Float(0), 0.9])
    func aRequestGivesTheSameTokensAloneOrAmongOthers(temperature: Float) async throws {
        let ramp: [TokenID] = (0..<30).map { (i: Int) -> TokenID in TokenID(i + 100) }
        let prompts: [[TokenID]] = [[1, 50, 60, 70], Self.shared, [1, 200, 201], ramp]
        var alone: [[TokenID]] = []
        for (i, p) in prompts.enumerated() {
            let engine = try tinyEngine(prefixCaching: false)
            let result = try await run(engine, request("a\(i)", p, temperature: temperature, seed: UInt64(i)))
            alone.append(result.0)
            engine.shutdown()
        }
        // All at once, with a small token budget so prefill chunks and decodes interleave, and half of them
        // batch lines (paused while the others run, preempted when blocks run short).
        let engine = try tinyEngine(prefixCaching: false, maxBatchTokens: 8, blocks: 12)
        defer { engine.shutdown() }
        var streams: [AsyncThrowingStream<EngineEvent, Error>] = []
        for (i, p) in prompts.enumerated() {
            var r = request("t\(i)", p, temperature: temperature, seed: UInt64(i))
            if i % 2 == 1 { r.priority = .batch }
            let s: AsyncThrowingStream<EngineEvent, Error>
            do { s = try engine.submit(r) } catch { throw error }
            streams.append(s)
        }
        for (i, s) in streams.enumerated() {
            let together = try await collect(s)
            #expect(together.0 == alone[i], "prompt \(i)")
        }
        // The snapshot is refreshed after the step in which the last request finished.
        for _ in 0..<200 where engine.snapshot().kvBlocksUsed != 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(engine.snapshot().kvBlocksUsed == 0)
    }

    @Test func cancellingTheStreamAbortsTheRequestAndFreesItsBlocks() async throws {
        let engine = try tinyEngine()
        defer { engine.shutdown() }
        let long = request("long", Self.shared, maxTokens: 100)
        let stream: AsyncThrowingStream<EngineEvent, Error>
        do { stream = try engine.submit(long) } catch { throw error }
        let task = Task {
            var n = 0
            // Cancel the consuming task, as the server does when a client disconnects (merely leaving the
            // loop while the stream is still referenced does not end it).
            for try await event in stream { if case .token = event { n += 1; if n == 2 { withUnsafeCurrentTask { $0?.cancel() } } } }
        }
        try await task.value
        // The abort reaches the engine thread within a step or two.
        for _ in 0..<200 {
            let s = engine.snapshot()
            if s.kvBlocksUsed == 0 && s.running == 0 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(engine.snapshot().running == 0)
        #expect(engine.snapshot().kvBlocksUsed == 0)
    }

    @Test func aFullQueueIsRefusedNotBlocked() throws {
        var config = EngineConfig()
        config.maxQueue = 2
        config.kvBlocks = 4
        config.blockSize = 4
        let file = try GGUFFile(path: packageRoot + "/Tests/ModelRuntimeTests/Fixtures/tiny-q8_0.gguf")
        let model = try LlamaModel(file: file, pool: ComputePool(threads: 1))
        let engine = BatchingEngine(runner: LlamaRunner(model: model, config: config), config: config)
        defer { engine.shutdown(deadline: .milliseconds(10)) }
        var refused = 0
        for i in 0..<40 {
            let r = request("q\(i)", [1, 2, 3], maxTokens: 100)
            do { _ = try engine.submit(r) } catch { if error == .queueFull(limit: 2) { refused += 1 } }
        }
        #expect(refused > 0)
    }

    /// Requests the engine can start at once do not count against the queue: with no queue at all, a burst
    /// as large as the free run slots is accepted, and only the one after is refused.
    @Test func aBurstNoLargerThanTheFreeSlotsIsNeverRefused() throws {
        var config = EngineConfig()
        config.maxQueue = 0
        config.maxSeqs = 16
        config.kvBlocks = 64
        config.blockSize = 4
        // The model waits at a gate, so nothing finishes (and frees a slot) while the burst arrives.
        let runner = GatedRunner()
        let engine = BatchingEngine(runner: runner, config: config)
        defer {
            runner.open()
            engine.shutdown(deadline: .milliseconds(10))
        }
        var streams: [AsyncThrowingStream<EngineEvent, Error>] = []
        for i in 0..<16 {
            var r = request("burst\(i)", [1, 2, 3], maxTokens: 10_000)
            r.ignoreEOS = true
            streams.append(try engine.submit(r))
        }
        #expect(streams.count == 16)
        // All 16 slots are now taken (running or about to be): the 17th waits for a queue of 0.
        #expect(throws: EngineError.queueFull(limit: 0)) { _ = try engine.submit(request("one-more", [1, 2, 3], maxTokens: 10_000)) }
    }
}

/// FakeRunner behind a gate: `forward` waits until `open()`.
final class GatedRunner: ModelRunner, @unchecked Sendable {
    private let inner = FakeRunner()
    private let gate = DispatchSemaphore(value: 0)
    var vocabSize: Int { inner.vocabSize }
    var contextLength: Int { inner.contextLength }

    func open() { gate.signal() }

    func forward(_ batch: ForwardBatch) throws -> [Float] {
        gate.wait()
        gate.signal()  // once open, it stays open
        return try inner.forward(batch)
    }

    func copyKV(from source: BlockID, to destination: BlockID, slots: Int) { inner.copyKV(from: source, to: destination, slots: slots) }
    func forEach(_ count: Int, _ body: (Int) -> Void) { inner.forEach(count, body) }
}
