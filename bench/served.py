"""One `tally serve` on loopback for a bench script: started on a free port, yielded once /health answers,
stopped by its PID (SIGTERM, then waited for) however the script ends.

    from served import served
    with served(tally, model, "--no-metering") as (base, proc):
        ...
"""
import contextlib
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(tally, model, *flags, log=subprocess.DEVNULL):
    port = free_port()
    proc = subprocess.Popen([tally, "serve", "--model", model, "--port", str(port), *flags], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"tally serve exited with {proc.returncode}")
                time.sleep(0.2)
        else:
            raise RuntimeError("tally serve did not answer /health within a minute")
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
