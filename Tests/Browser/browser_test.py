"""Real-browser tests of the web app (issue 15): Debian's chromium and chromium-driver driven by
selenium, against a node this script starts. Run by .ci/run; by hand:

    .build/pyvenv/bin/python Tests/Browser/browser_test.py

Screenshots go to $SARABAN_ARTIFACTS (default .build/artifacts/web), kept by CI.
"""

import os
import re
import sys
import unittest
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
# Waits poll through WebDriverException: while a page is replaced, Chrome may answer "Node with
# given id does not belong to the document" for an element of the page being left.
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
from webnode import ARTIFACTS, WebNode  # noqa: E402

CLERK_PASSWORD = "รหัสผ่านของสมศรี"


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
              "--lang=th-TH", "--disable-gpu", "--no-first-run"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=o)


class WebAppInABrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.node = WebNode()
        cls.node.add_user("somsri", "clerk", CLERK_PASSWORD, display="นางสาวสมศรี ใจดี")
        cls.node.start()
        cls.b = browser()
        cls.wait = WebDriverWait(cls.b, 20, ignored_exceptions=(WebDriverException,))

    @classmethod
    def tearDownClass(cls):
        cls.b.quit()
        cls.node.stop()

    def shot(self, name):
        self.b.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def login(self, name="somsri", password=CLERK_PASSWORD):
        self.wait.until(EC.presence_of_element_located((By.ID, "name"))).send_keys(name)
        self.b.find_element(By.ID, "password").send_keys(password)
        self.b.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()

    def logout(self):
        self.b.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        self.wait.until(EC.url_contains("/login"))

    def test_1_logged_out_requests_get_the_login_page(self):
        self.b.delete_all_cookies()
        self.b.get(self.node.url + "/api-less/deep/page?x=1")
        self.wait.until(EC.url_contains("/login"))
        path = urllib.parse.urlparse(self.b.current_url)
        self.assertEqual(path.path, "/login")
        self.assertEqual(urllib.parse.parse_qs(path.query)["next"], ["/api-less/deep/page?x=1"])
        self.assertEqual(self.b.find_element(By.TAG_NAME, "html").get_attribute("lang"), "th")
        self.assertIn("เข้าสู่ระบบ", self.b.find_element(By.TAG_NAME, "h1").text)
        # Labels name the fields (accessibility).
        self.assertEqual(self.b.find_element(By.CSS_SELECTOR, "label[for=name]").text, "ชื่อผู้ใช้")
        self.shot("login")

    def test_2_a_clerk_logs_in_and_sees_thai_in_a_thai_font(self):
        self.b.delete_all_cookies()
        self.b.get(self.node.url + "/")
        self.login()
        # The login page has an h1 too: wait for the home page's (an element found before the
        # page was replaced goes stale: seen in CI).
        self.wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ยินดีต้อนรับ"))
        self.assertIn("ยินดีต้อนรับ นางสาวสมศรี ใจดี", self.b.find_element(By.TAG_NAME, "h1").text)
        self.assertIn("เจ้าหน้าที่สารบรรณ", self.b.find_element(By.CSS_SELECTOR, "header .user").text)
        # The Thai font the node serves is loaded, and the sample is set in it.
        self.b.execute_async_script("document.fonts.ready.then(arguments[arguments.length - 1]);")
        loaded = self.b.execute_script(
            "return [...document.fonts].filter(f => f.family.replace(/\"/g, '') === 'SarabanThai'"
            " && f.status === 'loaded').length;")
        self.assertGreaterEqual(loaded, 1, "the SarabanThai face (Laksaman) did not load")
        family = self.b.execute_script(
            "return getComputedStyle(document.getElementById('thai-sample')).fontFamily;")
        self.assertTrue(family.replace('"', "").startswith("SarabanThai"), family)
        self.assertTrue(self.b.execute_script("return document.fonts.check('20px SarabanThai', 'สารบรรณ');"))
        # Not boxes: a missing glyph is drawn as one same-width box, real Thai letters differ in width.
        widths = self.b.execute_script(
            "const c = document.createElement('canvas').getContext('2d'); c.font = '40px SarabanThai';"
            "return [...'กขคฆงจฉชซญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ'].map(ch => c.measureText(ch).width);")
        self.assertGreaterEqual(len(set(round(w, 1) for w in widths)), 6, widths)
        tofu = self.b.execute_script(
            "const c = document.createElement('canvas').getContext('2d'); c.font = '40px SarabanThai';"
            "return c.measureText('\\u0e5c').width;")  # unassigned in the Thai block: no glyph anywhere
        self.assertLess(sum(1 for w in widths if abs(w - tofu) < 0.05), len(widths) / 2, (widths, tofu))
        self.b.find_element(By.ID, "thai-sample").screenshot(str(ARTIFACTS / "thai-sample.png"))
        self.shot("home")
        self.logout()

    def test_3_english_switch_and_buddhist_era_dates(self):
        self.b.delete_all_cookies()
        self.b.get(self.node.url + "/")
        self.login()
        # The login page has a header too: wait for the signed-in page, and read the date there
        # (a read that meets the page being replaced is retried, not failed).
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[action='/logout'] button")))
        today = self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "header .today").text)
        year = int(today.split()[-1])
        self.assertGreater(year, 2500, today)  # Buddhist Era
        self.b.find_element(By.CSS_SELECTOR, "a.lang").click()
        self.wait.until(lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
        self.assertIn("Log out", self.b.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").text)
        self.assertTrue(self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "header .today").text).endswith(f"{year} BE"))
        self.shot("home-en")
        self.b.find_element(By.CSS_SELECTOR, "a.lang").click()
        self.wait.until(lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "th")
        self.logout()

    def test_4_a_wrong_password_is_told_in_thai_and_after_login_the_page_asked_for_opens(self):
        self.b.delete_all_cookies()
        self.b.get(self.node.url + "/?from=bookmark")
        self.wait.until(EC.url_contains("/login"))
        self.login(password="ผิดรหัส")
        err = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
        self.assertIn("ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง", err.text)
        self.shot("login-wrong")
        self.b.find_element(By.ID, "name").clear()
        self.login()
        self.wait.until(EC.url_contains("/?from=bookmark"))
        self.wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ยินดีต้อนรับ"))
        self.logout()


