#!/usr/bin/env python3
"""Side by side: `tally serve` against llama.cpp's `llama-server` on the same Q8_0 file, in one run.

Each round starts every server fresh, one after the other (tally, tally --no-metering, with --f32-run
tally --kv-type f32, llama-server tuned for 16 clients, llama-server with its default flags, then the next
round), so machine drift hits all alike. Per server and round:

- 16 clients in a closed loop, ~100-token prompts (all different), 128 generated tokens each (ignore_eos):
  aggregate generated tokens per second = all generated tokens / wall time;
- 1 client, the same requests one after another: generated tokens per second;
- a 1,000-token shared prefix: one request primes the prefix cache, then requests with the same prefix
  and a new question: median time to first token (TTFT) of those, with the cached tokens the server reports;
- peak resident memory of the server process (VmHWM) at the end.

Prints medians over rounds and the ratios the issues name (tally / llama-server throughput, TTFT and RSS;
metering on / off throughput).

    python3 bench/server/compare.py --llama-server /path/to/llama-server [--rounds 2]

Only loopback is used. Every request has a timeout and every phase a bounded request count.
"""
import argparse, http.client, json, os, random, signal, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf")
WORDS = ("apple river stone cloud garden window silver market candle forest orange pencil thunder valley "
         "harbor lantern meadow copper violin blanket").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompt_of(words, rng):
    """About `words` tokens of ordinary words (most are one token in SmolLM2's vocabulary)."""
    return " ".join(rng.choice(WORDS) for _ in range(words))


class Server:
    def __init__(self, name, argv, port):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited at start: {' '.join(argv)}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"{name} did not become healthy")

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stream_completion(port, prompt, max_tokens):
    """One streamed /v1/completions request. Returns (ttft seconds, generated tokens, cached tokens)."""
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
                       "stream": True, "stream_options": {"include_usage": True}})
    start = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"status {r.status}: {r.read()[:300]}")
    ttft, usage = None, None
    for raw in r:
        line = raw.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        if ttft is None and event.get("choices") and event["choices"][0].get("text"):
            ttft = time.perf_counter() - start
        if event.get("usage"):
            usage = event["usage"]
    c.close()
    if usage is None:
        raise RuntimeError("no usage chunk")
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return ttft or (time.perf_counter() - start), usage["completion_tokens"], cached


def closed_loop(port, clients, per_client, prompt_words, gen_tokens, seed):
    """`clients` threads, each sending `per_client` requests back to back. Returns generated tok/s."""
    rng = random.Random(seed)
    prompts = [[prompt_of(prompt_words, rng) for _ in range(per_client)] for _ in range(clients)]
    generated, errors, lock = [0], [], threading.Lock()

    def worker(mine):
        for p in mine:
            try:
                _, n, _ = stream_completion(port, p, gen_tokens)
                with lock:
                    generated[0] += n
            except Exception as e:  # counted, and the figure is refused below
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(p,)) for p in prompts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {errors[0]}")
    return generated[0] / elapsed


def prefix_ttft(port, seed, prefix_words=1000, warm=3):
    """Prime a ~1,000-token prefix, then `warm` requests sharing it. Returns (median warm TTFT, cached)."""
    rng = random.Random(seed)
    prefix = "Read this list carefully. " + prompt_of(prefix_words, rng)
    stream_completion(port, prefix + " Question 0: which word comes first?", 4)
    ttfts, cached = [], []
    for i in range(1, warm + 1):
        t, _, c = stream_completion(port, prefix + f" Question {i}: which word comes {['second', 'third', 'last'][i % 3]}?", 4)
        ttfts.append(t)
        cached.append(c)
    return statistics.median(ttfts), min(cached)


