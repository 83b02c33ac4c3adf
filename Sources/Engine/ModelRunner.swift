// What the engine needs from a model: run one step over a flat batch and return the requested rows'
// logits. The real runner is a LlamaModel with its KV store; tests use a fake that needs no weights.

import GGUF
import ModelRuntime

package protocol ModelRunner: AnyObject {
    var vocabSize: Int { get }
    var contextLength: Int { get }
    /// Logits [batch.logitRows.count, vocabSize], row-major.
    func forward(_ batch: ForwardBatch) throws -> [Float]
}

package final class LlamaRunner: ModelRunner {
    package let model: LlamaModel
    package let kv: KVStore

    package init(model: LlamaModel, blockCount: Int, blockSize: Int) {
        self.model = model
        kv = KVStore(config: model.config, blockCount: blockCount, blockSize: blockSize)
    }

    package var vocabSize: Int { model.config.vocabSize }
    package var contextLength: Int { model.config.contextLength }
    package func forward(_ batch: ForwardBatch) throws -> [Float] { try model.forward(batch, kv: kv) }
}
