"""The fuzz targets' committed corpora (seeds, and every crash the fuzzer found, kept as regressions) replayed
through the normally built `tally-fuzz`: each input must pass its target's checks without a crash.
Fuzzing itself is `bash bench/fuzz/run.sh TARGET RUNS` (README, Fuzzing).

    python3 -m pytest -q Tests/EndToEnd/test_fuzz_corpora.py
"""
import os
import subprocess

import pytest

from tally_e2e import ROOT

FUZZ = os.path.join(ROOT, ".build/debug/tally-fuzz")
TARGETS = ["gguf", "wire", "tokenize", "chat", "detokenize", "stop", "schema"]


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_replays_cleanly(target):
    if not os.path.exists(FUZZ):
        pytest.fail("build it first: swift build --product tally-fuzz (.ci/run does)")
    corpus = os.path.join(ROOT, "bench/fuzz/corpus", target)
    count = len(os.listdir(corpus))
    assert count >= 3
    p = subprocess.run([FUZZ, target, corpus], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and f"replayed {count} inputs" in p.stdout, p.stdout + p.stderr
