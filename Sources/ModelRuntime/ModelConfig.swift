// Hyper-parameters of a model, read from GGUF metadata and checked for consistency, and the few switches
// by which the architectures tally runs differ in the one forward pass (LlamaModel.forward).

import GGUF
import Kernels

/// The architectures tally runs, as `general.architecture` names them. All are the Llama graph (RMS norm,
/// GQA attention with RoPE, SwiGLU feed-forward); what differs is a switch here or an optional tensor:
/// - `llama` (Llama 2, 3.x, SmolLM2): RoPE on adjacent pairs; Llama 3.x scales RoPE through the
///   `rope_freqs` tensor; the output head may be tied to the token embedding.
/// - `qwen2` (Qwen2.5): biases on q, k and v (tensors `attn_{q,k,v}.bias`); RoPE on halves (NEOX), as
///   converters leave Qwen's Q/K rows unpermuted.
/// - `qwen3`: no biases; an RMS norm per head on q and k before RoPE (`attn_{q,k}_norm`); RoPE on halves.
/// - `smollm3`: Llama, except that every 4th layer (3, 7, ...) has no RoPE at all (llama.cpp fixes the
///   step at 4; no GGUF key carries it).
package enum Architecture: String, Sendable, CaseIterable {
    case llama, qwen2, qwen3, smollm3

    var ropeStyle: RopeStyle { self == .qwen2 || self == .qwen3 ? .halves : .adjacentPairs }
    /// Layers l with (l + 1) % step == 0 skip RoPE.
    var noRopeLayerStep: Int? { self == .smollm3 ? 4 : nil }
}

