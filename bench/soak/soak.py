"""Soak: 16 clients of a mixed workload against `tally serve` for a bounded time, sampling the server's
resident memory and request latency every minute.

    python3 bench/soak/soak.py [--tally .build/release/tally] [--minutes 30] [--clients 16]

Workload, per request chosen at random (seeded): short or long prompt, streaming or not, and one in ten
streaming requests dropped by its client after the first chunk. Prints a line per minute (RSS MiB,
requests, p50 and p99 latency, errors) and a summary: RSS drift after warm-up (goal <= 5 %; warm-up is
the first --warmup-minutes, 5 by default, while the KV pool's pages are first touched),
errors (goal 0), stuck requests (running + waiting 10 s after the load stops; goal 0), and usage records
missing for responses received whole with status 200 (matched by id in the usage database; goal 0).
"""
import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORT = "Write one sentence about bread."
LONG = " ".join(["The quarterly report covers revenue, costs, hiring, and the plans for the next year."] * 20)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.split()[-1])
    return 0.0


def one_request(base, rng):
    body = {"prompt": LONG if rng.random() < 0.3 else SHORT, "max_tokens": rng.choice([8, 32, 64]), "temperature": 0.7,
            "seed": rng.randrange(1 << 30)}
    stream = rng.random() < 0.5
    drop = stream and rng.random() < 0.1
    body["stream"] = stream
    request = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        if drop:
            r.readline()  # the first event, then the client goes away
            return None
        data = r.read()
    if not stream:
        response = json.loads(data)
        response["choices"][0]["text"]
        return response["id"]
    if not data.rstrip().endswith(b"data: [DONE]"):
        raise RuntimeError("stream did not end with [DONE]")
    return json.loads(data.split(b"\n\n")[0][len(b"data: "):])["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf"))
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup-minutes", type=int, default=5)
    args = ap.parse_args()
    assert 0 < args.minutes <= 120, "bounded: at most 120 minutes"

    port = free_port()
    db = os.path.join(tempfile.mkdtemp(prefix="tally-soak-"), "usage.db")
    server = subprocess.Popen([args.tally, "serve", "--model", args.model, "--port", str(port), "--db", db],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    stop = time.time() + args.minutes * 60
    latencies, errors, ids, lock = [], [], [], threading.Lock()

    def client(i):
        rng = random.Random(args.seed * 1000 + i)
        while time.time() < stop:
            start = time.time()
            try:
                completed = one_request(base, rng)
                with lock:
                    latencies.append(time.time() - start)
                    if completed:
                        ids.append(completed)
            except Exception as e:  # counted, never fatal
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    samples = []
    try:
        minute = 0
        while time.time() < stop:
            time.sleep(min(60, max(0, stop - time.time())))
            minute += 1
            with lock:
                window, latencies[:] = list(latencies), []
                error_count = len(errors)
            rss = rss_mib(server.pid)
            q = statistics.quantiles(window, n=100) if len(window) >= 2 else [0] * 99
            samples.append(rss)
            print(f"minute {minute:3d}  RSS {rss:7.1f} MiB  requests {len(window):5d}  p50 {q[49]:6.3f} s  "
                  f"p99 {q[98]:6.3f} s  errors so far {error_count}", flush=True)
        for t in threads:
            t.join(timeout=180)
        time.sleep(10)
        stuck = metric(base, "tally_num_requests_running") + metric(base, "tally_num_requests_waiting")
        lost = metric(base, "tally_usage_records_lost_total")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    con = sqlite3.connect(db)
    stored = {row[0] for row in con.execute("SELECT id FROM usage")}
    records = len(stored)
    con.close()
    missing = len(set(ids) - stored)
    base_rss = samples[min(args.warmup_minutes, len(samples)) - 1] if samples else 0.0
    drift = (samples[-1] - base_rss) / base_rss * 100 if len(samples) > args.warmup_minutes else 0.0
    print(f"summary: {args.minutes:g} min, {args.clients} clients; RSS {base_rss:.1f} -> {samples[-1]:.1f} MiB from minute "
          f"{args.warmup_minutes} to the end (drift {drift:+.1f} %, goal <= 5 %); errors {len(errors)} (goal 0); stuck requests {stuck:.0f} (goal 0); "
          f"{len(ids)} whole 200 responses, {records} usage records, {missing} missing, {lost:.0f} lost (goal 0)")
    for e in errors[:5]:
        print("error:", e)
    sys.exit(0 if not errors and stuck == 0 and missing == 0 else 1)


if __name__ == "__main__":
    main()
