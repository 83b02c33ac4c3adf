"""Tenants do not share the prefix cache: with API keys, tenant B's request for tenant A's long prompt finds
nothing cached (so neither cached_tokens nor time to first token tells B what A asked), A's own repeat does;
`--shared-prefix-cache` shares it on purpose.

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_isolation.py
"""
import signal

import openai

from tally_e2e import MODEL_NAME, start_server

# Several 16-token KV blocks long, so a repeat is a prefix-cache hit.
LONG = ("Internal memo for the finance team only: the quarterly numbers show revenue of four million, margins "
        "of twelve percent, and a plan to close the Lisbon office in March. Summary:")


def cached_tokens(tmp_path, *flags):
    """(A's repeat, B's request) cached prompt tokens for A's prompt, on a fresh server."""
    keys = tmp_path / "keys"
    keys.write_text("alice:sk-alice\nbob:sk-bob\n")
    base, proc = start_server("--db", str(tmp_path / "usage.db"), "--api-key-file", str(keys), *flags)
    try:
        def ask(key):
            client = openai.OpenAI(base_url=base + "/v1", api_key=key, timeout=60, max_retries=0)
            return client.completions.create(model=MODEL_NAME, prompt=LONG, max_tokens=1, temperature=0).usage
        first = ask("sk-alice")
        assert first.prompt_tokens >= 32 and first.prompt_tokens_details.cached_tokens == 0
        return ask("sk-alice").prompt_tokens_details.cached_tokens, ask("sk-bob").prompt_tokens_details.cached_tokens
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_each_tenant_has_its_own_prefix_cache(tmp_path):
    own, other = cached_tokens(tmp_path)
    assert own >= 32 and other == 0


def test_a_shared_prefix_cache_is_shared_on_purpose(tmp_path):
    own, other = cached_tokens(tmp_path, "--shared-prefix-cache")
    assert own >= 32 and other >= 32