# --- Correspondence pages (the reading half of issue 15): two offices and a relay -------------

class CorrespondenceInABrowser(unittest.TestCase):
    """Office A sends (with the CLI until the drafting pages land), office B's clerk watches the
    inbox: the dispatch appears without a reload (server-sent events), B receives it in the
    browser, A's letter page shows the receipt with B's เลขรับ; the letter's print view, the
    register page; a ลับ letter refused by URL to a user without clearance. A is opened as
    `localhost`, B as `127.0.0.1`, so the two sessions' cookies never mix."""

    @classmethod
    def setUpClass(cls):
        from offices import Offices
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.net = Offices()
        cls.net.b.cli("user", "add", "somsri", "--role", "clerk", "--display", "นางสาวสมศรี ใจดี",
                      "--password-file", "-", stdin=CLERK_PASSWORD + "\n")
        for name, clearance in (("somchai", None), ("malee", "ลับ")):
            args = ["user", "add", name, "--role", "clerk", "--password-file", "-"]
            if clearance:
                args += ["--clearance", clearance]
            cls.net.a.cli(*args, stdin=CLERK_PASSWORD + "\n")
        cls.a_url = cls.net.a.url.replace("127.0.0.1", "localhost")
        cls.b_url = cls.net.b.url
        cls.b = browser()
        cls.wait = WebDriverWait(cls.b, 60, ignored_exceptions=(WebDriverException,))

    @classmethod
    def tearDownClass(cls):
        cls.b.quit()
        cls.net.stop()

    def shot(self, name):
        self.b.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def login(self, url, name, next_path):
        self.b.get(url + "/login?next=" + urllib.parse.quote(next_path))
        self.wait.until(EC.presence_of_element_located((By.ID, "name"))).send_keys(name)
        self.b.find_element(By.ID, "password").send_keys(CLERK_PASSWORD)
        self.b.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
        # Logged in once the browser left the login page (a next of "/" is in every URL).
        self.wait.until(lambda b: urllib.parse.urlparse(b.current_url).path != "/login")
        self.wait.until(EC.url_contains(next_path.split("?")[0]))

    def assert_thai_font(self, selector):
        """The node's Thai face (Laksaman) is loaded and used, and draws letters, not boxes."""
        self.b.execute_async_script("document.fonts.ready.then(arguments[arguments.length - 1]);")
        family = self.b.execute_script(f"return getComputedStyle(document.querySelector('{selector}')).fontFamily;")
        self.assertTrue(family.replace('"', "").startswith("SarabanThai"), family)
        self.assertTrue(self.b.execute_script("return document.fonts.check('16pt SarabanThai', 'หนังสือราชการ');"))
        widths = self.b.execute_script(
            "const c = document.createElement('canvas').getContext('2d'); c.font = '40px SarabanThai';"
            "return [...'กขคงจฉชซญดตถทธนบปผพฟมยรลวสหอฮ'].map(ch => c.measureText(ch).width);")
        self.assertGreaterEqual(len(set(round(w, 1) for w in widths)), 6, widths)

    def test_1_a_dispatch_appears_live_is_received_and_the_sender_sees_the_receipt(self):
        net = self.net
        self.login(self.b_url, "somsri", "/inbox")
        self.wait.until(lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("data-live-state") == "open")
        self.b.execute_script("window.__notReloaded = true;")
        letter = net.letter(net.a, "ขอเชิญประชุมคณะกรรมการจังหวัด", urgency="ด่วนที่สุด")
        net.send(net.a, letter, net.b.office)
        # No reload: the row arrives through /events and the page's marker survives.
        row = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr[data-dispatch]")))
        self.assertIn("ขอเชิญประชุมคณะกรรมการจังหวัด", row.text)
        self.assertIn("ด่วนที่สุด", row.text)
        self.assertTrue(self.b.execute_script("return window.__notReloaded === true;"))
        self.assertGreaterEqual(int(self.b.find_element(By.TAG_NAME, "html").get_attribute("data-live-events")), 1)
        self.assert_thai_font("table.inbox td")
        self.shot("inbox")
        row.find_element(By.CSS_SELECTOR, "button.receive").click()
        notice = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
        self.assertIn("ลงรับแล้ว เลขรับ 1", notice.text)
        # The register page shows it under receive number 1.
        self.b.get(self.b_url + "/registers/receive")
        table = self.wait.until(EC.presence_of_element_located((By.ID, "register-rows")))
        self.assertIn("ขอเชิญประชุมคณะกรรมการจังหวัด", table.text)
        self.assert_thai_font("#register-rows td")
        self.shot("register")
        # A's record of the letter: the receipt with B's receive number, live.
        self.login(self.a_url, "somchai", f"/letters/{letter}")
        self.wait.until(lambda b: "รับแล้ว เลขรับ 1" in b.find_element(By.ID, "letter-facts").text)
        self.assertIn("ส่งถึง อำเภอเมืองน่าน", self.b.find_element(By.ID, "letter-facts").text)
        self.shot("letter")
        # The print view: A4 with the Regulation's margins, in the Thai font; Chromium's PDF of it.
        self.b.get(self.a_url + f"/letters/{letter}/print")
        sheet = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "article.sheet")))
        self.assertIn("ขอเชิญประชุมคณะกรรมการจังหวัด", sheet.text)
        self.assert_thai_font("article.sheet")
        self.shot("letter-print")
        import base64
        pdf = base64.b64decode(self.b.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True})["data"])
        (ARTIFACTS / "letter-print.pdf").write_bytes(pdf)
        text = pdf.decode("latin-1")
        box = re.search(r"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", text)
        self.assertIsNotNone(box, "no page in the PDF")
        # A4 is 595.28 x 841.89 points; the letter's text is set in the embedded Laksaman.
        self.assertAlmostEqual(float(box.group(1)), 595.28, delta=1, msg=box.group(0))
        self.assertAlmostEqual(float(box.group(2)), 841.89, delta=1, msg=box.group(0))
        self.assertIn("+Laksaman", text[text.find("/FontName"):][:40])

    def test_2_a_user_without_clearance_cannot_open_a_secret_letter_by_url(self):
        net = self.net
        net.a.cli("space", "create", "ลับ-จังหวัด")
        net.a.cli("space", "clearance", "ลับ-จังหวัด", "ลับ")
        letter = net.letter(net.a, "แผนรักษาความปลอดภัยสถานที่ราชการ", secrecy="ลับ", space="ลับ-จังหวัด")
        self.b.delete_all_cookies()
        self.login(self.a_url, "somchai", "/")
        self.b.get(self.a_url + f"/letters/{letter}")
        err = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
        self.assertIn("ไม่ได้รับอนุญาต", err.text)
        self.assertNotIn("แผนรักษาความปลอดภัย", self.b.page_source)
        self.shot("secret-refused")
        self.b.delete_all_cookies()
        self.login(self.a_url, "malee", f"/letters/{letter}")
        sheet = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "article.sheet")))
        self.assertIn("แผนรักษาความปลอดภัยสถานที่ราชการ", sheet.text)
        self.assertIn("ลับ", self.b.find_element(By.CSS_SELECTOR, "p.secrecy.top").text)

