"""Two replicas behind nginx with prefix affinity (`tally fleet nginx`): requests that share a system prompt
(or an X-Session-ID) land on one replica and hit its prefix cache, both replicas get work, SSE passes
through, and with one replica killed its requests go to the other.

    TALLY_NGINX=/usr/sbin/nginx TALLY_NGINX_JS=/usr/lib/nginx/modules/ngx_http_js_module.so \\
        TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_fleet_nginx.py

`.ci/run` unpacks nginx and its njs module from Debian's packages (without installing or starting them)
and sets both variables; in CI (CI set) a missing nginx fails. Everything listens on 127.0.0.1.
"""
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request

import openai
import pytest

from tally_e2e import BIN, MODEL_NAME, free_port, require, start_server

NGINX = os.environ.get("TALLY_NGINX")
NGINX_JS = os.environ.get("TALLY_NGINX_JS", "/usr/lib/nginx/modules/ngx_http_js_module.so")
PROMPTS = [f"You are assistant number {i} of the support desk. Answer in one short sentence, politely, and "
           f"never invent facts about product line {i}." for i in range(12)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    require(NGINX, "nginx (TALLY_NGINX, TALLY_NGINX_JS)")
    tmp = tmp_path_factory.mktemp("fleet")
    replicas = {}
    for name in ["a", "b"]:
        port = free_port()
        base, proc = start_server("--db", str(tmp / f"{name}.db"), "--replica", name, port=port)
        replicas[name] = (port, proc, tmp / f"{name}.db")
    listen = free_port()
    out = subprocess.run([BIN, "fleet", "nginx", "--listen", f"127.0.0.1:{listen}", "--dir", str(tmp / "nginx"),
                          "--js-module", NGINX_JS, "--fail-timeout", "30"]
                         + [a for name, (port, _, _) in replicas.items() for a in ("--replica", f"{name}=127.0.0.1:{port}")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(tmp / "nginx"), "-c", "nginx.conf", "-e", "logs/error.log", "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{listen}"
    for _ in range(100):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1):
                break
        except OSError:
            if nginx.poll() is not None:
                pytest.fail("nginx exited: " + nginx.stderr.read())
            time.sleep(0.1)
    yield base, replicas
    nginx.send_signal(signal.SIGQUIT)
    nginx.wait(timeout=30)
    for _, proc, _ in replicas.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def served_by(replicas, request_id):
    found = [name for name, (_, _, db) in replicas.items()
             if sqlite3.connect(db).execute("SELECT 1 FROM usage WHERE id = ?", (request_id,)).fetchone()]
    assert len(found) == 1, (request_id, found)
    return found[0]


def chat(client, system, user, **extra):
    return client.chat.completions.create(model=MODEL_NAME, max_tokens=1, temperature=0, **extra,
                                          messages=[{"role": "system", "content": system}, {"role": "user", "content": user}])


def test_a_shared_system_prompt_stays_on_one_replica_and_hits_its_cache(fleet):
    base, replicas = fleet
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
    homes = {}
    for i, system in enumerate(PROMPTS):
        answers = [chat(client, system, f"Question {j} from user {i}?") for j in range(3)]
        where = {served_by(replicas, a.id) for a in answers}
        assert len(where) == 1, f"prompt {i} spread over {where}"
        homes[i] = where.pop()
        # The later requests found the system prompt in that replica's prefix cache.
        assert all(a.usage.prompt_tokens_details.cached_tokens > 0 for a in answers[1:])
    assert set(homes.values()) == {"a", "b"}, "every prompt went to one replica: the key does not vary"


def test_a_session_header_keeps_a_client_on_one_replica(fleet):
    base, replicas = fleet
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
    ids = [chat(client, PROMPTS[i], "Hello?", extra_headers={"X-Session-ID": "session-42"}).id for i in range(6)]
    assert len({served_by(replicas, i) for i in ids}) == 1


def test_sse_passes_through(fleet):
    base, _ = fleet
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
    chunks = list(client.chat.completions.create(model=MODEL_NAME, max_tokens=8, temperature=0, stream=True,
                                                  messages=[{"role": "user", "content": "Count to five."}]))
    assert len(chunks) >= 3 and chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_a_killed_replica_fails_over_to_the_other(fleet):
    base, replicas = fleet
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
    _, victim, _ = replicas["a"]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    # Every prompt is answered, those that lived on a now by b.
    for i, system in enumerate(PROMPTS):
        answer = chat(client, system, f"After the failure, user {i}?")
        assert served_by(replicas, answer.id) == "b"
