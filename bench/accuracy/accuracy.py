#!/usr/bin/env python3
"""How close tally's and llama.cpp's forward passes are to the true model, the way llama.cpp's
`llama-perplexity --kl-divergence` judges a quantization: on the same Q8_0 file and the same tokens of real
English text, each engine's next-token distribution is compared with a float64 reference forward pass of the
file's dequantized weights (Hugging Face transformers, which dequantizes the GGUF with gguf-py).

Reported per engine and KV type: perplexity, mean and 99th-percentile KL divergence from the reference
(nats per token), and top-1 agreement (the engine's most likely token is the reference's), over every
scored token. Windows of --context tokens overlap by half and score their second half (Engine's
Perplexity.swift), so each of the ~37,000 scored tokens is predicted from at least context/2 tokens.

Corpus: the license texts of Debian's base-files package (/usr/share/common-licenses, base-files 12.4 on
Debian 12), in the order of CORPUS, joined by blank lines: about 37,500 SmolLM2 tokens of English prose.

    python3 bench/accuracy/accuracy.py --tally .build/release/tally \\
        [--llama-cpp /path/to/llama_cpp_python-0.3.36 --llama-cpp-lib /path/to/dir/with/libllama.so] \\
        [--model models/SmolLM2-135M-Instruct-Q8_0.gguf] [--context 512] [--kv f32,f16,q8_0] [--windows N]

Needs torch (CPU), transformers, accelerate, gguf and numpy (pip). llama.cpp is optional: its Python
bindings from the llama-cpp-python sdist run against a libllama.so built from the same sdist (see
shared/reference/smollm2-135m.md); without --llama-cpp only tally is measured. Everything runs in
lockstep, one window at a time, so memory stays at a few hundred MB.
"""
import argparse, json, os, struct, subprocess, sys, tempfile, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LICENSES = "/usr/share/common-licenses"
CORPUS = ["Apache-2.0", "Artistic", "BSD", "CC0-1.0", "GFDL-1.3", "GPL-2", "GPL-3", "LGPL-2.1", "MPL-1.1", "MPL-2.0"]
GGML_TYPE = {"f32": 0, "f16": 1, "q8_0": 8}


def corpus_file():
    text = "\n\n".join(open(os.path.join(LICENSES, name), encoding="utf-8").read().strip() for name in CORPUS)
    f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8")
    f.write(text + "\n")
    f.close()
    return f.name


