// Every GGUF tensor name tally reads or writes. Layer tensors are `blk.N.<suffix>`.

package enum TensorName {
    package static let tokenEmbedding = "token_embd.weight"
    package static let outputNorm = "output_norm.weight"
    package static let output = "output.weight"

    package static func attentionNorm(_ layer: Int) -> String { "blk.\(layer).attn_norm.weight" }
    package static func attentionQuery(_ layer: Int) -> String { "blk.\(layer).attn_q.weight" }
    package static func attentionKey(_ layer: Int) -> String { "blk.\(layer).attn_k.weight" }
    package static func attentionValue(_ layer: Int) -> String { "blk.\(layer).attn_v.weight" }
    package static func attentionOutput(_ layer: Int) -> String { "blk.\(layer).attn_output.weight" }
    package static func feedForwardNorm(_ layer: Int) -> String { "blk.\(layer).ffn_norm.weight" }
    package static func feedForwardGate(_ layer: Int) -> String { "blk.\(layer).ffn_gate.weight" }
    package static func feedForwardUp(_ layer: Int) -> String { "blk.\(layer).ffn_up.weight" }
    package static func feedForwardDown(_ layer: Int) -> String { "blk.\(layer).ffn_down.weight" }

    // Qwen2: biases on the q, k and v products. Qwen3: an RMS norm per head on q and k.
    package static func attentionQueryBias(_ layer: Int) -> String { "blk.\(layer).attn_q.bias" }
    package static func attentionKeyBias(_ layer: Int) -> String { "blk.\(layer).attn_k.bias" }
    package static func attentionValueBias(_ layer: Int) -> String { "blk.\(layer).attn_v.bias" }
    package static func attentionQueryNorm(_ layer: Int) -> String { "blk.\(layer).attn_q_norm.weight" }
    package static func attentionKeyNorm(_ layer: Int) -> String { "blk.\(layer).attn_k_norm.weight" }
    /// Llama 3's RoPE scaling: one divisor per rotated pair, the same in every layer.
    package static let ropeFrequencies = "rope_freqs.weight"
}
