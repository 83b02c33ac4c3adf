"""Speculative decoding by prompt lookup (`--draft-tokens`) over HTTP: the same completion as a server without
it, the request's timings carry the drafts proposed and kept, and /metrics counts them under vLLM's names."""
import signal

import openai

from tally_e2e import MODEL_NAME, metrics, start_server

NOTICE = ("The library will be closed on Monday for the installation of new shelves in the reading room. "
          "Books that are due on Monday may be returned on Tuesday without a fine.")


def complete(base):
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": f"Copy this exactly: {NOTICE}"}],
                                       max_tokens=48, temperature=0)
    return r.choices[0].message.content, r.usage.model_extra["timings"]


def test_drafts_leave_the_answer_as_it_is_and_are_counted():
    plain_base, plain = start_server("--no-metering")
    try:
        expected, timings = complete(plain_base)
        assert "draft_tokens" not in timings
    finally:
        plain.send_signal(signal.SIGTERM)
        plain.wait(timeout=60)
    base, proc = start_server("--no-metering", "--draft-tokens", "6")
    try:
        text, timings = complete(base)
        assert text == expected
        assert timings["draft_tokens"] > 0 and 0 < timings["accepted_draft_tokens"] <= timings["draft_tokens"]
        assert abs(timings["draft_acceptance_rate"] - timings["accepted_draft_tokens"] / timings["draft_tokens"]) < 0.001
        m = metrics(base)
        assert m["tally_spec_decode_num_draft_tokens_total"] == timings["draft_tokens"]
        assert m["tally_spec_decode_num_accepted_tokens_total"] == timings["accepted_draft_tokens"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
