"""Faults the server must survive: a usage store it cannot open (a start-up error, before the model loads),
50 streaming clients that drop after their first chunk (every slot and KV block comes back, each request
is recorded as aborted with the tokens computed so far), a streaming client that reads nothing (its
connection is closed after --write-timeout, its request aborted and its blocks freed), and SIGTERM with a
request in flight (new connections refused, the request finishes within --drain-seconds, its record is
written, exit 0).

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_faults.py
"""
import json
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request

import openai
import pytest

from tally_e2e import BIN, MODEL, MODEL_NAME, metrics, start_server


@pytest.mark.parametrize("setup,fragment", [
    (lambda d: str(d / "file" / "usage.db"), "cannot create the folder"),
    (lambda d: (d / "garbage.db").write_bytes(b"this is not a database" * 100) and str(d / "garbage.db"), "usage store"),
])
def test_a_store_that_cannot_be_opened_stops_the_start(tmp_path, setup, fragment):
    (tmp_path / "file").write_text("a file where a folder should be")
    db = setup(tmp_path)
    p = subprocess.run([BIN, "serve", "--model", MODEL, "--port", "18097", "--db", db], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and fragment in p.stderr, p.stderr
    assert "weights:" not in p.stderr and "serving" not in p.stderr  # refused before the model loaded


@pytest.fixture
def small_fs(tmp_path):
    """A real 1 MiB file system (tmpfs) for the usage store, so the disk can really fill up."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(path):
    """Writes to `path` until the file system says it is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_loses_records_counted_and_logged_by_id_and_serving_goes_on(small_fs):
    db = small_fs / "usage.db"
    base, proc = start_server("--db", str(db))
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)

    def ask():
        return client.completions.create(model=MODEL_NAME, prompt="Hello there, how", max_tokens=2, temperature=0).id

    try:
        before = [ask()]
        fill(small_fs / "filler")
        during = [ask() for _ in range(12)]  # every one answered 200 (the client raises otherwise)
        m = metrics(base)
        lost = m["tally_usage_records_lost_total"]
        assert lost >= 1 and m["tally_usage_records_total"] + lost == 13, m
        (small_fs / "filler").unlink()  # space again: records are written again
        after = [ask() for _ in range(2)]
        assert metrics(base)["tally_usage_records_lost_total"] == lost
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    log = proc.stdout.read()
    con = sqlite3.connect(db)
    stored = {row[0] for row in con.execute("SELECT id FROM usage")}
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    logged_lost = {m.group(1) for m in re.finditer(r"tally\.meter: usage record (\S+) lost ", log)}
    assert len(logged_lost) == lost
    # Every response is either stored or logged as lost by its id; none both, none neither.
    assert set(before + after) <= stored
    assert set(during) == (stored & set(during)) | logged_lost and not (stored & logged_lost)


def test_a_read_only_store_at_start_is_a_clear_start_up_error(small_fs):
    db = small_fs / "usage.db"
    base, proc = start_server("--db", str(db))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    p = subprocess.run([BIN, "serve", "--model", MODEL, "--port", "18098", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "usage store" in p.stderr and "writable" in p.stderr, p.stderr
    assert "weights:" not in p.stderr


def test_fifty_streaming_clients_that_drop_free_everything(tmp_path):
    db = tmp_path / "usage.db"
    base, proc = start_server("--db", str(db))
    port = int(base.rsplit(":", 1)[1])
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 400, "stream": True, "ignore_eos": True}).encode()
    request = (b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))
    first_chunks = []

    def drop_after_first_chunk():
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(60)
            s.sendall(request)
            received = b""
            while b"data: " not in received:
                received += s.recv(4096)
            first_chunks.append(received)
        # Closed here: the client is gone mid-stream.

    try:
        threads = [threading.Thread(target=drop_after_first_chunk) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(first_chunks) == 50
        deadline = time.time() + 20
        while time.time() < deadline:
            m = metrics(base)
            if m["tally_num_requests_running"] == 0 and m["tally_num_requests_waiting"] == 0 and m["tally_kv_cache_blocks_used"] == 0:
                break
            time.sleep(0.1)
        assert (m["tally_num_requests_running"], m["tally_num_requests_waiting"], m["tally_kv_cache_blocks_used"]) == (0, 0, 0), m
        assert m["tally_usage_records_total"] == 50 and m["tally_usage_records_lost_total"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT finish_reason, prompt_tokens, generated_tokens FROM usage").fetchall()
    con.close()
    assert len(rows) == 50
    # Aborted, not finished: each stopped well before 400 tokens, with what it had computed recorded.
    assert all(reason == "aborted" and prompt > 0 and 1 <= generated < 400 for reason, prompt, generated in rows), rows


def test_a_streaming_client_that_reads_nothing_is_cut_off_after_the_write_timeout(tmp_path):
    db = tmp_path / "usage.db"
    # A 16 KiB kernel send buffer, so the server's writes back up within seconds rather than after 4 MiB.
    base, proc = start_server("--db", str(db), "--write-timeout", "2", "--socket-send-buffer", "16384")
    port = int(base.rsplit(":", 1)[1])
    # 3,000 tokens: about 600 KB of events, far more than the buffers hold.
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 3000, "stream": True, "ignore_eos": True}).encode()
    request = (b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, so the server's writes back up
            s.connect(("127.0.0.1", port))
            s.sendall(request)
            started = time.time()
            deadline = started + 60
            while time.time() < deadline:  # reading nothing
                m = metrics(base)
                if m["tally_usage_records_total"] == 1:
                    break
                time.sleep(0.2)
            assert (m["tally_num_requests_running"], m["tally_kv_cache_blocks_used"]) == (0, 0), m
            # The server closed the connection: after what the buffers held, the client reads its end.
            s.settimeout(10)
            received = b""
            try:
                while chunk := s.recv(65536):
                    received += chunk
            except ConnectionResetError:
                pass
            assert b"data: [DONE]" not in received
        # The server still answers everyone else.
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
        assert client.completions.create(model=MODEL_NAME, prompt="Hi", max_tokens=2).choices[0].text is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT finish_reason, generated_tokens FROM usage ORDER BY rowid").fetchall()
    con.close()
    reason, generated = rows[0]
    assert reason == "aborted" and 1 <= generated < 3000, rows


def test_sigterm_drains_in_flight_requests_then_exits_0(tmp_path):
    db = tmp_path / "usage.db"
    base, proc = start_server("--db", str(db), "--drain-seconds", "60")
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=120, max_retries=0)
    started, result = threading.Event(), {}

    def long_request():
        stream = client.completions.create(model=MODEL_NAME, prompt="Count:", max_tokens=300, temperature=0,
                                           stream=True, extra_body={"ignore_eos": True})
        text = ""
        for chunk in stream:
            started.set()
            if chunk.choices:
                text += chunk.choices[0].text
                if chunk.choices[0].finish_reason:
                    result["finish"], result["id"] = chunk.choices[0].finish_reason, chunk.id

    t = threading.Thread(target=long_request)
    t.start()
    assert started.wait(timeout=60)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no longer accepting
        urllib.request.urlopen(base + "/health", timeout=5)
    t.join(timeout=120)
    assert proc.wait(timeout=120) == 0
    assert result.get("finish") == "length", result  # finished, not cut off
    con = sqlite3.connect(db)
    row = con.execute("SELECT finish_reason, generated_tokens FROM usage WHERE id = ?", (result["id"],)).fetchone()
    stopped = con.execute("SELECT stopped FROM server_runs").fetchall()
    con.close()
    assert row == ("length", 300) and stopped == [(1,)]
