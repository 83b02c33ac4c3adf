"""End to end metering: tenants (API keys), tags and a shared prompt prefix through the real `openai` client,
then `tally report` over the SQLite store; a budget refusing with 429; and `kill -9` under load leaving
one readable record for every request whose client got a complete response.

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_metering.py
"""
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import urllib.error
import urllib.request

import openai
import pytest

from tally_e2e import BIN, MODEL_NAME, cents, metrics, render_in_chromium, start_server

KEYS = ["sk-team-a", "sk-team-b"]
# Long enough to fill several 16-token KV blocks, so repeats of it are prefix-cache hits.
SYSTEM = ("You are the support assistant of a small bakery. Answer in one short sentence, politely, and never "
          "invent prices. The bakery opens at seven, closes at six, and sells bread, cakes and coffee.")


def tenant(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


def report(db, *flags):
    p = subprocess.run([BIN, "report", "--db", str(db), *flags], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def post_outcome(base, key, body):
    """POST /v1/outcomes; returns (status, JSON body)."""
    request = urllib.request.Request(base + "/v1/outcomes", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_tenants_shared_prefix_and_report(tmp_path):
    db = tmp_path / "usage.db"
    keyfile = tmp_path / "keys"
    # Named tenants: one by its key, one by the key's SHA-256 only (the file need not hold the key).
    keyfile.write_text(f"# tenants\nteam-a:{KEYS[0]}\nteam-b:sha256:{hashlib.sha256(KEYS[1].encode()).hexdigest()}\n")
    base, proc = start_server("--db", str(db), "--api-key-file", str(keyfile))
    try:
        a = openai.OpenAI(base_url=base + "/v1", api_key=KEYS[0], timeout=60, max_retries=0)
        b = openai.OpenAI(base_url=base + "/v1", api_key=KEYS[1], timeout=60, max_retries=0)
        usages = []
        for question in ["When do you open?", "Do you sell coffee?", "When do you close?"]:
            r = a.chat.completions.create(model=MODEL_NAME, max_tokens=12, temperature=0,
                                          extra_headers={"X-Tally-Tags": "support", "X-Tally-Session": "ticket-1"},
                                          messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])
            usages.append(r.usage)
        # The system prompt is shared: the second and third requests reuse its KV blocks.
        assert usages[0].prompt_tokens_details.cached_tokens == 0
        assert all(u.prompt_tokens_details.cached_tokens >= 32 for u in usages[1:])
        cost = usages[0].model_extra["cost"]
        assert cost["currency"] == "USD" and cost["local"] > 0 and cost["gpu_equivalent"] > 0
        assert all(p["standard"] > 0 and p["batch"] > 0 for p in cost["api_equivalent"].values())

        stream = b.completions.create(model=MODEL_NAME, prompt="Bread is", max_tokens=8, temperature=0, user="nightly-job",
                                      stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert chunks[-1].usage.model_extra["cost"]["local"] > 0
        b.completions.create(model=MODEL_NAME, prompt="Cake is", max_tokens=8, temperature=0, user="nightly-job")

        # The application marks the workflow resolved; another tenant cannot mark it.
        status, body = post_outcome(base, KEYS[0], {"session_id": "ticket-1", "label": "resolved", "value": 1})
        assert status == 200 and body["calls"] == 3 and body["object"] == "outcome"
        status, body = post_outcome(base, KEYS[1], {"session_id": "ticket-1", "label": "resolved"})
        assert status == 404 and body["error"]["param"] == "session_id"

        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).completions.create(model=MODEL_NAME, prompt="x", max_tokens=1)

        local_total = float(metric(base, 'tally_cost_local_usd_total{model_name="SmolLM2-135M-Instruct-Q8_0"}')[0].split()[-1])
        assert local_total > 0
        assert metrics(base)["tally_usage_records_total"] == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    by_tenant = json.loads(report(db, "--by", "tenant", "--format", "json"))
    assert by_tenant["total"]["requests"] == 5
    assert by_tenant["total"]["cached_tokens"] == sum(u.prompt_tokens_details.cached_tokens for u in usages)
    assert by_tenant["total"]["cache_hit_rate"] > 0
    groups = {g["key"]: g for g in by_tenant["groups"]}
    assert set(groups) == {"team-a", "team-b"}
    assert groups["team-a"]["requests"] == 3 and groups["team-b"]["requests"] == 2
    # Cost per workflow and per outcome: the three ticket-1 calls, resolved once.
    assert by_tenant["workflows"]["workflows"] == 1 and by_tenant["workflows"]["calls_per_workflow"] == 3
    outcomes = {o["label"]: o for o in by_tenant["outcomes"]}
    assert outcomes["resolved"]["outcomes"] == 1 and outcomes["resolved"]["line"]["requests"] == 3
    assert outcomes["resolved"]["bill_per_outcome_nano_usd"] == outcomes["resolved"]["line"]["bill"]["total_nano_usd"] > 0
    assert outcomes["(no outcome)"]["line"]["requests"] == 2
    by_user = {g["key"]: g["requests"] for g in json.loads(report(db, "--by", "user", "--format", "json"))["groups"]}
    assert by_user == {"nightly-job": 2, "(no user)": 3}
    by_session = {g["key"]: g["requests"] for g in json.loads(report(db, "--by", "session", "--format", "json"))["groups"]}
    assert by_session == {"ticket-1": 3, "(no session)": 2}
    assert all(api["standard"]["total_nano_usd"] > 0 for api in by_tenant["total"]["apis"])
    # The server run is recorded: the bill covers the hours it was up, not the span of its requests.
    runs = by_tenant["utilization"]
    assert runs["runs"] == 1 and runs["machines"] == 1 and runs["provisioned_micros"] >= runs["busy_micros"] > 0
    assert by_tenant["verdict"]["bill_nano_usd"] == runs["bill_nano_usd"] > 0
    assert by_tenant["break_even"] and by_tenant["what_if"][1]["factor"] == 10
    # The key itself is never stored.
    wal = db.parent / "usage.db-wal"
    raw = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert KEYS[0].encode() not in raw and KEYS[1].encode() not in raw

    by_tag = list(csv.DictReader(io.StringIO(report(db, "--by", "tag", "--format", "csv"))))
    assert {row["key"]: row["requests"] for row in by_tag if row["group_by"] == "tag"} == {"support": "3", "(untagged)": "2"}
    text = report(db)
    assert "Break-even" in text and "prices" in text and "assumed" in text
    html = tmp_path / "report.html"
    report(db, "--by", "tenant", "--format", "html", "--output", str(html))
    page = html.read_text()
    # One self-contained file: inline SVG charts, nothing fetched from elsewhere.
    assert page.lstrip().startswith("<!DOCTYPE html>") and page.count("<svg") >= 2
    assert "<script src" not in page and "<link" not in page

    # The page as a finance lead sees it, in a real browser: no console errors, every table within 1000 px,
    # four charts, and the verdict's figures equal to the JSON report's.
    shown = render_in_chromium(html)
    assert shown["errors"] == [] and shown["console"] == [], shown
    assert shown["svgs"] == 4 and shown["tables"] and max(shown["tables"]) <= 1000, shown["tables"]
    verdict, j = shown["verdict"], by_tenant
    u = j["utilization"]
    assert f"ran {u['provisioned_micros'] / 3.6e9:.3f} h" in verdict
    assert f"serving {j['total']['requests']:,} requests ({j['total']['total_tokens']:,} tokens)" in verdict
    assert f"Self-hosting cost {cents(j['verdict']['bill_nano_usd'])}, a fixed hourly cost" in verdict
    for api in j["total"]["apis"]:
        assert (f"{api['model']} {cents(api['standard']['total_nano_usd'])} ({cents(api['uncached']['total_nano_usd'])} "
                f"without prompt caching, {cents(api['batch']['total_nano_usd'])} batch)") in verdict
    assert f"The cheapest API, {j['verdict']['cheapest_api']}" in verdict or "cheaper than every API" in verdict
    assert f"{j['verdict']['break_even_tokens_per_month']:,} tokens a month" in verdict


def test_budget_refuses_with_429(tmp_path):
    budgets = tmp_path / "budgets.json"
    budgets.write_text(json.dumps({"tenants": {tenant(KEYS[1]): {"max_output_tokens": 4}}}))
    keyfile = tmp_path / "keys"
    keyfile.write_text("\n".join(KEYS) + "\n")
    base, proc = start_server("--db", str(tmp_path / "usage.db"), "--api-key-file", str(keyfile), "--budgets", str(budgets))
    try:
        b = openai.OpenAI(base_url=base + "/v1", api_key=KEYS[1], timeout=60, max_retries=0)
        with pytest.raises(openai.RateLimitError) as e:
            b.completions.create(model=MODEL_NAME, prompt="Bread is", max_tokens=10)
        assert e.value.body["code"] == "budget_exceeded" and "cap of 4" in e.value.body["message"]
        r = b.completions.create(model=MODEL_NAME, prompt="Bread is", temperature=0, extra_body={"ignore_eos": True})
        assert r.usage.completion_tokens == 4 and r.choices[0].finish_reason == "length"
        a = openai.OpenAI(base_url=base + "/v1", api_key=KEYS[0], timeout=60, max_retries=0)
        assert a.completions.create(model=MODEL_NAME, prompt="Bread is", max_tokens=10, temperature=0, extra_body={"ignore_eos": True}).usage.completion_tokens == 10
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_kill_9_under_load_keeps_every_completed_record(tmp_path):
    db = tmp_path / "usage.db"
    base, proc = start_server("--db", str(db))
    completed, lock = [], threading.Lock()
    enough = threading.Event()

    def client(i):
        c = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=30, max_retries=0)
        try:
            for n in range(1000):  # until the kill cuts it off
                if i % 2:
                    for chunk in c.completions.create(model=MODEL_NAME, prompt=f"Story number {i}.{n}:", max_tokens=16 + i,
                                                       temperature=0, stream=True, extra_body={"ignore_eos": True}):
                        rid = chunk.id
                    # The stream ended with [DONE]: the client got a complete response.
                else:
                    rid = c.completions.create(model=MODEL_NAME, prompt=f"Note {i}.{n}:", max_tokens=8 + i, temperature=0,
                                               extra_body={"ignore_eos": True}).id  # a 200 with its body
                with lock:
                    completed.append(rid)
                    if len(completed) >= 24:
                        enough.set()
        except Exception:
            pass  # cut off by the kill: no complete response, no promise

    # 16 clients, half streaming, each sending requests back to back until the kill.
    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    assert enough.wait(timeout=180), "too few requests completed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=60)
    with lock:
        done = list(completed)
    assert 24 <= len(done)

    # The store is sound SQLite after the crash, and has every request a client got a 200 for.
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = {row[0] for row in con.execute("SELECT id FROM usage")}
    con.close()
    assert set(done) <= ids, f"lost: {set(done) - ids}"

    # A restart opens the same store and keeps adding to it; the report reads it.
    base, proc = start_server("--db", str(db))
    try:
        openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=30, max_retries=0).completions.create(
            model=MODEL_NAME, prompt="After the crash", max_tokens=4)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    total = json.loads(report(db, "--format", "json"))["total"]
    assert total["requests"] >= len(done) + 1
