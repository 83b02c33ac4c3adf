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


def metrics(base):
    """GET /metrics as {series: value}, with the model_name label every series carries left out
    (`tally_num_requests_running`, `tally_request_success_total{finished_reason="abort"}`)."""
    import re
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        values = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                series = re.sub(r'model_name="[^"]*",?', "", series).replace(",}", "}").replace("{}", "")
                values[series] = float(value)
        return values


def start_server(*flags, port=None, model=MODEL):
    """`tally serve` on loopback (the default model unless `model` names another); returns (base URL,
    process) once /health is 200."""
    if not os.path.exists(model):
        pytest.skip("the default model is absent; run `tally pull`")
    port = port or free_port()
    # The log goes to a file, read back through proc.stdout: a pipe nobody reads until the end would fill up
    # with one info line per request and block the server.
    import tempfile
    log = tempfile.NamedTemporaryFile(prefix="tally-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([BIN, "serve", "--model", model, "--port", str(port), "--kv-memory", "192", *flags],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    log.close()
    proc.stdout = open(log.name, encoding="utf-8", errors="replace")
    os.unlink(log.name)  # stays readable through the open file
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


# Injected into a copy of a page: collects script errors from the start, then writes what the browser laid
# out (table widths, charts, the verdict's text) into the DOM that --dump-dom prints.
_CATCH_ERRORS = "<script>window.__errors=[];window.addEventListener('error',e=>window.__errors.push(String(e.message)));</script>"
_MEASURE = """<script>
const out = {errors: window.__errors, body_width: document.body.scrollWidth,
  tables: [...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().width),
  svgs: document.querySelectorAll('svg').length, verdict: document.getElementById('verdict').innerText};
const pre = document.createElement('pre'); pre.id = 'tally-measure'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


def render_in_chromium(html_path):
    """Lays `html_path` out in headless Chromium (Debian's `chromium`, which .ci/run installs) at 1280 px and
    returns what the page showed, plus every console line the browser logged (the report has no scripts of
    its own, so any console line is an error: a failed load, a parse problem)."""
    import json
    import re
    import shutil
    import tempfile
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = open(html_path, encoding="utf-8").read()
    page = page.replace("<head>", "<head>" + _CATCH_ERRORS, 1).replace("</body>", _MEASURE + "</body>", 1)
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "page.html")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(page)
        p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                            "--user-data-dir=" + os.path.join(scratch, "profile"), "--window-size=1280,2000",
                            "--virtual-time-budget=5000", "--dump-dom", "file://" + copy],
                           capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="tally-measure">(.*?)</pre>', p.stdout, re.S)
    assert found, "chromium printed no layout: " + p.stderr[-2000:]
    import html as html_module
    measured = json.loads(html_module.unescape(found.group(1)))
    measured["console"] = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    return measured


def cents(nano):
    """tally's centsText: dollars and cents with separators, "<$0.01" for a non-zero amount under half a cent."""
    sign = "-" if nano < 0 else ""
    c = (abs(nano) + 5_000_000) // 10_000_000
    if c == 0 and nano != 0:
        return sign + "<$0.01"
    return f"{sign}${c // 100:,}.{c % 100:02d}"


def require(value, what):
    """A service a test needs (a URL, a binary): in CI (CI set) a missing one fails the test, elsewhere it skips."""
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing; .ci/run provides it")
        pytest.skip(f"no {what}")
    return value
