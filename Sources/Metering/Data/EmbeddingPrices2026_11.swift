// Dated data: embedding prices from the same LiteLLM snapshot as APIPrices2026_11.swift (the litellm 1.109.1
// wheel on PyPI, model_prices_and_context_window_backup.json: `input_cost_per_token` and
// `input_cost_per_token_batches` of the entries named below, each entry's `source` the vendor page). One
// embedding model per provider of the chat table, the one a user of that provider would reach for first.
// A newer snapshot is a new file beside this one; this one is never edited.

extension EmbeddingPrice {
    /// USD per 1M tokens x 1e9 = nano-USD per 1M tokens.
    static let shipped2026_11: [EmbeddingPrice] = [
        // text-embedding-3-small: source https://developers.openai.com/api/docs/pricing
        EmbeddingPrice(provider: "openai", model: "text-embedding-3-small", input: 20_000_000, inputBatch: 10_000_000,
                       pairs: ["openai"]),
        // gemini/gemini-embedding-001: source https://ai.google.dev/gemini-api/docs/pricing
        EmbeddingPrice(provider: "google", model: "gemini-embedding-001", input: 150_000_000, inputBatch: 75_000_000,
                       pairs: ["google", "gemini", "vertex_ai-language-models"]),
        // voyage/voyage-3.5 (no batch price in the snapshot): Anthropic sells no embeddings and points to Voyage AI.
        EmbeddingPrice(provider: "voyage", model: "voyage-3.5", input: 60_000_000, inputBatch: nil,
                       pairs: ["anthropic", "voyage"]),
    ]
}
