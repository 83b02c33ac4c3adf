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

from tally_e2e import BIN, require

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
      - series: 'tally_generated_tokens_total{replica="a"}'
        values: '0+600x10'
      - series: 'tally_generated_tokens_total{replica="b"}'
        values: '0+1200x10'
      - series: 'tally_prefix_cache_queried_tokens_total{replica="a"}'
        values: '0+100x10'
      - series: 'tally_prefix_cache_hit_tokens_total{replica="a"}'
        values: '0+50x10'
      - series: 'tally_prefix_cache_queried_tokens_total{replica="b"}'
        values: '0+100x10'
      - series: 'tally_prefix_cache_hit_tokens_total{replica="b"}'
        values: '0+25x10'
      - series: 'tally_cost_local_usd_total{replica="a",model="m"}'
        values: '0+0.01x70'
    promql_expr_test:
      - expr: fleet:tally_generated_tokens:rate1m
        eval_time: 10m
        exp_samples:
          - labels: 'fleet:tally_generated_tokens:rate1m'
            value: 30
      - expr: replica:tally_generated_tokens:rate1m
        eval_time: 10m
        exp_samples:
          - labels: 'replica:tally_generated_tokens:rate1m{replica="a"}'
            value: 10
          - labels: 'replica:tally_generated_tokens:rate1m{replica="b"}'
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
