"""CLI habits: --version, an example in every command's help, documented exit codes, and serve's settings
from TALLY_* variables and a --config JSON file, under the flags of the command line."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tally_e2e import BIN, MODEL, free_port, require

COMMANDS = [[], ["pull"], ["list"], ["inspect"], ["quantize"], ["tokenize"], ["generate"], ["perplexity"], ["serve"],
            ["report"], ["fleet"], ["fleet", "nginx"], ["fleet", "prometheus"], ["fleet", "rules"], ["bench"],
            ["bench", "run"], ["bench", "compare"]]


def tally(*args, env=None, timeout=60):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_version_and_an_example_in_every_help():
    v = tally("--version")
    assert v.returncode == 0 and v.stdout.startswith("tally ") and v.stdout.split()[1][0].isdigit()
    for command in COMMANDS:
        h = tally(*command, "--help")
        assert h.returncode == 0 and "Example" in h.stdout, command


def test_exit_codes_are_the_documented_ones():
    assert "Exit status: 0 success; 1" in tally("--help").stdout
    assert tally("serve", "--no-such-flag").returncode == 64  # a command line it cannot parse
    bad = tally("serve", "--port", "70000")                   # a flag value it refuses
    assert bad.returncode == 1 and "--port 70000" in bad.stderr


def serve(args, env, port):
    """Starts serve (no metering, small KV) and returns (process, the port /health answered on or None)."""
    proc = subprocess.Popen([BIN, "serve", "--model", MODEL, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("serve did not answer on the expected port: " + proc.stderr.read())


def answers_to(port, name):
    """Whether the server takes `name` as its model (its name or an --alias): GET /v1/models/NAME is 200, not 404."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{name}", timeout=10).status == 200
    except urllib.error.HTTPError as e:
        assert e.code == 404
        return False


def test_serve_settings_come_from_a_config_file_then_the_environment_then_the_flags(tmp_path):
    require(os.path.exists(MODEL) or None, "the default model (tally pull)")
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    config = tmp_path / "serve.json"
    config.write_text(json.dumps({"port": file_port, "alias": ["from-file"], "no_metering": True, "kv-memory": 192,
                                  "log-level": "warning"}))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}

    proc = serve(["--config", str(config)], base_env, file_port)  # the file alone
    try:
        assert answers_to(file_port, "from-file") and not answers_to(file_port, "env-a")
    finally:
        proc.terminate(), proc.wait(timeout=60)

    env = base_env | {"TALLY_CONFIG": str(config), "TALLY_PORT": str(env_port), "TALLY_ALIAS": "env-a, env-b"}
    proc = serve([], env, env_port)  # the environment over the file
    try:
        assert answers_to(env_port, "env-a") and answers_to(env_port, "env-b") and not answers_to(env_port, "from-file")
    finally:
        proc.terminate(), proc.wait(timeout=60)

    proc = serve(["--port", str(flag_port), "--alias", "flag"], env, flag_port)  # the flags over both
    try:
        assert answers_to(flag_port, "flag") and not answers_to(flag_port, "env-a")
    finally:
        proc.terminate(), proc.wait(timeout=60)


def test_bad_settings_are_refused_by_name(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    p = tally("serve", "--port", "70000", env=env | {"TALLY_NO_METERING": "maybe"})
    assert p.returncode == 1 and "TALLY_NO_METERING=maybe" in p.stderr
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"prot": 8080}))
    p = tally("serve", "--config", str(config), env=env)
    assert p.returncode == 1 and "prot, which is not a serve flag" in p.stderr