def read_exact(stream, n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise EOFError(f"tally's logits stream ended after {got} of {n} bytes")
        got += k
    return buf


class Tally:
    """`tally perplexity --logits -`: its header (tokens, window shape), then one window's rows per read."""

    def __init__(self, binary, model, corpus, context, kv, threads):
        self.name, self.kv = "tally", kv
        cmd = [binary, "perplexity", "--model", model, "--file", corpus, "--context", str(context), "--kv-type", kv,
               "--threads", str(threads), "--logits", "-"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = self.proc.stdout
        if bytes(read_exact(out, 8)) != b"tallylgt":
            raise SystemExit("tally perplexity: not a logits stream")
        version, self.context, self.stride, self.vocab, count = struct.unpack("<5I", read_exact(out, 20))
        assert version == 1, version
        self.tokens = np.frombuffer(read_exact(out, 4 * count), dtype="<i4").astype(np.int64)

    def window(self, w, tokens):
        rows = read_exact(self.proc.stdout, 4 * self.stride * self.vocab)
        return np.frombuffer(rows, dtype="<f4").reshape(self.stride, self.vocab)

    def close(self):
        self.proc.stdout.close()
        self.proc.wait(timeout=60)


class LlamaCpp:
    """llama.cpp through llama-cpp-python's bindings: one context per KV type, all logits of a window."""

    def __init__(self, model, context, kv, threads):
        from llama_cpp import Llama
        self.name, self.kv = "llama.cpp", kv
        self.llm = Llama(model, n_ctx=context, n_batch=context, n_ubatch=context, logits_all=True, n_threads=threads,
                         n_threads_batch=threads, type_k=GGML_TYPE[kv], type_v=GGML_TYPE[kv], verbose=False,
                         **({"flash_attn": True} if kv == "q8_0" else {}))  # llama.cpp quantizes V only with flash attention

    def window(self, w, tokens):
        self.llm.reset()
        self.llm.eval(tokens.tolist())
        scored = slice(len(tokens) - 1 - len(tokens) // 2, len(tokens) - 1)
        return np.array(self.llm.scores[scored], dtype=np.float32)

    def close(self):
        self.llm.close()


def log_softmax(logits):
    x = logits.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf"))
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--kv", default="f32,f16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, help="only the first N windows (a quick look)")
    ap.add_argument("--llama-cpp", help="the llama-cpp-python sdist directory (its llama_cpp package)")
    ap.add_argument("--llama-cpp-lib", help="the directory holding libllama.so built from that sdist")
    ap.add_argument("--json-out", help="also write the figures as JSON here")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(args.threads)
    corpus = corpus_file()
    kvs = args.kv.split(",")
    engines = [Tally(args.tally, args.model, corpus, args.context, kv, args.threads) for kv in kvs]
    tokens = engines[0].tokens
    stride = engines[0].stride
    if args.llama_cpp:
        sys.path.insert(0, args.llama_cpp)
        if args.llama_cpp_lib:
            os.environ["LLAMA_CPP_LIB_PATH"] = args.llama_cpp_lib
        engines += [LlamaCpp(args.model, args.context, kv, args.threads) for kv in kvs]

    reference = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(args.model)),
                                                     gguf_file=os.path.basename(args.model), dtype=torch.float32)
    reference = reference.double().eval()

    windows = (len(tokens) - args.context) // stride + 1
    if args.windows:
        windows = min(windows, args.windows)
    print(f"corpus: {len(tokens)} tokens from {LICENSES} ({', '.join(CORPUS)}); {windows} windows of {args.context}, "
          f"{windows * stride} scored tokens", file=sys.stderr)
    nll_ref = []
    stats = {id(e): {"nll": [], "kld": [], "top1": []} for e in engines}
    start = time.time()
    for w in range(windows):
        ids = tokens[w * stride:w * stride + args.context]
        targets = ids[args.context - stride:]
        with torch.no_grad():
            ref_logits = reference(torch.from_numpy(np.asarray(ids)[None, :])).logits[0].numpy()
        ref = log_softmax(ref_logits[args.context - stride - 1:args.context - 1])
        nll_ref.append(-ref[np.arange(stride), targets])
        p_ref = np.exp(ref)
        for e in engines:
            lp = log_softmax(e.window(w, ids))
            s = stats[id(e)]
            s["nll"].append(-lp[np.arange(stride), targets])
            s["kld"].append((p_ref * (ref - lp)).sum(axis=1))
            s["top1"].append(lp.argmax(axis=1) == ref.argmax(axis=1))
        print(f"window {w + 1}/{windows}, {time.time() - start:.0f} s", file=sys.stderr)
    for e in engines:
        if isinstance(e, Tally) and args.windows:
            e.proc.kill()
        e.close()
    os.unlink(corpus)

    rows = [{"engine": "reference (float64)", "kv": "-", "perplexity": float(np.exp(np.concatenate(nll_ref).mean()))}]
    for e in engines:
        s = {k: np.concatenate(v) for k, v in stats[id(e)].items()}
        rows.append({"engine": e.name, "kv": e.kv, "perplexity": float(np.exp(s["nll"].mean())),
                     "mean_kld": float(s["kld"].mean()), "kld_uncertainty": float(s["kld"].std(ddof=1) / np.sqrt(len(s["kld"]))),
                     "p99_kld": float(np.percentile(s["kld"], 99)), "max_kld": float(s["kld"].max()),
                     "top1_agreement": float(s["top1"].mean())})
    print(f"\n{windows * stride} scored tokens, context {args.context}, model {os.path.basename(args.model)}\n")
    print("| engine | KV | perplexity | mean KLD | 99th pct KLD | max KLD | top-1 agreement |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "mean_kld" not in r:
            print(f"| {r['engine']} | - | {r['perplexity']:.4f} | - | - | - | - |")
            continue
        print(f"| {r['engine']} | {r['kv']} | {r['perplexity']:.4f} | {r['mean_kld']:.6f} ± {r['kld_uncertainty']:.6f} | "
              f"{r['p99_kld']:.6f} | {r['max_kld']:.4f} | {100 * r['top1_agreement']:.2f} % |")
    if args.json_out:
        json.dump({"scored_tokens": windows * stride, "context": args.context, "corpus": CORPUS, "rows": rows},
                  open(args.json_out, "w"), indent=1)


if __name__ == "__main__":
    main()
