// What the engine needs from a model: run one step over a flat batch and return the requested rows'
// logits. The real runner is a LlamaModel with its KV store; tests use a fake that needs no weights.

import GGUF
import ModelRuntime

package protocol ModelRunner: AnyObject {
    var vocabSize: Int { get }
    var contextLength: Int { get }
    /// Logits [batch.logitRows.count, vocabSize], row-major.
    func forward(_ batch: ForwardBatch) throws -> [Float]
    /// Logits as `forward`, and the final hidden states of batch.hiddenRows [count, embeddingLength].
    func forwardStep(_ batch: ForwardBatch) throws -> (logits: [Float], hidden: [Float])
    /// Copies the keys and values of the first `slots` positions of block `source` into block `destination`
    /// (every layer): a prompt that shares part of a cached block starts from a copy of that part.
    func copyKV(from source: BlockID, to destination: BlockID, slots: Int)
    /// Runs body(i) for every i in 0..<count, on the model's compute threads when it has them: the engine
    /// samples its requests' tokens this way (each request's sampler is its own).
    func forEach(_ count: Int, _ body: (Int) -> Void)
    /// Hands the memory of these blocks (which hold nothing worth keeping) back to the OS; returns the bytes.
    func releaseKV(of blocks: [BlockID]) -> Int
}

package extension ModelRunner {
    /// A runner without hidden states (test fakes): logits only.
    func forwardStep(_ batch: ForwardBatch) throws -> (logits: [Float], hidden: [Float]) { (try forward(batch), []) }
    func forEach(_ count: Int, _ body: (Int) -> Void) {
        for i in 0..<count { body(i) }
    }
    func releaseKV(of blocks: [BlockID]) -> Int { 0 }
}

package final class LlamaRunner: ModelRunner {
    package let model: LlamaModel
    package let kv: KVStore

    /// The KV store is sized by the engine's config (kvBlocks, blockSize, kvType), as the block pool is.
    package init(model: LlamaModel, config: EngineConfig) {
        self.model = model
        kv = KVStore(config: model.config, blockCount: config.kvBlocks, blockSize: config.blockSize, type: config.kvType)
    }

    package var vocabSize: Int { model.config.vocabSize }
    package var contextLength: Int { model.config.contextLength }
    package func forward(_ batch: ForwardBatch) throws -> [Float] { try model.forward(batch, kv: kv) }
    package func forwardStep(_ batch: ForwardBatch) throws -> (logits: [Float], hidden: [Float]) { try model.forwardStep(batch, kv: kv) }
    package func copyKV(from source: BlockID, to destination: BlockID, slots: Int) { kv.copy(from: source, to: destination, slots: slots) }
    package func releaseKV(of blocks: [BlockID]) -> Int { kv.releasePages(of: blocks) }
    package func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 1 else { return count == 1 ? body(0) : () }
        model.pool.run { thread, threads in
            for i in stride(from: thread, to: count, by: threads) { body(i) }
        }
    }
}
