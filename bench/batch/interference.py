#!/usr/bin/env python3
"""What a running batch costs interactive requests: the same streamed chat requests, one at a time, with
no batch and while a batch of long completions runs (`--batch-slots` lines in flight), alternating
(A B A B ...); time to first token and decode tokens per second from each response, medians and ratios.
Also the batch's own throughput while it had the machine to itself.

    python3 bench/batch/interference.py --tally .build/release/tally [--pairs 8] [--batch-slots 1]

The server listens on 127.0.0.1 without metering, its batch folder is a temporary one, and it is stopped
by its PID.
"""
import argparse, json, os, statistics, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from served import served  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf"))
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--batch-slots", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="tally-batch-bench-")
    results = {False: [], True: []}
    with served(a.tally, a.model, "--threads", str(a.threads), "--no-metering", "--batch-dir", folder,
                "--batch-slots", str(a.batch_slots), "--log-level", "warning") as (base, _):
        alone = measure(a, base, results)
    ttft = {k: statistics.median(r[0] for r in v) * 1000 for k, v in results.items()}
    tps = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
    print(f"{a.pairs} pairs, batch slots {a.batch_slots}, {a.threads} threads; batch alone: {alone:.1f} generated tokens/s")
    print(f"time to first token (median ms): no batch {ttft[False]:.1f}, batch running {ttft[True]:.1f}, ratio {ttft[True] / ttft[False]:.2f}")
    print(f"decode tokens/s (median): no batch {tps[False]:.1f}, batch running {tps[True]:.1f}, ratio {tps[True] / tps[False]:.2f}")


def measure(a, base, results):
    """Fills `results` (with a batch running or not: [(TTFT s, decode tokens/s)]); returns the batch's
    generated tokens per second alone."""
    def call(path, body=None, method=None, headers=None):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers=headers or {"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(request, timeout=300).read())

    def interactive(i):
        """TTFT (s) and decode tokens/s of one streamed chat request."""
        body = {"messages": [{"role": "user", "content": f"Tell me a short story about the number {i}."}], "max_tokens": 64,
                "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
        request = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        start, first, usage = time.perf_counter(), None, None
        with urllib.request.urlopen(request, timeout=300) as r:
            for raw in r:
                line = raw.decode().strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if first is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - start
                usage = chunk.get("usage") or usage
        return first, usage["timings"]["generated_tokens_per_second"]

    def start_batch(lines):
        jsonl = "\n".join(json.dumps({"custom_id": f"l{i}", "method": "POST", "url": "/v1/completions",
                                      "body": {"prompt": f"Chapter {i}.", "max_tokens": 256, "ignore_eos": True}})
                          for i in range(lines)).encode()
        boundary = "tallybench"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n\r\n").encode() + jsonl \
            + f"\r\n--{boundary}--\r\n".encode()
        f = call("/v1/files", form, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        b = call("/v1/batches", {"input_file_id": f["id"], "endpoint": "/v1/completions", "completion_window": "24h"})
        while call(f"/v1/batches/{b['id']}")["status"] != "in_progress":
            time.sleep(0.1)
        return b["id"]

    # The batch alone: its throughput over 20 s.
    batch = start_batch(10_000)
    time.sleep(3)
    c0, t0 = call(f"/v1/batches/{batch}")["request_counts"]["completed"], time.time()
    time.sleep(20)
    c1, t1 = call(f"/v1/batches/{batch}")["request_counts"]["completed"], time.time()
    alone = (c1 - c0) * 256 / (t1 - t0)

    def cancel(batch):
        call(f"/v1/batches/{batch}/cancel", b"", method="POST")
        while call(f"/v1/batches/{batch}")["status"] not in ("cancelled", "completed"):
            time.sleep(0.1)

    cancel(batch)
    for i in range(a.pairs):
        for with_batch in ([False, True] if i % 2 == 0 else [True, False]):
            if with_batch:
                batch = start_batch(10_000)
                time.sleep(1)
            results[with_batch].append(interactive(i))
            if with_batch:
                cancel(batch)
    return alone


if __name__ == "__main__":
    main()