# --- end of the correspondence pages ---------------------------------------------------------


# --- Writing: drafting, signing, dispatch, routing, conflicts (Docs/WEB.md, "Writing") ---

OFFICE_A = "สำนักงานจังหวัดน่าน"
OFFICE_B = "ที่ว่าการอำเภอเมืองน่าน"
OFFICER = "นายสมชาย ใจดี"
OFFICER_PASSPHRASE = "กุญแจลงนามของปลัด"
HEAD_PASSWORD = "รหัสผ่านของหัวหน้า"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_id(node):
    import json
    return json.loads(node.cli("id", "--json"))["nodeID"]


def wait_for(what, check, seconds=90):
    import time
    end = time.time() + seconds
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


class WritingInABrowser(unittest.TestCase):
    """Office A (two nodes: A and A2) and office B, started by the test: a clerk at A drafts,
    registers, an officer signs with the passphrase (a wrong one refused), the letter is sent to B;
    B's head routes it; a conflict made by A and A2 is resolved from A's conflicts page."""

    @classmethod
    def setUpClass(cls):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.a = WebNode(OFFICE_A, "นน 0017")
        cls.a2 = WebNode(OFFICE_A, "นน 0017")
        cls.bn = WebNode(OFFICE_B, "นน 0117")
        cls.ports = {n: free_port() for n in ("a", "a2", "b")}
        ids = {"a": node_id(cls.a), "a2": node_id(cls.a2), "b": node_id(cls.bn)}
        # The exchange space between the offices, and office A's own workspace on its two nodes.
        cls.a.cli("space", "create", "แลกเปลี่ยนน่าน")
        inv = os.path.join(cls.a.dir, "b.invite")
        cls.a.cli("space", "invite", "แลกเปลี่ยนน่าน", ids["b"], "--office", OFFICE_B, "--out", inv)
        cls.bn.cli("space", "join", inv)
        cls.a.cli("space", "create", "งานสารบรรณ")
        inv2 = os.path.join(cls.a.dir, "a2.invite")
        cls.a.cli("space", "invite", "งานสารบรรณ", ids["a2"], "--office", OFFICE_A, "--out", inv2)
        cls.a2.cli("space", "join", inv2)
        cls.a.cli("peer", "add", ids["b"], f"127.0.0.1:{cls.ports['b']}", "--name", OFFICE_B)
        cls.bn.cli("peer", "add", ids["a"], f"127.0.0.1:{cls.ports['a']}", "--name", OFFICE_A)
        cls.a.cli("peer", "add", ids["a2"], f"127.0.0.1:{cls.ports['a2']}", "--name", "A2")
        cls.a2.cli("peer", "add", ids["a"], f"127.0.0.1:{cls.ports['a']}", "--name", "A")
        cls.a.cli("officer", "add", OFFICER, "--position", "ปลัดจังหวัด", "--passphrase-file", "-",
                  stdin=OFFICER_PASSPHRASE + "\n")
        cls.a.add_user("somsri", "clerk", CLERK_PASSWORD, display="นางสาวสมศรี ใจดี")
        cls.a.add_user("somchai", "officer", CLERK_PASSWORD, display=OFFICER)
        cls.bn.add_user("head", "head", HEAD_PASSWORD, display="นายหัวหน้า อำเภอ")
        # The conflict: a letter in A's workspace reaches A2, then both change its subject apart.
        cls.conflicted = cls.a.cli(
            "letter", "new", "--kind", "ภายใน", "--subject", "ขอเชิญประชุม", "--space", "งานสารบรรณ").strip().splitlines()[-1]
        cls.a2.start(f"127.0.0.1:{cls.ports['a2']}")
        cls.a.cli("sync", "A2")
        cls.a2.halt()
        cls.a.cli("letter", "edit", cls.conflicted, "เรื่อง", "ขอเชิญประชุมคณะกรรมการ")
        cls.a2.cli("letter", "edit", cls.conflicted, "เรื่อง", "ขอเลื่อนการประชุม")
        for n, key in ((cls.a, "a"), (cls.a2, "a2"), (cls.bn, "b")):
            n.start(f"127.0.0.1:{cls.ports[key]}")
        cls.b = browser()
        cls.wait = WebDriverWait(cls.b, 30, ignored_exceptions=(WebDriverException,))

    @classmethod
    def tearDownClass(cls):
        cls.b.quit()
        for n in (cls.a, cls.a2, cls.bn):
            n.stop()

    def shot(self, name):
        self.b.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def login(self, node, name, password):
        self.b.delete_all_cookies()
        self.b.get(node.url + "/login")
        self.wait.until(EC.presence_of_element_located((By.ID, "name"))).send_keys(name)
        self.b.find_element(By.ID, "password").send_keys(password)
        self.b.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "header .user")))

    def click_and_load(self, element_id):
        """Clicks a submit button and waits for the page it leads to."""
        old = self.b.find_element(By.TAG_NAME, "main")
        self.b.find_element(By.ID, element_id).click()

        def gone(_):
            # Chrome may answer "Node with given id does not belong to the document" instead of
            # a stale-element error for an element of the page just left: gone all the same.
            try:
                old.is_enabled()
                return False
            except WebDriverException:
                return True

        self.wait.until(gone)

    def fill(self, name, value):
        e = self.b.find_element(By.ID, "f-" + name)
        e.clear()
        e.send_keys(value)

    def test_1_draft_register_sign_and_send_to_office_b_then_b_routes_it(self):
        import json
        self.login(self.a, "somsri", CLERK_PASSWORD)
        self.b.get(self.a.url + "/letters/new")
        self.b.find_element(By.CSS_SELECTOR, "a[href='/letters/new?kind=internal']").click()
        self.wait.until(EC.presence_of_element_located((By.ID, "f-subject")))
        self.fill("subject", "ขอเชิญประชุมประจำเดือน")
        self.fill("salutation", "นายอำเภอเมืองน่าน")
        self.fill("agency", "สำนักงานจังหวัดน่าน กลุ่มงานอำนวยการ")
        self.fill("body", "ขอเชิญประชุมประจำเดือนธันวาคม\nณ ห้องประชุมศาลากลางจังหวัด")
        self.click_and_load("save")
        self.wait.until(EC.presence_of_element_located((By.ID, "notice")))
        letter = self.b.current_url.split("/letters/")[1].split("/")[0]
        # Missing fields are named beside them before registration.
        self.assertIn("ผู้ลงนาม", self.b.find_element(By.ID, "e-signer").text)
        self.shot("draft")
        # Only an officer signs: the clerk's page has no signing form.
        self.assertEqual(self.b.find_elements(By.ID, "sign-form"), [])
        self.login(self.a, "somchai", CLERK_PASSWORD)
        self.b.get(f"{self.a.url}/letters/{letter}/edit")
        self.wait.until(EC.presence_of_element_located((By.ID, "passphrase"))).send_keys("ผิดรหัส")
        self.click_and_load("sign")
        problem = self.wait.until(EC.presence_of_element_located((By.ID, "problem")))
        self.assertIn("รหัสผ่านกุญแจลงนามไม่ถูกต้อง", problem.text)
        self.assertEqual(self.b.find_elements(By.CSS_SELECTOR, "ul.signatures li"), [])
        self.b.find_element(By.ID, "passphrase").send_keys(OFFICER_PASSPHRASE)
        self.click_and_load("sign")
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ul.signatures li")))
        self.click_and_load("register")
        number = self.wait.until(EC.presence_of_element_located((By.ID, "number"))).text
        self.assertEqual(number, "นน 0017/1")
        box = self.b.find_element(By.CSS_SELECTOR, "#send-form input[type=checkbox]")
        self.assertIn(OFFICE_B, self.b.find_element(By.CSS_SELECTOR, "#send-form fieldset").text)
        box.click()
        self.click_and_load("send")
        notice = self.wait.until(EC.presence_of_element_located((By.ID, "notice")))
        self.assertIn(OFFICE_B, notice.text)
        self.shot("sent")
        # At B the dispatch arrives by sync; it is received (the inbox page is the reading half's),
        # and B's head routes the record with a due date.
        wait_for("the dispatch at B", lambda: json.loads(self.bn.cli("letter", "inbox", "--json")))
        received = json.loads(self.bn.cli("letter", "receive", "--all", "--json"))
        record = (received[0] if isinstance(received, list) else received)["letter"]
        self.login(self.bn, "head", HEAD_PASSWORD)
        self.b.get(f"{self.bn.url}/letters/{record}/edit")
        self.wait.until(EC.presence_of_element_located((By.ID, "route-to"))).send_keys("นางสาวสมใจ รักงาน")
        self.b.find_element(By.ID, "route-note").send_keys("ดำเนินการและรายงานผล")
        self.b.find_element(By.ID, "route-due").send_keys("31 ธันวาคม 2569")
        self.click_and_load("route")
        hop = self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ol.routing li")))
        self.assertIn("นางสาวสมใจ รักงาน", hop.text)
        self.shot("routed")
        # The officer's passphrase, right or wrong, never reaches the node's log.
        with open(os.path.join(self.a.dir, "serve.log"), encoding="utf-8") as f:
            log = f.read()
        self.assertNotIn(OFFICER_PASSPHRASE, log)
        self.assertNotIn("ผิดรหัส", log)

    def test_2_a_conflict_of_two_nodes_of_one_office_is_resolved_from_the_conflicts_page(self):
        self.login(self.a, "somsri", CLERK_PASSWORD)
        self.b.get(self.a.url + "/conflicts")
        wait_for("the conflict at A", lambda: (self.b.refresh() or True)
                 and "ขอเลื่อนการประชุม" in self.b.find_element(By.TAG_NAME, "main").text)
        text = self.b.find_element(By.TAG_NAME, "main").text
        self.assertIn("ขอเชิญประชุมคณะกรรมการ", text)
        self.shot("conflicts")
        row = [r for r in self.b.find_elements(By.CSS_SELECTOR, "article.conflict tbody tr") if "ขอเลื่อนการประชุม" in r.text][0]
        row.find_element(By.CSS_SELECTOR, "button.resolve").click()
        self.wait.until(EC.presence_of_element_located((By.ID, "main")))
        self.shot("conflicts-resolved")
        self.wait.until(EC.presence_of_element_located((By.ID, "no-conflicts")))
        self.assertIn("ขอเลื่อนการประชุม", self.a.cli("letter", "show", self.conflicted))


if __name__ == "__main__":
    unittest.main(verbosity=2)
