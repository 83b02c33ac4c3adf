#!/usr/bin/env python3
# The same measurement with HF `tokenizers` (Rust), built from the same GGUF exactly as the goldens'
# oracle (Tests/TokenizationTests/Fixtures/make_goldens.py). Single thread: TOKENIZERS_PARALLELISM=false
# and one encode call per measurement.
# Usage: python3 bench/tokenizer/hf_bench.py <model.gguf> <corpus.txt> [repeats] [--native]
# --native uses SmolLM2's shipped pre-tokenizer (Digits + ByteLevel regex) instead of the oracle's Split regexes.
import os
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/TokenizationTests/Fixtures"))
import make_goldens  # noqa: E402

model, corpus_path = sys.argv[1], sys.argv[2]
repeats = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 5
make_goldens.VOCAB = make_goldens.Path(model)
tokens, types, merges = make_goldens.load_vocab()
start = time.perf_counter()
tok = make_goldens.build(tokens, types, merges, [r"\p{N}", make_goldens.GPT2])
if "--native" in sys.argv:
    # SmolLM2's own tokenizer.json pre-tokenizer: Digits + ByteLevel with its built-in GPT-2 regex.
    tok.pre_tokenizer = make_goldens.pre_tokenizers.Sequence([
        make_goldens.pre_tokenizers.Digits(individual_digits=True),
        make_goldens.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
load = time.perf_counter() - start
text = open(corpus_path, encoding="utf-8", newline="").read()  # keep \r\n as written
lines = text.split("\n")
mb = len(text.encode("utf-8")) / 1e6


def fnv(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        h = ((h ^ i) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def measure(label, body, unit="tokens"):
    times, count = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        count = body()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(f"{label}: {mb / med:.2f} MB/s median, {mb / times[0]:.2f} MB/s best ({count} {unit}, {med:.3f} s median of {repeats})")


print(f"corpus {mb:.2f} MB, {len(lines)} lines; tokenizer built in {load:.3f} s")
whole = tok.encode(text).ids
print(f"whole-text ids: {len(whole)} tokens, fnv {fnv(whole):x}")
measure("encode whole text", lambda: len(tok.encode(text).ids))
measure("encode line by line", lambda: sum(len(tok.encode(line).ids) for line in lines))
measure("decode whole text", lambda: len(tok.decode(whole, skip_special_tokens=False).encode("utf-8")), unit="bytes")
