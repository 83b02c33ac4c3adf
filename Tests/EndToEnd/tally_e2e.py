"""Helpers shared by the end-to-end tests: where the binary and the default model are, and starting
`tally serve` on a free loopback port."""
import os
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TALLY_BIN", os.path.join(ROOT, ".build/debug/tally"))
MODEL = os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf")
MODEL_NAME = "SmolLM2-135M-Instruct-Q8_0"  # the served name: the file's stem


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*flags, port=None):
    """`tally serve` on loopback with the default model; returns (base URL, process) once /health is 200."""
    if not os.path.exists(MODEL):
        pytest.skip("the default model is absent; run `tally pull`")
    port = port or free_port()
    proc = subprocess.Popen([BIN, "serve", "--model", MODEL, "--port", str(port), "--kv-memory", "192", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail("server exited: " + proc.stdout.read())
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    return base, proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("server did not become healthy: " + proc.stdout.read())
