"""The server's log (swift-log): `--log-format json` writes one JSON object per line, one info line per finished
request with its id, tenant, tokens, timings and cost but never its text, and while busy a stats line like
vLLM's; `--log-level warning` leaves the info lines out."""
import json
import signal
import threading

import openai

from tally_e2e import MODEL_NAME, start_server

SECRET = "the pelican named Orwell guards the vault"


def run_and_stop(tmp_path, *flags):
    base, proc = start_server("--db", str(tmp_path / "usage.db"), "--api-key", "acme:k-acme", *flags)
    client = openai.OpenAI(base_url=base + "/v1", api_key="k-acme", max_retries=0)
    ids = []

    def ask(i):
        r = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": f"{SECRET} {i}"}],
                                           max_tokens=24, temperature=0)
        ids.append(r.id)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    return ids, proc.stdout.read()


def test_json_log_has_one_line_per_request_and_stats_and_no_prompt_text(tmp_path):
    ids, log = run_and_stop(tmp_path, "--log-format", "json", "--stats-seconds", "0.2")
    events = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is a JSON object
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in events)
    finished = {e["request_id"]: e for e in events if e["message"] == "request finished"}
    assert set(finished) == set(ids)
    for e in finished.values():
        assert e["level"] == "info" and e["tenant"] == "acme" and e["finish_reason"] in ("stop", "length")
        assert int(e["prompt_tokens"]) > 5 and 1 <= int(e["generated_tokens"]) <= 24
        assert float(e["cost_local_usd"]) > 0 and "queue_ms" in e and "decode_ms" in e
    stats = [e for e in events if e["message"] == "stats"]
    assert stats, "no stats line while requests ran"
    assert any(float(e["generation_tokens_per_s"]) > 0 for e in stats)
    assert {"running", "waiting", "kv_cache_usage_pct", "prefix_cache_hit_rate_pct", "prompt_tokens_per_s"} <= stats[0].keys()
    assert any(e["message"].startswith("serving ") for e in events)
    assert "pelican" not in log and "k-acme" not in log


def test_warning_level_leaves_out_the_info_lines(tmp_path):
    ids, log = run_and_stop(tmp_path, "--log-level", "warning", "--stats-seconds", "0.2")
    assert len(ids) == 6
    assert "request finished" not in log and " stats " not in log and "serving" not in log
