#!/usr/bin/env python3
"""A fleet on loopback, scripted: PostgreSQL, nginx and 2 tally replicas, under a shared-prefix workload
(several system prompts, many users, each user's conversation resent turn by turn), once as it is and once with
one replica killed mid-run and restarted. Prints, with the figures it measured:

- lost usage records: responses with status 200 whose record is not in PostgreSQL (must be 0);
- the prefix-cache hit rate (cached / prompt tokens, from the records) of the fleet behind nginx with prefix
  affinity, of one replica alone on the same workload, and of the fleet behind round-robin nginx;
- throughput per replica and for the fleet (generated tokens per second over the run);
- `tally report --db postgres://... --by replica`.

    python3 bench/fleet/run.py --tally .build/release/tally --pg postgres://postgres@127.0.0.1:55432/postgres \\
        --nginx /usr/sbin/nginx --nginx-js /usr/lib/nginx/modules/ngx_http_js_module.so [--users 48] [--turns 3] [--prompts 6] [--clients 8]

PostgreSQL must be running (the script creates and drops its own databases); nginx and its njs module come
from Debian's packages (`.ci/run` unpacks them into .build/nginx). Each replica gets 1 compute thread (this
machine has 2 cores). Everything listens on 127.0.0.1; every process it starts is stopped by its PID.
"""
import argparse, json, os, random, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request, uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base, proc=None, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{base} exited")
        try:
            with urllib.request.urlopen(base + "/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{base} did not become healthy")


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, check=True, timeout=120).stdout.strip()


