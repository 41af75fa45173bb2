"""What the browser tests of the simulator page share: tests/test_simulator_page.py (the legacy page) and
tests/test_simulator_page_2026.py (the 2026 page).

The simulator runs in a background thread on a free loopback port, with a tiny control client; Chromium is
driven through the Debian chromedriver. All waits are explicit (WebDriverWait with a deadline). What differs
between the two pages (the chat list's and the composer's selectors, the exceptions a wait polls through, the
simulator's knobs) is given by each test file.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import urllib.parse

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from simulator import SimConfig, create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
needs_chromium = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)), reason="needs Debian chromium + chromedriver"
)

OWN = "919876543210"
QR_CANVAS = 'div[data-ref] canvas[aria-label="Scan this QR code to link a device!"]'
IGNORED = (NoSuchElementException, StaleElementReferenceException)


class Sim:
    """The simulator on a free port in a background thread, plus a tiny control client.

    ``reset()`` empties it and then sets ``defaults`` and the given values, when there are any."""

    def __init__(self, config: SimConfig, defaults: dict | None = None) -> None:
        self.defaults = dict(defaults or {})
        self.app = create_app(config)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(self.base + path, params=params, timeout=10)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return requests.post(self.base + path, json=body or {}, timeout=10)

    def ok(self, path: str, body: dict | None = None) -> dict:
        r = self.post(path, body)
        assert r.status_code == 200, r.text
        return r.json()

    def config(self, **values) -> dict:
        return self.ok("/sim/control/config", values)

    def reset(self, **values) -> None:
        self.ok("/sim/control/reset")
        values = {**self.defaults, **values}
        if values:
            self.config(**values)

    def state(self) -> dict:
        return self.get("/sim/control/state").json()

    def counters(self) -> dict:
        return self.get("/sim/control/counters").json()

    def messages(self, **params) -> list[dict]:
        return self.get("/sim/control/messages", **params).json()


def make_driver(profile_dir: str, lang: str | None = None) -> webdriver.Chrome:
    """Headless Chromium on the profile folder; ``lang`` sets its UI language and Accept-Language."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,900", f"--user-data-dir={profile_dir}"):
        opts.add_argument(arg)
    if lang:
        opts.add_argument(f"--lang={lang}")
        opts.add_experimental_option("prefs", {"intl.accept_languages": lang})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def eventually(fn, timeout: float = 10, message: str = ""):
    """Poll a non-browser condition with a deadline."""
    return WebDriverWait(None, timeout, poll_frequency=0.05).until(lambda _: fn(), message)


class PageSteps:
    """Waits and steps on one page profile: ``chat_list`` and ``compose`` are its chat list's and composer's
    CSS selectors, ``ignored`` the exceptions a wait polls through."""

    def __init__(self, chat_list: str, compose: str, ignored: tuple = IGNORED) -> None:
        self.chat_list = chat_list
        self.compose = compose
        self.ignored = ignored

    def wait(self, driver, timeout: float = 10) -> WebDriverWait:
        return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=self.ignored)

    def find(self, driver, css: str, timeout: float = 10):
        return self.wait(driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)),
                                                f"no element {css!r}")

    def gone(self, driver, css: str, timeout: float = 10) -> None:
        self.wait(driver, timeout).until(lambda d: not d.find_elements(By.CSS_SELECTOR, css), f"{css!r} still there")

    def current_payload(self, driver) -> str:
        self.find(driver, QR_CANVAS)
        return driver.find_element(By.CSS_SELECTOR, "div[data-ref]").get_attribute("data-ref")

    def login(self, sim: Sim, driver, phone: str = OWN) -> dict:
        """Open the page, scan its QR code with ``phone`` and wait for the chat list; the scan's answer."""
        driver.get(sim.base + "/")
        r = sim.post("/sim/phone/scan", {"payload": self.current_payload(driver), "phone": phone})
        assert r.status_code == 200, r.text
        self.find(driver, self.chat_list)
        return r.json()

    def open_send(self, sim: Sim, driver, phone: str, text: str = ""):
        """Load /send?phone=&text= and wait for the composer (prefilled with ``text``)."""
        driver.get(f"{sim.base}/send?phone={phone}&text={urllib.parse.quote(text)}")
        box = self.find(driver, self.compose)
        if text:
            self.wait(driver).until(lambda d: box.text == text, "composer not prefilled")
        return box


CLICK_LINK = """
const a = document.createElement('a'); a.href = arguments[0]; a.textContent = 'link';
a.addEventListener('click', e => e.preventDefault());  // never leave the page if not caught
const host = document.createElement('div'); if (arguments[1]) host.setAttribute('data-nohandle', '');
host.appendChild(a); document.getElementById('side').appendChild(host);
window.__starting = false;
new MutationObserver(() => { if (/Starting chat/.test(document.body.innerText)) window.__starting = true; })
  .observe(document.body, {subtree: true, childList: true, characterData: true});
a.click(); host.remove();"""


def click_link(driver, href: str, nohandle: bool = False) -> None:
    """Click a link to ``href`` in the side pane (in an element with data-nohandle if ``nohandle``);
    window.__starting then says whether a "Starting chat" popup showed."""
    driver.execute_script(CLICK_LINK, href, nohandle)


def page_fixtures(make_sim, profile_prefix: str, clear_storage: str, lang: str | None = None,
                  script_timeout: float | None = None):
    """The fixtures of a test file: ``sim`` (make_sim(), one a module), ``browser`` (one Chromium a module, on a
    temporary profile) and ``page``: the browser on a clean simulator (``sim.reset()``), its storage cleared
    with the script ``clear_storage``. Assign them in the test module: ``sim, browser, page = page_fixtures(...)``."""

    @pytest.fixture(scope="module")
    def sim():
        """The simulator for the module's tests."""
        s = make_sim()
        yield s
        s.close()

    @pytest.fixture(scope="module")
    def browser():
        """One headless Chromium for the module's tests, on a temporary profile."""
        profile = tempfile.mkdtemp(prefix=profile_prefix)
        driver = make_driver(profile, lang)
        if script_timeout is not None:
            driver.set_script_timeout(script_timeout)
        yield driver
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    @pytest.fixture
    def page(sim, browser):
        """The shared browser on a clean simulator, with its storage cleared."""
        browser.get(sim.base + "/sim/health")  # leave the previous page before its connection disappears
        browser.execute_script(clear_storage)
        sim.reset()
        return browser

    return sim, browser, page


def en_us_stamp(ts: float) -> str:
    """Local time ``ts`` as en-US WhatsApp writes a row's time and date: '8:19 PM, 6/13/2026'."""
    t = time.localtime(ts)
    return (f"{t.tm_hour % 12 or 12}:{t.tm_min:02d} {'AM' if t.tm_hour < 12 else 'PM'}, "
            f"{t.tm_mon}/{t.tm_mday}/{t.tm_year}")
