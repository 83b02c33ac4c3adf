#!/usr/bin/env python3
"""Resident memory of `tally serve` at rest, under a burst of long prompts, and after the idle release
(`--idle-release`), as Ollama's keep-alive frees an idle model's memory. Prints the three RSS figures.

    python3 bench/server/idle_memory.py --tally .build/release/tally [--idle-release 2] [--requests 8] [--prompt-words 700]

The server runs with `--idle-prefix-cache-memory 0`, so after the idle time no KV block is kept (pass
`--keep-cache` to keep the prefix cache and see what it holds). Everything listens on 127.0.0.1; the server
it starts is stopped by its PID.
"""
import argparse, json, os, sys, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from served import served  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def measure(tally, idle_release=2.0, requests=8, prompt_words=700, keep_cache=False, kv_memory=512):
    flags = ["--idle-release", str(idle_release), "--kv-memory", str(kv_memory), "--no-metering", "--log-level", "warning"]
    if not keep_cache:
        flags += ["--idle-prefix-cache-memory", "0"]
    with served(tally, MODEL, *flags) as (base, proc):
        time.sleep(idle_release + 1)  # past the start-up's own idle release
        at_rest = rss_mib(proc.pid)

        def ask(i):
            body = json.dumps({"prompt": f"Request {i}: " + "the quick brown fox jumps over the lazy dog " * (prompt_words // 9),
                               "max_tokens": 4, "temperature": 0}).encode()
            request = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=300).read()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        loaded = rss_mib(proc.pid)
        time.sleep(idle_release + 2)
        idle = rss_mib(proc.pid)
        ask(requests)  # still serves: released pages come back as they are written
        return {"at_rest_mib": at_rest, "after_burst_mib": loaded, "after_idle_mib": idle}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--idle-release", type=float, default=2.0)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--prompt-words", type=int, default=700)
    ap.add_argument("--keep-cache", action="store_true")
    a = ap.parse_args()
    r = measure(a.tally, a.idle_release, a.requests, a.prompt_words, a.keep_cache)
    print(f"RSS at rest {r['at_rest_mib']:.1f} MiB, after {a.requests} prompts of ~{a.prompt_words} words "
          f"{r['after_burst_mib']:.1f} MiB, {a.idle_release:g} s idle later {r['after_idle_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