package struct ModelConfig: Sendable, Equatable {
    package var architecture: String
    /// How RoPE pairs a head's values (from the architecture).
    package var ropeStyle: RopeStyle = .adjacentPairs
    /// Every this-many-th layer has no RoPE (SmolLM3: 4); nil: every layer has it.
    package var noRopeLayerStep: Int?
    /// `%s.embedding_length`
    package var embeddingLength: Int
    /// `%s.block_count`
    package var layerCount: Int
    /// `%s.attention.head_count`
    package var headCount: Int
    /// `%s.attention.head_count_kv` (defaults to headCount)
    package var kvHeadCount: Int
    /// embeddingLength / headCount (or `%s.attention.key_length`)
    package var headDim: Int
    /// `%s.feed_forward_length`
    package var feedForwardLength: Int
    /// `%s.context_length`
    package var contextLength: Int
    /// `%s.vocab_size`, or the length of tokenizer.ggml.tokens, or token_embd's rows
    package var vocabSize: Int
    /// `%s.rope.freq_base` (default 10000)
    package var ropeFreqBase: Float
    /// `%s.rope.dimension_count` (default headDim)
    package var ropeDimensionCount: Int
    /// `%s.attention.layer_norm_rms_epsilon`
    package var rmsNormEpsilon: Float

    /// Whether layer l rotates q and k.
    package func usesRope(layer l: Int) -> Bool { noRopeLayerStep.map { (l + 1) % $0 != 0 } ?? true }

    /// Values of K (and V) per token per layer.
    package var kvWidth: Int { kvHeadCount * headDim }
    package var queryWidth: Int { headCount * headDim }

    package init(metadata m: GGUFMetadata, vocabRows: Int? = nil) throws {
        do {
            architecture = try m.architecture()
            guard let known = Architecture(rawValue: architecture) else { throw RuntimeError.unsupportedArchitecture(architecture) }
            ropeStyle = known.ropeStyle
            noRopeLayerStep = known.noRopeLayerStep
            let a = architecture
            embeddingLength = try m.integer(GGUFKey.embeddingLength(a))
            layerCount = try m.integer(GGUFKey.blockCount(a))
            headCount = try m.integer(GGUFKey.headCount(a))
            kvHeadCount = m.contains(GGUFKey.kvHeadCount(a)) ? try m.integer(GGUFKey.kvHeadCount(a)) : headCount
            feedForwardLength = try m.integer(GGUFKey.feedForwardLength(a))
            contextLength = try m.integer(GGUFKey.contextLength(a))
            rmsNormEpsilon = try m.float(GGUFKey.rmsNormEpsilon(a))
            ropeFreqBase = m.contains(GGUFKey.ropeFreqBase(a)) ? try m.float(GGUFKey.ropeFreqBase(a)) : 10000
            guard headCount > 0 else { throw RuntimeError.badHyperParameter(key: GGUFKey.headCount(a), value: "\(headCount)", reason: "must be positive") }
            headDim = m.contains(GGUFKey.keyLength(a)) ? try m.integer(GGUFKey.keyLength(a)) : embeddingLength / headCount
            ropeDimensionCount = m.contains(GGUFKey.ropeDimensionCount(a)) ? try m.integer(GGUFKey.ropeDimensionCount(a)) : headDim
            if m.contains(GGUFKey.vocabSize(a)) {
                vocabSize = try m.integer(GGUFKey.vocabSize(a))
            } else if m.contains(GGUFKey.tokens) {
                vocabSize = try m.stringArray(GGUFKey.tokens).count
            } else {
                vocabSize = vocabRows ?? 0
            }
        } catch let error as GGUFError {
            throw RuntimeError.model(error)
        }
        try validate()
    }

    /// Upper bounds far above any small model (Llama 3.1 405B: 16,384 wide, 126 layers, 128k context;
    /// Gemma 3: 262k vocabulary): a file asking for more is refused by name before anything is sized from
    /// it (the attention scratch, the RoPE tables and the logits are sized from these values).
    static let limits = (embeddingLength: 1 << 16, layerCount: 1 << 10, headCount: 1 << 10, feedForwardLength: 1 << 18,
                         contextLength: 1 << 21, vocabSize: 1 << 22)

    func validate() throws {
        let a = architecture
        func check(_ ok: Bool, _ key: String, _ value: Int, _ reason: String) throws {
            if !ok { throw RuntimeError.badHyperParameter(key: key, value: "\(value)", reason: reason) }
        }
        func bound(_ value: Int, _ limit: Int, _ key: String) throws {
            try check(value <= limit, key, value, "above tally's limit of \(limit), refused before any allocation")
        }
        let l = Self.limits
        try bound(embeddingLength, l.embeddingLength, GGUFKey.embeddingLength(a))
        try bound(layerCount, l.layerCount, GGUFKey.blockCount(a))
        try bound(headCount, l.headCount, GGUFKey.headCount(a))
        try bound(feedForwardLength, l.feedForwardLength, GGUFKey.feedForwardLength(a))
        try bound(contextLength, l.contextLength, GGUFKey.contextLength(a))
        try bound(vocabSize, l.vocabSize, GGUFKey.vocabSize(a))
        try check(embeddingLength > 0 && embeddingLength % 32 == 0, GGUFKey.embeddingLength(a), embeddingLength, "must be a positive multiple of 32")
        try check(layerCount > 0, GGUFKey.blockCount(a), layerCount, "must be positive")
        try check(kvHeadCount > 0 && headCount % kvHeadCount == 0, GGUFKey.kvHeadCount(a), kvHeadCount, "must divide the head count \(headCount)")
        try check(headDim > 0 && headDim % 2 == 0 && headDim <= 512, GGUFKey.keyLength(a), headDim, "head dimension must be even and at most 512")
        try check(ropeDimensionCount > 0 && ropeDimensionCount <= headDim && ropeDimensionCount % 2 == 0, GGUFKey.ropeDimensionCount(a), ropeDimensionCount, "must be even and at most the head dimension \(headDim)")
        try check(feedForwardLength > 0 && feedForwardLength % 32 == 0, GGUFKey.feedForwardLength(a), feedForwardLength, "must be a positive multiple of 32")
        try check(contextLength > 0, GGUFKey.contextLength(a), contextLength, "must be positive")
        try check(vocabSize > 0, GGUFKey.vocabSize(a), vocabSize, "must be positive")
        try check(queryWidth % 32 == 0, GGUFKey.headCount(a), headCount, "head count x head dimension must be a multiple of 32")
    }
}
