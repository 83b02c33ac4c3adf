// Dated data: API token prices collected 2026-11-22, verbatim from shared/reference/api-prices-2026-11.json.
// Embedded so the single `tally` binary needs no resource bundle. A newer snapshot is a new file beside this
// one (and `shippedPriceTables` names it); this one is never edited, so old reports can be reproduced.

extension PriceTable {
    /// Name a report prints for this table.
    package static let shipped2026_11Name = "api-prices-2026-11.json (shipped)"

    package static let shipped2026_11JSON = #"""
{
 "format": "USD per 1M tokens; *_batch = asynchronous batch API tier; cached_input = cache read; cache_write = cache creation (Anthropic 5-minute cache)",
 "as_of": "2026-11-22",
 "collected_from": "LiteLLM price map model_prices_and_context_window_backup.json in the litellm 1.109.1 wheel on PyPI; each entry's source is the vendor pricing page it names. Prices change: treat this as a dated snapshot, never as constants.",
 "models": [
  {
   "provider": "openai",
   "model": "gpt-5-nano",
   "input": 0.05,
   "cached_input": 0.005,
   "output": 0.4,
   "input_batch": 0.025,
   "output_batch": 0.2,
   "source": "https://developers.openai.com/api/docs/pricing",
   "deprecation_date": "2026-12-11"
  },
  {
   "provider": "openai",
   "model": "gpt-4.1-nano",
   "input": 0.1,
   "cached_input": 0.025,
   "output": 0.4,
   "input_batch": 0.05,
   "output_batch": 0.2,
   "source": "https://developers.openai.com/api/docs/pricing",
   "deprecation_date": "2026-10-23"
  },
  {
   "provider": "openai",
   "model": "gpt-4o-mini",
   "input": 0.15,
   "cached_input": 0.075,
   "output": 0.6,
   "input_batch": 0.075,
   "output_batch": 0.3,
   "source": "https://developers.openai.com/api/docs/pricing"
  },
  {
   "provider": "openai",
   "model": "gpt-5-mini",
   "input": 0.25,
   "cached_input": 0.025,
   "output": 2.0,
   "input_batch": 0.125,
   "output_batch": 1.0,
   "source": "https://developers.openai.com/api/docs/pricing",
   "deprecation_date": "2026-12-11"
  },
  {
   "provider": "openai",
   "model": "gpt-4.1-mini",
   "input": 0.4,
   "cached_input": 0.1,
   "output": 1.6,
   "input_batch": 0.2,
   "output_batch": 0.8,
   "source": "https://developers.openai.com/api/docs/pricing"
  },
  {
   "provider": "google",
   "model": "gemini-2.5-flash-lite",
   "input": 0.1,
   "cached_input": 0.01,
   "output": 0.4,
   "input_batch": 0.05,
   "output_batch": 0.2,
   "source": "https://ai.google.dev/gemini-api/docs/pricing"
  },
  {
   "provider": "google",
   "model": "gemini-2.5-flash",
   "input": 0.3,
   "cached_input": 0.03,
   "output": 2.5,
   "input_batch": 0.15,
   "output_batch": 1.25,
   "source": "https://ai.google.dev/gemini-api/docs/pricing"
  },
  {
   "provider": "anthropic",
   "model": "claude-haiku-4-5",
   "input": 1.0,
   "cached_input": 0.1,
   "output": 5.0,
   "input_batch": 0.5,
   "output_batch": 2.5,
   "source": "https://platform.claude.com/docs/en/about-claude/pricing",
   "cache_write": 1.25
  }
 ]
}
"""#
}
