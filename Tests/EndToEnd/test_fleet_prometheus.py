"""Prometheus for a fleet: `tally fleet prometheus` and `tally fleet rules` pass `promtool check config` and
`promtool check rules`, and `promtool test rules` computes the fleet's figures from two replicas' series
(tokens per second, prefix-cache hit ratio, local cost per hour) as the rules promise.

    TALLY_PROMTOOL=/path/to/promtool TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_fleet_prometheus.py

promtool comes from Debian's `prometheus` package; `.ci/run` unpacks it (without installing or starting the
server) and sets TALLY_PROMTOOL. In CI (CI set) a missing promtool fails.
"""
import os
import shutil
import subprocess

import pytest

from tally_e2e import BIN, MODEL_NAME, require, start_server

PROMTOOL = os.environ.get("TALLY_PROMTOOL") or shutil.which("promtool")

# Two replicas over 10 minutes, one sample a minute: a generates 600 tokens a minute (10/s), b 1,200 (20/s);
# a finds 50 of every 100 queried prompt tokens in its cache, b 25 of 100; a's local cost grows $0.60 an
# hour ($0.01 a minute).
TEST = """
rule_files:
  - tally-rules.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'tally_generation_tokens_total{replica="a"}'
        values: '0+600x10'
      - series: 'tally_generation_tokens_total{replica="b"}'
        values: '0+1200x10'
      - series: 'tally_prefix_cache_queries_total{replica="a"}'
        values: '0+100x10'
      - series: 'tally_prefix_cache_hits_total{replica="a"}'
        values: '0+50x10'
      - series: 'tally_prefix_cache_queries_total{replica="b"}'
        values: '0+100x10'
      - series: 'tally_prefix_cache_hits_total{replica="b"}'
        values: '0+25x10'
      - series: 'tally_cost_local_usd_total{replica="a",model_name="m"}'
        values: '0+0.01x70'
    promql_expr_test:
      - expr: fleet:tally_generation_tokens:rate1m
        eval_time: 10m
        exp_samples:
          - labels: 'fleet:tally_generation_tokens:rate1m'
            value: 30
      - expr: replica:tally_generation_tokens:rate1m
        eval_time: 10m
        exp_samples:
          - labels: 'replica:tally_generation_tokens:rate1m{replica="a"}'
            value: 10
          - labels: 'replica:tally_generation_tokens:rate1m{replica="b"}'
            value: 20
      - expr: fleet:tally_prefix_cache_hit_ratio:rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'fleet:tally_prefix_cache_hit_ratio:rate5m'
            value: 0.375
      - expr: round(fleet:tally_cost_local_usd:per_hour, 0.001)  # rate() leaves a rounding error in the 16th digit
        eval_time: 70m
        exp_samples:
          - labels: '{}'
            value: 0.6
"""


@pytest.fixture
def promtool():
    return require(PROMTOOL, "promtool (TALLY_PROMTOOL)")


def run(*args, cwd=None):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_fleet_config_and_rules_pass_promtool(promtool, tmp_path):
    (tmp_path / "tally-rules.yml").write_text(run(BIN, "fleet", "rules"))
    config = run(BIN, "fleet", "prometheus", "--replica", "a=127.0.0.1:8081", "--replica", "b=127.0.0.1:8082")
    assert 'replica: a' in config and '"127.0.0.1:8082"' in config
    (tmp_path / "prometheus.yml").write_text(config)
    assert "13 rules found" in run(promtool, "check", "rules", "tally-rules.yml", cwd=tmp_path)
    assert "is valid prometheus config" in run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    (tmp_path / "test.yml").write_text(TEST)
    assert "SUCCESS" in run(promtool, "test", "rules", "test.yml", cwd=tmp_path)


def test_a_bad_replica_is_refused():
    p = subprocess.run([BIN, "fleet", "prometheus", "--replica", "no-address"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "NAME=HOST:PORT" in p.stderr


def test_a_replicas_metrics_pass_promtool_check_metrics(promtool, tmp_path):
    """What a replica serves on /metrics after real requests (metered, one refused) lints clean, with vLLM's
    names under the tally_ prefix, the model_name label and the process's own figures."""
    import json
    import urllib.error
    import urllib.request
    base, proc = start_server("--db", str(tmp_path / "usage.db"))
    try:
        for body in [{"model": MODEL_NAME, "prompt": "The capital of France is", "max_tokens": 4},
                     {"model": MODEL_NAME, "prompt": "x", "max_tokens": -1}]:
            request = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=60).read()
            except urllib.error.HTTPError as e:
                assert e.code == 400
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "" and p.stderr.strip() == "", p.stdout + p.stderr
    label = f'model_name="{MODEL_NAME}"'
    for series in ["tally_prompt_tokens_total", "tally_generation_tokens_total", "tally_prefix_cache_queries_total",
                   "tally_prefix_cache_hits_total", "tally_kv_cache_usage_perc", "tally_num_requests_running",
                   "tally_num_requests_waiting", "tally_num_preemptions_total", "tally_time_to_first_token_seconds_bucket",
                   "tally_e2e_request_latency_seconds_count", "tally_request_queue_time_seconds_count",
                   "tally_request_prompt_tokens_count", "tally_cost_local_usd_total"]:
        assert any(line.startswith(series + "{") and label in line for line in text.splitlines()), series
    assert f'tally_request_success_total{{{label},finished_reason="length"}} 1' in text
    assert f'tally_requests_rejected_total{{{label},status="400"}} 1' in text
    resident = next(line for line in text.splitlines() if line.startswith("process_resident_memory_bytes "))
    assert float(resident.split()[1]) > 50e6  # the model's weights are mapped and touched
