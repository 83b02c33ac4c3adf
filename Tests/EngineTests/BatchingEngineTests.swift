// The engine thread's error path: a step whose forward pass throws is logged with its error, and every
// request it held ends as aborted (its stream still gets `.finished`).

import Engine
import Foundation
import GGUF
import ModelRuntime
import Testing

/// A model whose every forward pass fails.
final class ThrowingRunner: ModelRunner {
    struct Fault: Error, CustomStringConvertible {
        var description: String { "kernel fault in layer 3" }
    }
    let vocabSize = 64
    let contextLength = 256

    func forward(_ batch: ForwardBatch) throws -> [Float] { throw Fault() }
    func copyKV(from source: BlockID, to destination: BlockID, slots: Int) {}
}

@Suite struct BatchingEngineTests {
    @Test func aFailedStepIsLoggedAndItsRequestsEndAborted() async throws {
        let lines = LogLines()
        var config = EngineConfig()
        config.kvBlocks = 16
        config.blockSize = 4
        let engine = BatchingEngine(runner: ThrowingRunner(), config: config, log: { lines.add($0) })
        defer { engine.shutdown(deadline: .seconds(1)) }
        let request = greedyRequest("a", ids(0..<6), maxTokens: 4)
        let stream = try engine.submit(request)
        var finish: FinishReason?
        var tokens = 0
        for try await event in stream {
            switch event {
            case .promptLogprobs, .embedding: break
            case .token: tokens += 1
            case .finished(let reason, _): finish = reason
            }
        }
        #expect(finish == .abort)
        #expect(tokens == 0)
        #expect(lines.all.count == 1)
        #expect(lines.all.first?.contains("kernel fault in layer 3") == true)
        #expect(lines.all.first?.contains("aborting 1 requests") == true)
    }
}

/// What the engine logged, in order.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
    func add(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
}
