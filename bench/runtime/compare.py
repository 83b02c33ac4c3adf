#!/usr/bin/env python3
"""Side-by-side speed of tally's runtime and llama.cpp's llama-bench on the same Q8_0 file, in one run.

Alternates the two programs (tally, llama.cpp, llama.cpp, tally, tally, ...: who goes first swaps each
round) so machine drift hits both alike, and prints medians for prompt processing (pp512) and batch-1
decode (tg128) at each thread count, the median of the rounds' ratios with their range (this VM's speed
moves 15-30 % within minutes, so a ratio taken within a round is steadier than a ratio of medians), and
tally's peak resident memory against the model file plus its KV cache.

llama-bench's tg128 generates from an empty context, so tally's tg is taken the same way (a 1-token
prompt, then 128 tokens); "tg@512" is tally's decode after the 512-token prompt (its attention reads
512-640 positions per token, about 14 MB of f16 KV, 27 MB in f32), printed for reference, and the RSS comes from that run.

    python3 bench/runtime/compare.py --llama-bench /path/to/llama-bench [--rounds 3] [--threads 1,2]
    python3 bench/runtime/compare.py --baseline-tally /path/to/older/tally   # a change against the build before it
    python3 bench/runtime/compare.py --kv-type q8_0 --baseline-kv-type f16 --prompt 2048   # one KV type against another

llama.cpp is not part of tally: build llama-bench from the llama-cpp-python sdist as
shared/reference/smollm2-135m.md describes. Without --llama-bench only tally is measured.
"""
import argparse, json, os, re, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tally_run(tally, model, threads, prompt_tokens, gen_tokens, kv_type):
    """One `tally generate` run: prefill of prompt_tokens, then gen_tokens of decode. Returns (pp, tg, rss_kb)."""
    # A prompt of exactly prompt_tokens tokens: " x" is one token in SmolLM2's vocabulary.
    prompt = "x" + " x" * (prompt_tokens - 1)
    cmd = ["/usr/bin/time", "-f", "RSS %M", tally, "generate", "--model", model, "--prompt", prompt,
           "--max-tokens", str(gen_tokens), "--ignore-eos", "--threads", str(threads), "--kv-type", kv_type, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = json.loads(p.stdout)
    assert len(out["prompt_ids"]) == prompt_tokens, len(out["prompt_ids"])
    rss = int(re.search(r"RSS (\d+)", p.stderr).group(1))
    return out["prefill_tokens_per_second"], out["decode_tokens_per_second"], rss


def llama_run(llama_bench, model, threads, prompt_tokens, gen_tokens):
    """llama-bench pp and tg (flash attention on, as the reference figures)."""
    cmd = [llama_bench, "-m", model, "-t", str(threads), "-p", str(prompt_tokens), "-n", str(gen_tokens),
           "-r", "1", "-fa", "1", "-o", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = json.loads(p.stdout)
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] == prompt_tokens and r["n_gen"] == 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] == gen_tokens and r["n_prompt"] == 0)
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf"))
    ap.add_argument("--llama-bench")
    ap.add_argument("--baseline-tally", help="another tally build (e.g. the commit before a change), alternated with --tally")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--kv-type", default="f16", choices=["f16", "f32", "q8_0"], help="tally's KV cache values (llama-bench's are f16)")
    ap.add_argument("--baseline-kv-type", choices=["f16", "f32", "q8_0"], help="the baseline's KV type (default --kv-type); "
                    "with it and no --baseline-tally, the baseline is --tally itself")
    a = ap.parse_args()

    results = {}
    for threads in [int(t) for t in a.threads.split(",")]:
        t_pp, t_tg, t_tg_long, t_rss, l_pp, l_tg, b_pp, b_tg, b_tg_long = [], [], [], [], [], [], [], [], []
        baseline = a.baseline_tally or (a.tally if a.baseline_kv_type else None)
        baseline_kv = a.baseline_kv_type or a.kv_type
        def run_tally():
            pp, tg_long, rss = tally_run(a.tally, a.model, threads, a.prompt, a.gen, a.kv_type)
            _, tg, _ = tally_run(a.tally, a.model, threads, 1, a.gen, a.kv_type)
            t_pp.append(pp); t_tg.append(tg); t_tg_long.append(tg_long); t_rss.append(rss)

        def run_others():
            if a.llama_bench:
                pp, tg = llama_run(a.llama_bench, a.model, threads, a.prompt, a.gen)
                l_pp.append(pp); l_tg.append(tg)
            if baseline:
                pp, tg_long, _ = tally_run(baseline, a.model, threads, a.prompt, a.gen, baseline_kv)
                _, tg, _ = tally_run(baseline, a.model, threads, 1, a.gen, baseline_kv)
                b_pp.append(pp); b_tg.append(tg); b_tg_long.append(tg_long)

        for round in range(a.rounds):
            for run in ((run_tally, run_others) if round % 2 == 0 else (run_others, run_tally)):
                run()
        r = {"tally_pp": statistics.median(t_pp), "tally_tg": statistics.median(t_tg),
             "tally_tg_after_prompt": statistics.median(t_tg_long), "tally_peak_rss_mb": max(t_rss) / 1024}
        # Per-round ratios: median, min, max.
        ratios = lambda xs, ys: [x / y for x, y in zip(xs, ys)]
        spread = lambda rs: (statistics.median(rs), min(rs), max(rs))
        if l_pp:
            r.update({"llama_pp": statistics.median(l_pp), "llama_tg": statistics.median(l_tg),
                      "pp_ratio": spread(ratios(t_pp, l_pp)), "tg_ratio": spread(ratios(t_tg, l_tg))})
        if b_pp:
            r.update({"baseline_pp": statistics.median(b_pp), "baseline_tg": statistics.median(b_tg),
                      "baseline_tg_after_prompt": statistics.median(b_tg_long),
                      "baseline_pp_ratio": spread(ratios(t_pp, b_pp)), "baseline_tg_ratio": spread(ratios(t_tg, b_tg)),
                      "baseline_tg_after_prompt_ratio": spread(ratios(t_tg_long, b_tg_long))})
        results[threads] = r

    model_mb = os.path.getsize(a.model) / 2**20
    # tally generate allocates KV for prompt + gen tokens only: 30 layers x 2 x 192 values per token.
    row_bytes = {"f32": 4 * 192, "f16": 2 * 192, "q8_0": 192 // 32 * 34}[a.kv_type]
    kv_mb = (a.prompt + a.gen + 15) // 16 * 16 * 30 * 2 * row_bytes / 2**20
    print(f"model {os.path.basename(a.model)} ({model_mb:.1f} MiB), pp{a.prompt} / tg{a.gen}, tally KV {a.kv_type}, {a.rounds} alternating rounds, "
          "medians; ratio: median of the rounds' ratios [min-max]")
    f = lambda v: f"{v:9.1f}" if v else f"{'-':>9}"
    ratio = lambda s: f"{s[0]:5.2f} [{s[1]:.2f}-{s[2]:.2f}]" if s else f"{'-':>17}"
    print(f"{'threads':>7} {'tally pp':>9} {'llama pp':>9} {'ratio':>17} {'tally tg':>9} {'llama tg':>9} {'ratio':>17} {'tg@' + str(a.prompt):>9} {'tally RSS MiB':>14}")
    for threads, r in results.items():
        print(f"{threads:>7} {f(r['tally_pp'])} {f(r.get('llama_pp'))} {ratio(r.get('pp_ratio'))} {f(r['tally_tg'])} {f(r.get('llama_tg'))} "
              f"{ratio(r.get('tg_ratio'))} {f(r['tally_tg_after_prompt'])} {r['tally_peak_rss_mb']:14.1f}")
    if "baseline_pp" in next(iter(results.values())):
        label = f"KV {a.kv_type} against KV {a.baseline_kv_type or a.kv_type}" + (" of --baseline-tally" if a.baseline_tally else "")
        long = f"tg@{a.prompt}"
        print(f"{'threads':>7} {'pp':>9} {'baseline':>9} {'ratio':>17} {'tg':>9} {'baseline':>9} {'ratio':>17} {long:>9} {'baseline':>9} {'ratio':>17}   ({label})")
        for threads, r in results.items():
            print(f"{threads:>7} {r['tally_pp']:9.1f} {r['baseline_pp']:9.1f} {ratio(r['baseline_pp_ratio'])} "
                  f"{r['tally_tg']:9.1f} {r['baseline_tg']:9.1f} {ratio(r['baseline_tg_ratio'])} "
                  f"{r['tally_tg_after_prompt']:9.1f} {r['baseline_tg_after_prompt']:9.1f} {ratio(r['baseline_tg_after_prompt_ratio'])}")
    print(f"memory budget: model {model_mb:.1f} + KV {kv_mb:.1f} + 64 = {model_mb + kv_mb + 64:.1f} MiB")
    json.dump(results, sys.stderr)


if __name__ == "__main__":
    main()
