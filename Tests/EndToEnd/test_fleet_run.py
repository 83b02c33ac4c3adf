"""The scripted fleet run of bench/fleet/run.py, short: PostgreSQL, nginx with prefix affinity and 2 replicas
on loopback, a multi-turn shared-prefix workload, replica r1 killed after a third of the requests and
restarted. Every 200 response's usage record must be in PostgreSQL, and the per-replica report must add up.

    TALLY_TEST_POSTGRES=postgres://... TALLY_NGINX=... TALLY_NGINX_JS=... python3 -m pytest -q Tests/EndToEnd/test_fleet_run.py

Running the bench script's own code here keeps it working; its full run (and the hit-rate comparison with one
replica and with round-robin) is in README.
"""
import argparse
import importlib.util
import os

from tally_e2e import BIN, MODEL, ROOT, require

spec = importlib.util.spec_from_file_location("fleet_run", os.path.join(ROOT, "bench/fleet/run.py"))
fleet_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet_run)


def test_fleet_with_a_killed_replica_loses_no_usage_record():
    pg = require(os.environ.get("TALLY_TEST_POSTGRES"), "PostgreSQL (TALLY_TEST_POSTGRES)")
    nginx = require(os.environ.get("TALLY_NGINX"), "nginx (TALLY_NGINX, TALLY_NGINX_JS)")
    require(os.path.exists(MODEL) or None, "the default model (tally pull)")
    args = argparse.Namespace(tally=BIN, pg=pg, nginx=nginx, nginx_js=os.environ.get("TALLY_NGINX_JS"),
                              users=12, turns=2, prompts=6, clients=4, max_tokens=4)
    result = fleet_run.run(args, "affinity", 2, True)

    assert result["lost"] == 0
    assert result["ok"] + result["failed"] == 24
    assert result["ok"] >= 16  # only requests in flight on the killed replica may fail
    assert sum(v["requests"] for v in result["per_replica"].values()) >= result["ok"]
    # Later turns resend the conversation, so the fleet serves part of every prompt from cache.
    assert result["hit_rate"] > 0.3
    for replica in result["per_replica"]:
        assert replica in result["report"]
