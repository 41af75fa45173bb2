"""How the page object reads the page's state, on real Chromium and tiny local pages
written after the public descriptions of the 2025-26 page (its modules are absent here:
this is the DOM route)."""
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
    # Whole screens of module WAWebAppUI: no #pane-side.
    "/temp-ban": "<div><h1>Your account is temporarily banned</h1><p>You'll be able to use WhatsApp again in "
                 "2 hours.</p><button>Log out</button><button>Learn more</button></div>",
    "/conflict": "<div><p>WhatsApp is open on another computer or browser. Click \u201cUse here\u201d to use "
                 "WhatsApp in this window.</p><button>Log out</button><button>Use here</button></div>",
    "/unsupported": "<h1>WhatsApp works with Google Chrome 100+</h1>",
    "/blank": "",
    # Ticks of the 2025-26 page: WDS <svg><title> names shifted by one; read only by colour in the list.
    "/ticks": "<div id='side'><div id='pane-side'>"
              + "".join(f"<div role='row'><span title='+91 98765 4321{i}'></span><span style='color:{c}'>"
                        f"<svg><title>{t}</title></svg></span></div>"
                        for i, t, c in [(0, "ic-schedule", "rgba(0,0,0,0.6)"), (1, "wds-ic-delivered", "rgba(0,0,0,0.6)"),
                                        (2, "wds-ic-read", "rgba(0,0,0,0.6)"), (3, "wds-ic-read", "rgb(0, 123, 252)"),
                                        (4, "wds-ic-read", "rgba(255,255,255,0.6)")])
              + "</div></div><div id='main'><header><span title='+91 98765 43210'></span></header>"
              + "".join(f"<div role='row'><div data-id='true_123456789012345@lid_3EB0{i}'><span aria-label='{a}'>"
                        f"<svg><title>{t}</title></svg></span></div></div>"
                        for i, t, a in [(0, "wds-ic-status-pending", " Pending "), (1, "wds-ic-delivered", " Sent "),
                                        (2, "wds-ic-read", " Delivered "), (3, "wds-ic-read", " Read ")])
              + "</div>",
}


class _Pages(BaseHTTPRequestHandler):
    languages: list[str] = []  # the Accept-Language of every request

    def do_GET(self):  # noqa: N802
        self.languages.append(self.headers.get("Accept-Language", ""))
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

    open_page.driver = driver
    try:
        yield open_page
    finally:
        close_gracefully(driver)
        server.shutdown()


def test_a_progress_bar_without_a_login_is_still_opening(page):
    assert page("/loading").state == PageState.OPENING


def test_a_progress_bar_with_a_stored_login_is_still_opening(page):
    """A stored login boots behind the same bar and may turn out revoked: not yet PAIRING."""
    snap = page("/syncing")
    assert snap.state == PageState.OPENING and snap.phone_number == "919876543210"


def test_qr_expired_and_connected_states(page):
    snap = page("/qr")
    assert snap.state == PageState.UNPAIRED and snap.qr == "2@ref,a,b,c"
    assert page("/expired").state == PageState.UNPAIRED_IDLE
    snap = page("/chats")
    assert snap.state == PageState.CONNECTED and snap.phone_number == "919876543210"
    assert page("/?post_logout=1").state == PageState.LOGGED_OUT


def test_whole_screens_are_recognised_without_the_chat_list(page):
    assert page("/temp-ban").state == PageState.TEMP_BANNED
    assert page("/conflict").state == PageState.CONFLICT
    assert page("/unsupported").state == PageState.UNSUPPORTED_BROWSER


def test_a_page_matching_nothing_is_unknown_not_opening(page):
    snap = page("/blank")
    assert snap.state == PageState.UNKNOWN and snap.url.endswith("/blank")


def test_2026_ticks_are_read_by_title_and_colour(page):
    snap = page("/ticks")
    assert snap.state == PageState.CONNECTED and snap.route == "dom"
    # The chat list: the single tick is "sent", grey "read" is delivered, blue "read" is read,
    # and a dark theme's translucent white is not blue.
    assert snap.chat_acks == {"919876543210": "pending", "919876543211": "sent", "919876543212": "delivered",
                              "919876543213": "read", "919876543214": "delivered"}
    # The open chat (a LID chat): keyed by the message id, whatever the address form.
    assert snap.acks == {"3EB00": "pending", "3EB01": "sent", "3EB02": "delivered", "3EB03": "read"}


def test_chrome_is_pinned_to_english(page):
    """The page follows the browser's language and the driver's texts are English."""
    page("/chats")
    assert _Pages.languages[-1].startswith("en-US"), _Pages.languages[-1]
    assert page.driver.execute_script("return navigator.language") == "en-US"
