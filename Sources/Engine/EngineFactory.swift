// Assembles an engine for a loaded model: the one place that derives the KV cache's block size, block
// count and value type together, so the KV store (LlamaRunner) and the block pool (EngineCore) are sized
// from one EngineConfig and always agree. `tally serve`, `tally bench --in-process` and `tally generate`
// build their engines here.

import ModelRuntime

/// How much KV cache an engine gets.
package enum KVCapacity: Sendable, Equatable {
    /// Exactly this many blocks.
    case blocks(Int)
    /// As many blocks as fit in this many MiB of keys and values.
    case memoryMiB(Int)
    /// Enough blocks for this many positions (one request of known length: `tally generate`).
    case positions(Int)
}

/// What a command chooses about its engine; everything else is derived.
package struct EngineOptions: Sendable {
    package var kvCapacity = KVCapacity.memoryMiB(512)
    package var kvType = KVType.default
    package var maxBatchTokens = 512
    package var maxSeqs = 16
    package var maxQueue = 256
    package var prefixCaching = true
    /// See EngineConfig.idleRelease; the prefix cache's idle limit here is in MiB of KV memory.
    package var idleRelease: Duration? = nil
    package var idlePrefixCacheMiB: Int? = nil
    /// Prompt-lookup speculative decoding: EngineConfig.draftTokens and draftNgram.
    package var draftTokens = 0
    package var draftNgram = 3

    package init() {}

    /// The engine's config for a model of shape `model`: blocks of EngineConfig.standardBlockSize
    /// positions, as many as the capacity asks for (at least one).
    package func engineConfig(for model: ModelConfig) -> EngineConfig {
        var config = EngineConfig()
        let blockSize = config.blockSize
        switch kvCapacity {
        case .blocks(let blocks): config.kvBlocks = blocks
        case .memoryMiB(let mib): config.kvBlocks = mib << 20 / KVStore.bytes(config: model, blocks: 1, blockSize: blockSize, type: kvType)
        case .positions(let positions): config.kvBlocks = (positions + blockSize - 1) / blockSize
        }
        config.kvBlocks = max(1, config.kvBlocks)
        config.kvType = kvType
        config.maxBatchTokens = maxBatchTokens
        config.maxSeqs = maxSeqs
        config.maxQueue = maxQueue
        config.prefixCaching = prefixCaching
        config.idleRelease = idleRelease
        config.draftTokens = draftTokens
        config.draftNgram = draftNgram
        config.idlePrefixCacheBlocks = idlePrefixCacheMiB.map {
            $0 << 20 / KVStore.bytes(config: model, blocks: 1, blockSize: blockSize, type: kvType)
        }
        return config
    }
}

package enum EngineFactory {
    /// The batching engine for `model`, on its own thread, with its KV store and block pool.
    package static func engine(model: LlamaModel, options: EngineOptions) -> BatchingEngine {
        let config = options.engineConfig(for: model.config)
        return BatchingEngine(runner: LlamaRunner(model: model, config: config), config: config)
    }

    /// The engine's core alone, driven by its caller's thread (`Generator`).
    package static func core(model: LlamaModel, options: EngineOptions) -> EngineCore {
        let config = options.engineConfig(for: model.config)
        return EngineCore(config: config, runner: LlamaRunner(model: model, config: config))
    }
}
