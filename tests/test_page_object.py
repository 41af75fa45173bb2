"""How the page object reads the page's state, on real Chromium and tiny local pages."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from browser.chrome import close_gracefully, launch_chrome
from browser.whatsapp import PageState, WhatsAppWeb
from settings import Settings

PAGES = {
    "/loading": "<progress></progress>",
    "/syncing": "<script>localStorage.setItem('last-wid-md', '\"919876543210:3@c.us\"')</script><progress></progress>",
    "/qr": "<div class='landing-wrapper'><div data-ref='2@ref,a,b,c'>"
           "<canvas aria-label='Scan this QR code to link a device!'></canvas></div></div>",
    "/expired": "<div data-ref='2@old,a,b,c'><button>Click to reload QR code</button></div>",
    "/chats": "<script>localStorage.setItem('last-wid-md', '\"919876543210:3@c.us\"')</script>"
              "<div id='side'><div id='pane-side'></div></div>",
}


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = f"<html><body>{PAGES.get(self.path.split('?')[0], '')}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tmp_path_factory.mktemp("page")
    settings = Settings()
    driver = launch_chrome(chromium_path=settings.chromium_path, chromedriver_path=settings.chromedriver_path,
                           profile_dir=work / "profile", work_dir=work, user_agent=settings.user_agent)
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    def open_page(path: str):
        driver.get(base + "blank")
        driver.execute_script("localStorage.clear()")  # each page starts without a login
        driver.get(base + path.lstrip("/"))
        return WhatsAppWeb(driver, base).snapshot()

    try:
        yield open_page
    finally:
        close_gracefully(driver)
        server.shutdown()


def test_a_progress_bar_without_a_login_is_still_opening(page):
    assert page("/loading").state == PageState.OPENING


def test_a_progress_bar_with_a_login_is_pairing(page):
    snap = page("/syncing")
    assert snap.state == PageState.PAIRING and snap.phone_number == "919876543210"


def test_qr_expired_and_connected_states(page):
    snap = page("/qr")
    assert snap.state == PageState.UNPAIRED and snap.qr == "2@ref,a,b,c"
    assert page("/expired").state == PageState.UNPAIRED_IDLE
    snap = page("/chats")
    assert snap.state == PageState.CONNECTED and snap.phone_number == "919876543210"
    assert page("/?post_logout=1").state == PageState.LOGGED_OUT
