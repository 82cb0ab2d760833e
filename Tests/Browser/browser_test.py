"""Real-browser tests of the web app (issue 15): Debian's chromium and chromium-driver driven by
selenium, against a node this script starts. Run by .ci/run; by hand:

    .build/pyvenv/bin/python Tests/Browser/browser_test.py

Screenshots go to $SARABAN_ARTIFACTS (default .build/artifacts/web), kept by CI.
"""

import os
import sys
import unittest
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
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
        cls.wait = WebDriverWait(cls.b, 20)

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
        h1 = self.wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
        self.assertIn("ยินดีต้อนรับ นางสาวสมศรี ใจดี", h1.text)
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
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "header .today")))
        today = self.b.find_element(By.CSS_SELECTOR, "header .today").text
        year = int(today.split()[-1])
        self.assertGreater(year, 2500, today)  # Buddhist Era
        self.b.find_element(By.CSS_SELECTOR, "a.lang").click()
        self.wait.until(lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
        self.assertIn("Log out", self.b.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").text)
        self.assertTrue(self.b.find_element(By.CSS_SELECTOR, "header .today").text.endswith(f"{year} BE"))
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
        self.assertIn("ยินดีต้อนรับ", self.b.find_element(By.TAG_NAME, "h1").text)
        self.logout()


if __name__ == "__main__":
    unittest.main(verbosity=2)
