#!/usr/bin/env python3
"""Embedding throughput of `tally serve` and what it cost: paragraphs of real English text (Debian's
/usr/share/common-licenses) sent to /v1/embeddings by a few concurrent clients, several inputs per request.
Prints inputs and tokens per second (wall clock), and the cost per 1M tokens from the responses'
`usage.cost`: tally's at full utilization (machine $/h x busy time) beside each API's embedding price.

    python3 bench/embeddings/throughput.py --tally .build/release/tally [--clients 4] [--requests 40] [--inputs 8]

The server it starts listens on 127.0.0.1, meters to a temporary SQLite file, and is stopped by its PID.
"""
import argparse, json, os, sys, tempfile, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from served import served  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf")
LICENSES = "/usr/share/common-licenses"


def paragraphs():
    out = []
    for name in ["Apache-2.0", "GPL-3", "MPL-2.0", "LGPL-2.1"]:
        text = open(os.path.join(LICENSES, name), encoding="utf-8").read()
        out += [" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) >= 20]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40, help="requests per client")
    ap.add_argument("--inputs", type=int, default=8, help="inputs per request")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    texts = paragraphs()
    db = os.path.join(tempfile.mkdtemp(), "usage.db")
    results, lock = [], threading.Lock()
    with served(a.tally, a.model, "--threads", str(a.threads), "--db", db, "--log-level", "warning") as (base, _):
        def client(c):
            for r in range(a.requests):
                k = (c * a.requests + r) * a.inputs
                batch = [texts[(k + i) % len(texts)] for i in range(a.inputs)]
                body = json.dumps({"input": batch}).encode()
                request = urllib.request.Request(base + "/v1/embeddings", data=body, headers={"Content-Type": "application/json"})
                usage = json.loads(urllib.request.urlopen(request, timeout=300).read())["usage"]
                with lock:
                    results.append(usage)

        start = time.time()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - start

    tokens = sum(u["prompt_tokens"] for u in results)
    inputs = len(results) * a.inputs
    local = sum(u["cost"]["local"] for u in results)
    apis = {}
    for u in results:
        for name, cost in u["cost"]["api_equivalent"].items():
            apis.setdefault(name, [0.0, 0.0])
            apis[name][0] += cost["standard"]
            apis[name][1] += cost["batch"]
    per_m = lambda usd: usd / tokens * 1e6
    print(f"{len(results)} requests x {a.inputs} inputs = {inputs} inputs, {tokens} tokens "
          f"({tokens / inputs:.0f} per input), {a.clients} clients, {a.threads} threads, {wall:.1f} s")
    print(f"throughput: {inputs / wall:.1f} inputs/s, {tokens / wall:.0f} tokens/s")
    print(f"cost per 1M tokens: tally at full utilization ${per_m(local):.4f} ({results[0]['cost']['machine']})")
    for name, (standard, batch) in apis.items():
        print(f"  {name}: ${per_m(standard):.4f} standard, ${per_m(batch):.4f} batch ({standard / local:.1f}x tally's)")


if __name__ == "__main__":
    main()
