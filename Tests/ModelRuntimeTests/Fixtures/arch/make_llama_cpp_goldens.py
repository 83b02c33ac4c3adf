#!/usr/bin/env python3
"""Greedy goldens from llama.cpp for the architecture fixtures: for each tiny model, llama-server (built from
the llama-cpp-python 0.3.36 sdist as ../shared/reference/smollm2-135m.md describes) continues the first 32
of the fixture's token ids greedily for 64 tokens, and records each chosen id with llama.cpp's margin
between its top two candidates (log p1 - log p2, which equals the logit difference), leaving out token 0,
the fixtures' end-of-text, which ignore_eos bans from the choice. ArchitectureTests
checks that tally chooses the same id at every step whose margin exceeds its threshold.

    python3 Tests/ModelRuntimeTests/Fixtures/arch/make_llama_cpp_goldens.py /path/to/llama-server

Writes NAME.llama_cpp.json beside each NAME.gguf. Loopback only; each server is stopped by its PID.
"""
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["llama3", "llama3-tied", "qwen2", "qwen3", "smollm3"]
PROMPT, STEPS = 32, 64


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        return json.loads(r.read())


def golden(server, name):
    fixture = json.load(open(os.path.join(HERE, name + ".json")))
    prompt = fixture["token_ids"][:PROMPT]
    port = free_port()
    proc = subprocess.Popen([server, "-m", os.path.join(HERE, name + ".gguf"), "--host", "127.0.0.1", "--port", str(port),
                             "-c", "512", "-np", "1", "-t", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        out = post(base + "/completion", {"prompt": prompt, "n_predict": STEPS, "temperature": 0, "top_k": 1,
                                          "n_probs": 3, "post_sampling_probs": False, "ignore_eos": True,
                                          "cache_prompt": False, "return_tokens": True})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # Every generated id is in `tokens`; llama-server reports probabilities only for the tokens that
    # completed some text (a token ending inside a UTF-8 sequence gets none), so such steps have no margin
    # (null) and are not checked.
    ids, margins, steps = out["tokens"], [], list(out["completion_probabilities"])
    assert len(ids) == STEPS, out
    for token in ids:
        if steps and steps[0]["id"] == token:
            top = [t for t in steps.pop(0)["top_logprobs"] if t["id"] != 0]  # end-of-text is banned by ignore_eos
            assert top[0]["id"] == token, top
            margins.append(round(top[0]["logprob"] - top[1]["logprob"], 6))
        else:
            margins.append(None)
    assert not steps, steps
    return {"name": name, "prompt_ids": prompt, "greedy_ids": ids, "margins": margins,
            "llama_cpp": "llama-server from the llama-cpp-python 0.3.36 sdist (llama.cpp 0c1e570), f16 KV, 1 thread"}


def main():
    server = sys.argv[1]
    for name in NAMES:
        g = golden(server, name)
        with open(os.path.join(HERE, name + ".llama_cpp.json"), "w") as f:
            json.dump(g, f, indent=1)
            f.write("\n")
        known = [m for m in g["margins"] if m is not None]
        print(name, len(known), "steps with a margin, smallest", min(known), "; >= 0.1:", sum(m >= 0.1 for m in known))


if __name__ == "__main__":
    main()