class Fleet:
    def __init__(self, args, db, tmp, replicas, mode):
        self.args, self.db, self.tmp, self.mode = args, db, tmp, mode
        self.ports = {f"r{i}": free_port() for i in range(replicas)}
        self.procs = {}
        for name in self.ports:
            self.start(name)
        self.nginx = None
        if mode != "single":
            listen = free_port()
            conf = os.path.join(tmp, f"nginx-{mode}")
            cmd = [args.tally, "fleet", "nginx", "--listen", f"127.0.0.1:{listen}", "--dir", conf, "--js-module", args.nginx_js,
                   "--fail-timeout", "5"] + [a for n, p in self.ports.items() for a in ("--replica", f"{n}=127.0.0.1:{p}")]
            if mode == "round-robin":
                cmd.append("--round-robin")
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
            self.nginx = subprocess.Popen([args.nginx, "-p", conf, "-c", "nginx.conf", "-e", "logs/error.log", "-g", "daemon off;"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.base = f"http://127.0.0.1:{listen}"
            wait_healthy(self.base, self.nginx)
        else:
            self.base = f"http://127.0.0.1:{self.ports['r0']}"

    def start(self, name):
        log = open(os.path.join(self.tmp, f"{self.mode}-{name}.log"), "a")
        self.procs[name] = subprocess.Popen(
            [self.args.tally, "serve", "--model", MODEL, "--port", str(self.ports[name]), "--threads", "1", "--kv-memory", "256",
             "--db", self.db, "--replica", name, "--spool", os.path.join(self.tmp, f"spool-{self.mode}-{name}.db")],
            stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(f"http://127.0.0.1:{self.ports[name]}", self.procs[name])

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def stop(self):
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            self.nginx.wait(timeout=30)
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)


def workload(users, turns, prompts, seed=7):
    """Chat requests as many users send them: each user talks to one of `prompts` assistants (a system prompt
    long enough to fill several KV blocks) for `turns` turns, each turn resending the conversation so far.
    Users interleave at random, each user's turns in order. Returns (user, messages) pairs."""
    rng = random.Random(seed)
    systems = [f"You are the assistant of team {i} at a company that makes {t}. Answer in one or two sentences, politely, "
               f"citing the team handbook where it applies; never invent prices, dates or names. The handbook of team {i} "
               f"says: customers come first, answers are short, and every promise is written down. " * 2
               for i, t in enumerate((["bicycles", "pianos", "tents", "kettles", "boats", "lamps", "clocks", "shoes"] * 8)[:prompts])]
    verbs = ["return", "repair", "order", "clean", "store", "ship"]
    left = {u: 0 for u in range(users)}
    system_of = {u: systems[rng.randrange(prompts)] for u in range(users)}
    history = {u: [{"role": "system", "content": system_of[u]}] for u in range(users)}
    jobs = []
    while left:
        u = rng.choice(sorted(left))
        question = f"I am user {u}. How do I {rng.choice(verbs)} item {rng.randrange(1000)}?"
        jobs.append((u, history[u] + [{"role": "user", "content": question}]))
        # The next turn resends this one with an answer; a fixed answer keeps runs comparable (the model's own
        # answer would differ between setups only by timing, not by content, at temperature 0).
        history[u] = history[u] + [{"role": "user", "content": question},
                                   {"role": "assistant", "content": f"Please see section {rng.randrange(9) + 1} of the handbook."}]
        left[u] += 1
        if left[u] == turns:
            del left[u]
    return jobs


def run(args, mode, replicas, kill_mid_run):
    db_name = "tally_fleet_" + uuid.uuid4().hex[:12]
    psql(args.pg, f"CREATE DATABASE {db_name}")
    db = args.pg.rsplit("/", 1)[0] + "/" + db_name
    tmp = tempfile.mkdtemp(prefix="tally-fleet-")
    fleet = Fleet(args, db, tmp, replicas, mode)
    try:
        return measure(args, fleet, db, db_name, mode, replicas, kill_mid_run)
    finally:
        fleet.stop()  # also when a run fails: no replica or nginx outlives the script


def measure(args, fleet, db, db_name, mode, replicas, kill_mid_run):
    jobs = workload(args.users, args.turns, args.prompts)
    ok_ids, failed, lock = [], [0], threading.Lock()
    queue = list(enumerate(jobs))
    start = time.time()

    def client():
        while True:
            with lock:
                if not queue:
                    return
                k, (user, messages) = queue.pop(0)
            body = json.dumps({"messages": messages, "user": f"user-{user}",
                               "max_tokens": args.max_tokens, "temperature": 0}).encode()
            request = urllib.request.Request(fleet.base + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as r:
                    answer = json.loads(r.read())
                with lock:
                    ok_ids.append(answer["id"])
            except Exception:
                with lock:
                    failed[0] += 1

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    if kill_mid_run:
        while True:
            with lock:
                if len(ok_ids) >= len(jobs) // 3:
                    break
            time.sleep(0.2)
        fleet.kill("r1")
        time.sleep(5)
        fleet.start("r1")
    for t in threads:
        t.join()
    elapsed = time.time() - start
    time.sleep(2)
    fleet.stop()
    stored = set(psql(db, "SELECT id FROM usage").split())
    rows = [line.split("|") for line in psql(db, "SELECT replica, SUM(prompt_tokens), SUM(cached_tokens), SUM(generated_tokens), COUNT(*) "
                                                 "FROM usage WHERE finish_reason IN ('stop', 'length') GROUP BY replica ORDER BY replica").splitlines()]
    per_replica = {r[0]: {"prompt": int(r[1]), "cached": int(r[2]), "generated": int(r[3]), "requests": int(r[4])} for r in rows}
    prompt = sum(v["prompt"] for v in per_replica.values())
    cached = sum(v["cached"] for v in per_replica.values())
    generated = sum(v["generated"] for v in per_replica.values())
    report = subprocess.run([args.tally, "report", "--db", db, "--by", "replica"], capture_output=True, text=True, timeout=120).stdout
    psql(args.pg, f"DROP DATABASE {db_name} WITH (FORCE)")
    return {"mode": mode, "replicas": replicas, "ok": len(ok_ids), "failed": failed[0], "lost": len(set(ok_ids) - stored),
            "hit_rate": cached / max(prompt, 1), "seconds": elapsed, "fleet_tokens_per_s": generated / elapsed,
            "per_replica": {k: {**v, "tokens_per_s": v["generated"] / elapsed, "hit_rate": v["cached"] / max(v["prompt"], 1)}
                            for k, v in per_replica.items()},
            "report": report}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--pg", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--nginx-js", required=True)
    ap.add_argument("--users", type=int, default=48)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=8)
    args = ap.parse_args()
    args.nginx_js = os.path.abspath(args.nginx_js)  # nginx resolves a relative module path against its prefix
    results = []
    for mode, replicas, kill in [("single", 1, False), ("affinity", 2, False), ("affinity", 2, True), ("round-robin", 2, False)]:
        began = time.time()
        results.append(run(args, mode, replicas, kill) | {"killed": kill})
        print(f"{mode}{' (r1 killed)' if kill else ''}: {time.time() - began:.0f} s", file=sys.stderr, flush=True)
    print(f"{args.users} users of {args.prompts} system prompts, {args.turns} turns each ({args.users * args.turns} chat requests), "
          f"{args.clients} clients, max_tokens {args.max_tokens}\n")
    print("| setup | replicas | 200s | failed | lost records | prefix hit rate | fleet tokens/s | per replica tokens/s (hit rate) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        per = ", ".join(f"{k} {v['tokens_per_s']:.1f} ({100 * v['hit_rate']:.0f} %)" for k, v in sorted(r["per_replica"].items()))
        label = {"single": "one replica", "affinity": "nginx, prefix affinity", "round-robin": "nginx, round-robin"}[r["mode"]]
        label += ", r1 killed and restarted" if r["killed"] else ""
        print(f"| {label} | {r['replicas']} | {r['ok']} | {r['failed']} | {r['lost']} | {100 * r['hit_rate']:.1f} % | "
              f"{r['fleet_tokens_per_s']:.1f} | {per} |")
    print("\n`tally report --by replica` of the affinity run with the kill:\n")
    print(results[2]["report"])
    if any(r["lost"] for r in results):
        sys.exit("usage records were lost")


if __name__ == "__main__":
    main()
