"""`tally pull ORG/REPO FILE` and `tally pull URL` against a stand-in Hugging Face hub on loopback: the
resolve URL, the hub's redirect carrying X-Linked-Etag (the file's sha256), Range requests for resume, a
token sent only to the hub's own host, and the errors a user meets (wrong sha256, missing file, a gated
repository, a transfer cut short).

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_pull.py
"""
import hashlib
import http.server
import os
import subprocess
import threading

import pytest

from tally_e2e import BIN, ROOT

# A real GGUF (the Qwen2 architecture fixture) so that the pulled file is one tally can inspect.
PAYLOAD = open(os.path.join(ROOT, "Tests/ModelRuntimeTests/Fixtures/arch/qwen2.gguf"), "rb").read()
SHA = hashlib.sha256(PAYLOAD).hexdigest()
FILE = "tiny-qwen2-q8_0.gguf"


class Hub(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.requests = []        # (path, Range header, Authorization header)
        self.cut_next = False     # the next full or ranged transfer stops half-way
        self.token = None         # when set, the resolve URL wants this bearer token
        self.cdn = self           # where the resolve URL redirects (another server: another origin)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        hub = self.server
        hub.requests.append((self.path, self.headers.get("Range"), self.headers.get("Authorization")))
        if self.path.startswith("/org/repo/resolve/main/"):
            if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self.reply(401, b"gated")
            if self.path != f"/org/repo/resolve/main/{FILE}":
                return self.reply(404, b"Entry not found")
            # As the hub does for LFS files: a redirect to the CDN, stating the sha256.
            self.send_response(302)
            self.send_header("Location", f"{hub.cdn.base}/cdn/{FILE}")
            self.send_header("X-Linked-Etag", f'"{SHA}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == f"/cdn/{FILE}":
            self.send_file()
        else:
            self.reply(404, b"no")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_file(self):
        start = 0
        wanted = self.headers.get("Range")
        if wanted:
            start = int(wanted.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_next:
            self.server.cut_next = False
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def hub():
    """The hub and its CDN: two servers on loopback, so the redirect leaves the hub's origin."""
    servers = [Hub(), Hub()]
    servers[0].cdn = servers[1]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield servers[0]
    for s in servers:
        s.shutdown()
        s.server_close()


def pull(models, *args, env=None):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run([BIN, "pull", "--models-dir", str(models), *args], capture_output=True, text=True,
                          timeout=120, env=environment)


def test_a_repository_file_is_pulled_and_checked_against_the_hubs_sha256(hub, tmp_path):
    p = pull(tmp_path, "org/repo", FILE, "--endpoint", hub.base)
    assert p.returncode == 0, p.stderr
    assert "checked against the hub's X-Linked-Etag" in p.stdout and SHA in p.stdout
    assert open(tmp_path / FILE, "rb").read() == PAYLOAD
    assert not (tmp_path / (FILE + ".part")).exists()
    assert [r[0] for r in hub.requests + hub.cdn.requests] == [f"/org/repo/resolve/main/{FILE}", f"/cdn/{FILE}"]
    # The pulled file is a model tally reads.
    info = subprocess.run([BIN, "inspect", str(tmp_path / FILE)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "qwen2" in info.stdout
    # Pulled again: nothing is downloaded.
    again = pull(tmp_path, "org/repo", FILE, "--endpoint", hub.base)
    assert again.returncode == 0 and "is present" in again.stdout and len(hub.requests + hub.cdn.requests) == 2


def test_an_interrupted_download_resumes_where_it_stopped(hub, tmp_path):
    hub.cdn.cut_next = True
    first = pull(tmp_path, "org/repo", FILE, "--endpoint", hub.base)
    assert first.returncode != 0 and "run the same pull again to resume" in first.stderr
    kept = os.path.getsize(tmp_path / (FILE + ".part"))
    assert 0 < kept < len(PAYLOAD)
    second = pull(tmp_path, "org/repo", FILE, "--endpoint", hub.base)
    assert second.returncode == 0, second.stderr
    assert f"resumed after {kept} bytes" in second.stdout
    assert hub.cdn.requests[-1][1] == f"bytes={kept}-"
    assert open(tmp_path / FILE, "rb").read() == PAYLOAD


def test_a_wrong_sha256_is_refused_and_nothing_is_kept(hub, tmp_path):
    p = pull(tmp_path, f"{hub.cdn.base}/cdn/{FILE}", "--sha256", "0" * 64)
    assert p.returncode != 0 and "sha256" in p.stderr and SHA in p.stderr
    assert not (tmp_path / FILE).exists() and not (tmp_path / (FILE + ".part")).exists()
    # The URL form with the right sha256.
    ok = pull(tmp_path, f"{hub.cdn.base}/cdn/{FILE}", "--sha256", SHA.upper())
    assert ok.returncode == 0 and "checked against --sha256" in ok.stdout


def test_missing_files_and_gated_repositories_are_named(hub, tmp_path):
    missing = pull(tmp_path, "org/repo", "nope.gguf", "--endpoint", hub.base)
    assert missing.returncode != 0 and "HTTP 404" in missing.stderr and "check the names" in missing.stderr
    hub.token = "secret"
    gated = pull(tmp_path, "org/repo", FILE, "--endpoint", hub.base)
    assert gated.returncode != 0 and "HTTP 401" in gated.stderr and "HF_TOKEN" in gated.stderr
    ok = pull(tmp_path, "org/repo", FILE, "--endpoint", hub.base, env={"HF_TOKEN": "secret"})
    assert ok.returncode == 0, ok.stderr
    # The token went to the hub, and not along the redirect.
    assert hub.requests[-1] == (f"/org/repo/resolve/main/{FILE}", None, "Bearer secret")
    assert hub.cdn.requests[-1] == (f"/cdn/{FILE}", None, None)
    bad = pull(tmp_path, "not-a-repo", FILE)
    assert bad.returncode != 0 and "ORG/REPO FILE" in bad.stderr
