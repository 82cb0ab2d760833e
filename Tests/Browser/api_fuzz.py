"""Fuzz the JSON API with schemathesis against Docs/openapi.json (issue 15, "Bad input through
HTTP"): a node started here, every operation called with generated (and deliberately wrong) input,
once with a write token and once with a browser session and its CSRF token. The check is
`not_a_server_error`: no 5xx and no crash. Bounded by SARABAN_FUZZ_SECONDS (default 60) per run.

    .build/pyvenv/bin/python Tests/Browser/api_fuzz.py
"""

import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

sys.path.insert(0, os.path.dirname(__file__))
from webnode import ARTIFACTS, ROOT, WebNode  # noqa: E402

SECONDS = os.environ.get("SARABAN_FUZZ_SECONDS", "60")
SCHEMATHESIS = os.environ.get("SCHEMATHESIS", os.path.join(os.path.dirname(sys.executable), "schemathesis"))


def session(url, name, password):
    """Logs in like a browser; returns the Cookie header and the page's CSRF token."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/login").read().decode()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"_csrf": csrf, "name": name, "password": password, "next": "/"}).encode()
    home = opener.open(urllib.request.Request(url + "/login", data=form)).read().decode()
    token = re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar if c.name == "saraban_session")
    return cookie, token


def fuzz(url, headers, label):
    args = [SCHEMATHESIS, "run", str(ROOT / "Docs" / "openapi.json"), "--url", url, "--checks", "not_a_server_error",
            "--max-time", SECONDS, "--workers", "2", "--suppress-health-check", "all",
            "--report", "junit", "--report-dir", str(ARTIFACTS / f"schemathesis-{label}")]
    for h in headers:
        args += ["-H", h]
    print(f"schemathesis ({label}):", " ".join(a if "Bearer" not in a and "saraban_session" not in a else "…" for a in args))
    return subprocess.run(args).returncode


def main():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    node = WebNode()
    try:
        node.add_user("fuzzer", "clerk", "รหัสผ่านของผู้ทดสอบ")
        token = node.token("fuzz", "write")
        node.start()
        failures = fuzz(node.url, [f"Authorization: Bearer {token}"], "token")
        cookie, csrf = session(node.url, "fuzzer", "รหัสผ่านของผู้ทดสอบ")
        failures += fuzz(node.url, [f"Cookie: {cookie}", f"X-CSRF-Token: {csrf}"], "session")
        log = open(os.path.join(node.dir, "serve.log")).read()
        if node.process.poll() is not None:
            print("the node stopped during the fuzz run:\n" + log)
            failures += 1
        for secret in (token, "รหัสผ่านของผู้ทดสอบ"):
            if secret in log:
                print("a secret reached the node's log")
                failures += 1
    finally:
        node.stop()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
