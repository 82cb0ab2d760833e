"""Start a Saraban node with its web app for the browser tests and the API fuzz run.

A node in a temporary directory: `saraban init`, users and an API token made with the CLI, then
`saraban serve --http 127.0.0.1:0`; the web app's address is read from the line serve prints
(`web app at http://127.0.0.1:PORT/`). Standard library only.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("SARABAN_BIN", str(ROOT / ".build" / "debug" / "saraban"))
ARTIFACTS = pathlib.Path(os.environ.get("SARABAN_ARTIFACTS", ROOT / ".build" / "artifacts" / "web"))


def drain(stream):
    """Reads (and drops) what serve prints after it is ready, so a full pipe never blocks it;
    closes the pipe at its end (serve exited)."""
    def run():
        with stream:
            for _ in stream:
                pass
    threading.Thread(target=run, daemon=True).start()


def saraban(*args, stdin=None):
    r = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"saraban {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r.stdout


class WebNode:
    """A running `saraban serve` with its web app; `url` is its base URL."""

    def __init__(self, office="สำนักงานจังหวัดน่าน", code="นน"):
        self.dir = tempfile.mkdtemp(prefix="saraban-web-")
        self.data = os.path.join(self.dir, "data")
        saraban("init", "--data", self.data, "--office", office, "--code", code)
        self.process = None
        self.url = None

    def add_user(self, name, role, password, display=None):
        args = ["user", "add", "--data", self.data, name, "--role", role, "--password-file", "-"]
        if display:
            args += ["--display", display]
        saraban(*args, stdin=password + "\n")

    def token(self, name, scope):
        out = saraban("token", "create", "--data", self.data, "--name", name, "--scope", scope, "--json")
        return json.loads(out)["token"]

    def cli(self, *args, stdin=None):
        """`saraban ARGS --data DIR` on this node (the CLI works beside a running serve)."""
        return saraban(*args, "--data", self.data, stdin=stdin)

    def start(self, listen="127.0.0.1:0"):
        self.log = open(os.path.join(self.dir, "serve.log"), "a")
        self.process = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--listen", listen, "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        for line in self.process.stdout:
            m = re.search(r"web app at (http://[0-9.:]+)/", line)
            if m:
                self.url = m.group(1)
                drain(self.process.stdout)
                return self
        raise RuntimeError("serve ended before the web app started: " + open(self.log.name).read())

    def halt(self):
        """Stops serve, keeping the data directory."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        if self.process:
            self.log.close()

    def stop(self):
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)
