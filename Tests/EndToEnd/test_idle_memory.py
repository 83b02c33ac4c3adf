"""Idle memory (bench/server/idle_memory.py, short): after `--idle-release` seconds without requests the KV
pages a burst of long prompts touched go back to the OS (resident memory falls by most of what the burst
added), and the server still answers afterwards."""
import importlib.util
import os

from tally_e2e import BIN, MODEL, ROOT, require

spec = importlib.util.spec_from_file_location("idle_memory", os.path.join(ROOT, "bench/server/idle_memory.py"))
idle_memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(idle_memory)


def test_kv_memory_goes_back_to_the_os_when_idle():
    require(os.path.exists(MODEL) or None, "the default model (tally pull)")
    r = idle_memory.measure(BIN, idle_release=1.0, requests=6, prompt_words=600, kv_memory=256)
    grown = r["after_burst_mib"] - r["at_rest_mib"]
    assert grown > 40, r  # 6 prompts of ~600 tokens: about 80 MiB of f16 keys and values
    assert r["after_burst_mib"] - r["after_idle_mib"] > 0.6 * grown, r
