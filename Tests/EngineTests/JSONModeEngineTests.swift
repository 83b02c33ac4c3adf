// JSON mode through the threaded engine on the tiny model (random weights, so it has no idea what JSON is):
// every output, greedy or sampled, with or without prompt-lookup drafts, is a prefix of a JSON object, and
// a request that ends with `.stop` ends exactly when its object closes and parses.

import Engine
import Foundation
import GGUF
import Kernels
import ModelRuntime
import Sampling
import Testing
import TestSupport
import Tokenization

@Suite struct JSONModeEngineTests {
    static let path = packageRoot + "/Tests/ModelRuntimeTests/Fixtures/tiny-q8_0.gguf"

    @Test(arguments: [0, 4])
    func everyOutputIsAJSONObjectOrAPrefixOfOne(draftTokens: Int) async throws {
        let file = try GGUFFile(path: Self.path)
        let tokenizer = try Tokenizer(metadata: file.metadata)
        let vocabulary = ConstraintVocabulary(tokenBytes: (0..<tokenizer.vocabularySize).map { id in
            let type = tokenizer.tokenType(TokenID(id))
            return type == .control || type == .unknown ? [] : tokenizer.pieceBytes(TokenID(id))
        })
        let model = try LlamaModel(file: file, pool: ComputePool(threads: 2))
        var config = EngineConfig()
        config.kvBlocks = 256
        config.blockSize = 4
        config.draftTokens = draftTokens
        let engine = BatchingEngine(runner: LlamaRunner(model: model, config: config), config: config)
        defer { engine.shutdown(deadline: .seconds(1)) }

        var stopped = 0
        for seed in 0..<12 {
            var request = EngineRequest(id: "j\(seed)", promptTokens: [1, 40, 41, 42, 43], maxTokens: 100,
                                        stopTokenIDs: tokenizer.endOfGenerationIDs)
            request.sampling.temperature = seed == 0 ? 0 : 1.2
            request.sampling.seed = UInt64(seed)
            request.constraint = JSONConstraint(vocabulary: vocabulary)
            let (tokens, finish, _) = try await run(engine, request)
            let bytes = tokens.flatMap { tokenizer.pieceBytes($0) }
            var recognizer = JSONRecognizer()
            let accepted = bytes.prefix { recognizer.accept($0) }.count
            #expect(accepted == bytes.count, "seed \(seed): byte \(accepted) of \(bytes.count) leaves JSON")
            switch finish {
            case .stop:
                stopped += 1
                #expect(recognizer.isComplete)
                #expect(try JSONSerialization.jsonObject(with: Data(bytes)) is [String: Any], "seed \(seed)")
            case .length:
                #expect(!recognizer.isComplete && tokens.count == 100)
            default:
                Issue.record("seed \(seed) finished \(String(describing: finish))")
            }
        }
        #expect(stopped > 0, "some object closes within 100 tokens")
    }
}
