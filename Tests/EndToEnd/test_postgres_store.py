"""Two replicas metering into one PostgreSQL database (`--db postgres://...`): every response a client got
with status 200 has its record there, also from the replica killed with -9, and `tally report` reads the
fleet's usage from the same URL. With PostgreSQL unreachable for 30 seconds under load (a TCP proxy in
between cuts every connection), a replica keeps serving, spools its records locally and drains them when
PostgreSQL answers again: none lost, none counted twice.

    TALLY_TEST_POSTGRES=postgres://postgres@127.0.0.1:55432/postgres TALLY_BIN=.build/debug/tally \\
        python3 -m pytest -q Tests/EndToEnd/test_postgres_store.py

`.ci/run` starts PostgreSQL on loopback and sets TALLY_TEST_POSTGRES; in CI (CI set) a missing server fails.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import openai
import pytest

from tally_e2e import BIN, MODEL_NAME, require, start_server

ADMIN = os.environ.get("TALLY_TEST_POSTGRES")


def psql(url, sql):
    p = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture
def database():
    require(ADMIN, "PostgreSQL (TALLY_TEST_POSTGRES)")
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
    assert psql(database, "SELECT version FROM tally_schema") == "3"  # migrations: the table, replica, kind
    hosts = psql(database, "SELECT host FROM server_runs ORDER BY host").split()
    assert hosts == ["replica-0", "replica-1"]

    p = subprocess.run([BIN, "report", "--db", database, "--format", "json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["total"]["requests"] == len(stored) >= 6
    # The fleet's usage by replica: each served 3 of the 6 (the killed one's records included).
    p = subprocess.run([BIN, "report", "--db", database, "--by", "replica", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    groups = {g["key"]: g["requests"] for g in json.loads(p.stdout)["groups"]}
    assert groups == {"replica-0": 3, "replica-1": 3}


def test_an_unreachable_database_is_a_clear_start_up_error():
    from tally_e2e import free_port
    p = subprocess.run([BIN, "serve", "--db", "postgres://nobody@127.0.0.1:1/none", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "postgres://nobody@127.0.0.1:1/none" in p.stderr and "connect failed" in p.stderr and "Check that PostgreSQL runs there" in p.stderr


class CuttableProxy:
    """TCP proxy on loopback to PostgreSQL; `cut()` drops every connection and refuses new ones until `heal()`."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets, self.lock = [], threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.open = False
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets = []

    def heal(self):
        self.open = True

    def close(self):
        self.cut()
        self.listener.close()


def test_postgres_unreachable_for_30_seconds_loses_nothing(database, tmp_path):
    host_port = database.split("@", 1)[1].split("/", 1)[0]
    proxy = CuttableProxy(host_port.split(":")[0], int(host_port.split(":")[1]))
    through_proxy = database.replace(host_port, f"127.0.0.1:{proxy.port}")
    spool = tmp_path / "spool.db"
    base, proc = start_server("--db", through_proxy, "--spool", str(spool), "--replica", "spooler")
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
    ids = []
    try:
        def ask(n):
            ids.append(client.completions.create(model=MODEL_NAME, prompt=f"Spool note {n}:", max_tokens=2, temperature=0).id)
        for n in range(3):
            ask(n)
        proxy.cut()
        cut_at = time.time()
        n = 3
        while time.time() - cut_at < 30:  # requests keep getting answered while PostgreSQL is unreachable
            ask(n)
            n += 1
        during = len(ids) - 3
        proxy.heal()
        for n in range(n, n + 3):
            ask(n)
        # The drainer moves the spool within a few retry intervals.
        deadline = time.time() + 90
        while time.time() < deadline:
            stored = psql(database, "SELECT id FROM usage").split()
            if set(ids) <= set(stored):
                break
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proxy.close()
    log = proc.stdout.read()
    assert "spooling to" in log and "usage spool drained" in log, log
    stored = psql(database, "SELECT id FROM usage").split()
    assert during >= 5
    assert set(ids) <= set(stored), f"lost: {len(set(ids) - set(stored))} of {len(ids)}"
    assert len(stored) == len(set(stored)) == len(ids)  # each once
    spool_left = subprocess.run(["python3", "-c", f"import sqlite3; print(sqlite3.connect('{spool}').execute('SELECT COUNT(*) FROM usage').fetchone()[0])"],
                                capture_output=True, text=True).stdout.strip()
    assert spool_left == "0"
