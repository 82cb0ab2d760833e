"""Two office nodes and a relay for the correspondence browser tests (issue 15's acceptance).

Office A (สำนักงานจังหวัดน่าน) creates an exchange space and invites office B (อำเภอเมืองน่าน);
a relay (`init --relay`, `space carry`) carries it blind. Each office dials only the relay, so
every dispatch and receipt goes through it. Every node is a `saraban serve` with its web app on a
free port. Standard library only.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from webnode import BIN, drain, saraban


class Node:
    def __init__(self, root, name, office, code=None, relay=False):
        self.name = name
        self.data = os.path.join(root, name)
        args = ["init", "--data", self.data, "--office", office]
        if relay:
            args.append("--relay")
        if code:
            args += ["--code", code]
        self.id = saraban(*args).strip().splitlines()[-1]
        self.relay = relay
        self.office = office
        self.process = None
        self.url = None
        self.port = None
        self.log_path = os.path.join(root, name + ".log")

    def cli(self, *args, stdin=None):
        return saraban(*args, "--data", self.data, stdin=stdin)

    def start(self):
        self.log = open(self.log_path, "w")
        args = [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--max-backoff", "1"]
        if self.relay:
            args.append("--relay")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        for line in self.process.stdout:
            m = re.match(r"serving \S+ on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            m = re.search(r"web app at (http://[0-9.:]+)/", line)
            if m:
                self.url = m.group(1)
            if self.port and (self.url or self.relay):
                drain(self.process.stdout)
                return self
        raise RuntimeError(f"serve for {self.name} ended before it was ready: " + open(self.log_path).read())

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        if self.process:
            self.log.close()


class Offices:
    """The network: `a`, `b` (offices) and `relay`; `space` is the exchange space's id."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="saraban-offices-")
        self.relay = Node(self.dir, "relay", "คลาวด์กลาง", relay=True)
        self.a = Node(self.dir, "a", "สำนักงานจังหวัดน่าน", code="นน")
        self.b = Node(self.dir, "b", "อำเภอเมืองน่าน", code="นน 0018")
        self.space = self.a.cli("space", "create", "จังหวัดน่าน").strip()
        invite = os.path.join(self.dir, "b.invite")
        self.a.cli("space", "invite", self.space, self.b.id, "--office", self.b.office, "--out", invite)
        self.b.cli("space", "join", invite)
        self.relay.cli("space", "carry", self.space, "--name", "จังหวัดน่าน")
        for n in (self.relay, self.a, self.b):
            n.start()
        for n in (self.a, self.b):
            n.cli("peer", "add", self.relay.id, f"127.0.0.1:{self.relay.port}", "--name", "relay")
            self.relay.cli("peer", "add", n.id, f"127.0.0.1:{n.port}", "--name", n.office)

    def letter(self, node, subject, urgency=None, secrecy=None, space=None):
        """Drafts a complete external letter at `node` with the CLI; returns its id."""
        args = ["letter", "new", "--kind", "ภายนอก", "--subject", subject, "--to", "นายอำเภอเมืองน่าน",
                "--set", "ข้อความ=ด้วยจังหวัดน่านขอเชิญท่านเข้าร่วมประชุมคณะกรรมการ ณ ห้องประชุมศาลากลางจังหวัด",
                "--set", "คำลงท้าย=ขอแสดงความนับถือ", "--set", "ผู้ลงนาม=นายสมมติ ตัวอย่าง",
                "--set", "ตำแหน่ง=ผู้ว่าราชการจังหวัดน่าน"]
        if urgency:
            args += ["--urgency", urgency]
        if secrecy:
            args += ["--secrecy", secrecy]
        if space:
            args += ["--space", space]
        return node.cli(*args).strip().splitlines()[-1]

    def send(self, node, letter, to):
        node.cli("letter", "send", letter, "--to", to)

    def wait_for(self, predicate, timeout=60, what="a condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    def inbox(self, node):
        return json.loads(node.cli("letter", "inbox", "--json") or "[]")

    def stop(self):
        for n in (self.a, self.b, self.relay):
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