def measure(server, args, round_index):
    seed = 1000 + round_index  # the same prompts for every server within a round
    out = {"agg16": closed_loop(server.port, 16, args.per_client, 100, 128, seed)}
    if args.only_16:  # many short rounds for a paired on/off comparison
        out.update(agg1=0.0, ttft=0.0, cached=0, rss=server.peak_rss_mib())
        return out
    out["agg1"] = closed_loop(server.port, 1, args.single_requests, 100, 128, seed + 1)
    out["ttft"], out["cached"] = prefix_ttft(server.port, seed + 2)
    out["rss"] = server.peak_rss_mib()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-server", help="path to llama.cpp's llama-server (omit to measure tally only)")
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-client", type=int, default=2, help="requests per client in the 16-client phase")
    ap.add_argument("--single-requests", type=int, default=3, help="requests in the 1-client phase")
    ap.add_argument("--no-metering-run", action="store_true", help="skip the tally --no-metering server")
    ap.add_argument("--f32-run", action="store_true", help="also run tally --kv-type f32 (twice the KV memory of the default f16)")
    ap.add_argument("--no-default-llama", action="store_true", help="skip llama-server with its default flags")
    ap.add_argument("--only-16", action="store_true", help="only the 16-client phase (for metering on/off over many rounds)")
    args = ap.parse_args()

    db_dir = tempfile.mkdtemp(prefix="tally-bench-")
    servers = [("tally", lambda port: [args.tally, "serve", "--model", args.model, "--port", str(port),
                                        "--threads", str(args.threads), "--db", os.path.join(db_dir, f"usage-{port}.db")])]
    if not args.no_metering_run:
        servers.append(("tally --no-metering", lambda port: [args.tally, "serve", "--model", args.model, "--port", str(port),
                                                             "--threads", str(args.threads), "--no-metering"]))
    if args.f32_run:
        servers.append(("tally --kv-type f32", lambda port: [args.tally, "serve", "--model", args.model, "--port", str(port),
                                                             "--threads", str(args.threads), "--kv-type", "f32",
                                                             "--db", os.path.join(db_dir, f"usage-{port}.db")]))
    if args.llama_server:
        # Tuned for 16 clients (16 slots of 2,048 positions): the reference figures' configuration, whose
        # peak RSS "with defaults" (its default host-RAM prompt cache) the RSS target is measured against.
        # Also as it starts with no flags but the model (4 slots sharing 8,192 positions), for comparison.
        servers.append(("llama-server", lambda port: [args.llama_server, "-m", args.model, "--host", "127.0.0.1",
                                                      "--port", str(port), "-t", str(args.threads), "-np", "16", "-c", "32768"]))
        if not args.no_default_llama:
            servers.append(("llama-server defaults", lambda port: [args.llama_server, "-m", args.model, "--host", "127.0.0.1",
                                                                   "--port", str(port), "-t", str(args.threads)]))
    results = {name: [] for name, _ in servers}
    for r in range(args.rounds):
        for name, argv in servers:
            port = free_port()
            server = Server(name, argv(port), port)
            try:
                m = measure(server, args, r)
            finally:
                server.stop()
            results[name].append(m)
            print(f"round {r + 1} {name:20s} 16 clients {m['agg16']:7.1f} tok/s   1 client {m['agg1']:6.1f} tok/s   "
                  f"cached-prefix TTFT {m['ttft'] * 1000:7.1f} ms (cached {m['cached']})   peak RSS {m['rss']:7.1f} MiB", flush=True)

    med = {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in results.items()}
    print("\nmedians over", args.rounds, "rounds")
    print(f"{'server':22s} {'16 clients tok/s':>17s} {'1 client tok/s':>15s} {'prefix TTFT ms':>15s} {'peak RSS MiB':>13s}")
    for name, m in med.items():
        print(f"{name:22s} {m['agg16']:17.1f} {m['agg1']:15.1f} {m['ttft'] * 1000:15.1f} {m['rss']:13.1f}")
    t = med["tally"]
    if "llama-server" in med:
        l = med["llama-server"]
        print("\ntally / llama-server (targets: 16 clients >= 1.5x, 1 client >= 1.3x, TTFT <= 0.5x, RSS <= 0.5x)")
        print(f"  16 clients {t['agg16'] / l['agg16']:.2f}x   1 client {t['agg1'] / l['agg1']:.2f}x   "
              f"cached-prefix TTFT {t['ttft'] / l['ttft']:.2f}x   peak RSS {t['rss'] / l['rss']:.2f}x")
        if "llama-server defaults" in med:
            print(f"  peak RSS against llama-server with its default flags: {t['rss'] / med['llama-server defaults']['rss']:.2f}x")
        if "tally --kv-type f32" in med:
            h = med["tally --kv-type f32"]
            print(f"  tally --kv-type f32: 16 clients {h['agg16'] / l['agg16']:.2f}x   1 client {h['agg1'] / l['agg1']:.2f}x   "
                  f"cached-prefix TTFT {h['ttft'] / l['ttft']:.2f}x   peak RSS {h['rss'] / l['rss']:.2f}x"
                  + (f" ({h['rss'] / med['llama-server defaults']['rss']:.2f}x of llama-server defaults)" if "llama-server defaults" in med else ""))
    if "tally --no-metering" in med:
        # Per round, so drift between rounds cancels.
        ratios = [a["agg16"] / b["agg16"] for a, b in zip(results["tally"], results["tally --no-metering"])]
        print(f"\nmetering on / off, 16 clients: median {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f} "
              f"over {len(ratios)} rounds (per round: " + ", ".join(f"{x:.3f}" for x in ratios) + ")")


if __name__ == "__main__":
    main()
