"""Two replicas metering into one PostgreSQL database (`--db postgres://...`): every response a client got
with status 200 has its record there, also from the replica killed with -9, and `tally report` reads the
fleet's usage from the same URL.

    TALLY_TEST_POSTGRES=postgres://postgres@127.0.0.1:55432/postgres TALLY_BIN=.build/debug/tally \\
        python3 -m pytest -q Tests/EndToEnd/test_postgres_store.py

`.ci/run` starts PostgreSQL on loopback and sets TALLY_TEST_POSTGRES; in CI (CI set) a missing server fails.
"""
import json
import os
import signal
import subprocess
import uuid

import openai
import pytest

from tally_e2e import BIN, MODEL_NAME, start_server

ADMIN = os.environ.get("TALLY_TEST_POSTGRES")


def psql(url, sql):
    p = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture
def database():
    if not ADMIN:
        if os.environ.get("CI"):
            pytest.fail("TALLY_TEST_POSTGRES is not set; .ci/run starts PostgreSQL and sets it")
        pytest.skip("no PostgreSQL: set TALLY_TEST_POSTGRES")
    name = "tally_e2e_" + uuid.uuid4().hex
    psql(ADMIN, f"CREATE DATABASE {name}")
    yield ADMIN.rsplit("/", 1)[0] + "/" + name
    psql(ADMIN, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_two_replicas_meter_into_one_database(database):
    servers = [start_server("--db", database, "--replica", f"replica-{i}") for i in range(2)]
    ids = []
    try:
        for n in range(6):
            base = servers[n % 2][0]
            client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
            ids.append(client.completions.create(model=MODEL_NAME, prompt=f"Replica note {n}:", max_tokens=4,
                                                 temperature=0).id)
    finally:
        servers[0][1].send_signal(signal.SIGKILL)  # a crash: its records must already be there
        servers[0][1].wait(timeout=30)
        servers[1][1].send_signal(signal.SIGTERM)
        assert servers[1][1].wait(timeout=30) == 0
    stored = set(psql(database, "SELECT id FROM usage").split())
    assert set(ids) <= stored, f"lost: {set(ids) - stored}"
    assert psql(database, "SELECT version FROM tally_schema") == "1"
    hosts = psql(database, "SELECT host FROM server_runs ORDER BY host").split()
    assert hosts == ["replica-0", "replica-1"]

    p = subprocess.run([BIN, "report", "--db", database, "--format", "json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["total"]["requests"] == len(stored) >= 6


def test_an_unreachable_database_is_a_clear_start_up_error():
    from tally_e2e import free_port
    p = subprocess.run([BIN, "serve", "--db", "postgres://nobody@127.0.0.1:1/none", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "postgres://nobody@127.0.0.1:1/none" in p.stderr and "connect failed" in p.stderr and "Check that PostgreSQL runs there" in p.stderr
