"""A page object for WhatsApp Web.

It knows the page and nothing about queues or databases: it reads the page's state,
and sends.  Every selector comes from ``browser.selectors``; waits are explicit.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urljoin

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from browser import selectors as sel


class PageState(StrEnum):
    OPENING = "OPENING"
    UNPAIRED = "UNPAIRED"  # a QR is on screen
    UNPAIRED_IDLE = "UNPAIRED_IDLE"  # the QR expired; reload button shown
    PAIRING = "PAIRING"  # scanned, syncing
    CONNECTED = "CONNECTED"  # chat list usable
    LOGGED_OUT = "LOGGED_OUT"  # logged out from the phone


@dataclass(frozen=True)
class PageSnapshot:
    state: PageState
    qr: str | None = None
    wid: str | None = None

    @property
    def phone_number(self) -> str | None:
        return wid_to_phone(self.wid)


class SendError(Exception):
    """A send that failed; ``permanent`` says whether trying again can help."""

    permanent = False


class TransientSendError(SendError):
    pass


class NumberNotOnWhatsApp(SendError):
    permanent = True


def wid_to_phone(wid: str | None) -> str | None:
    """'"919876543210:12@c.us"' -> '919876543210'."""
    if not wid:
        return None
    try:
        value = json.loads(wid)
    except ValueError:
        value = wid
    if not isinstance(value, str):
        return None
    digits = value.split("@", 1)[0].split(":", 1)[0]
    return digits if digits.isdigit() else None


# One round trip reads everything the state machine needs.
_PROBE_JS = """
const S = arguments[0];
const first = (list) => { for (const s of list) { const el = document.querySelector(s); if (el) return el; } return null; };
let wid = null;
for (const k of S.wid_keys) { try { const v = localStorage.getItem(k); if (v) { wid = v; break; } } catch (e) {} }
const out = {url: location.href, wid: wid, loggedIn: !!first(S.logged_in), syncing: !!first(S.syncing),
             qr: null, reload: false};
const box = first(S.qr_container);
if (box) {
  out.reload = !!first(S.qr_reload);
  if (!out.reload && first(S.qr_canvas)) out.qr = box.getAttribute('data-ref');
}
return out;
"""

_ROWS_JS = """
const prefix = arguments[0];
return Array.from(document.querySelectorAll(arguments[1]))
  .map(r => r.getAttribute('data-id')).filter(id => id && id.startsWith(prefix));
"""

_ROW_STATUS_JS = """
const row = document.querySelector('[data-id="' + arguments[0] + '"]');
if (!row) return null;
const icon = row.querySelector('[data-icon^="msg-"]');
if (!icon) return null;
const label = icon.getAttribute('aria-label') || '';
return label.trim() === arguments[1].trim() ? 'read' : icon.getAttribute('data-icon');
"""

_FIRST_JS = """
for (const s of arguments[0]) { const el = document.querySelector(s); if (el) return el; }
return null;
"""


class WhatsAppWeb:
    def __init__(self, driver: WebDriver, base_url: str):
        self.driver = driver
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    # --- reading the page -------------------------------------------------------------
    def open(self) -> None:
        self.driver.get(self.base_url)

    def snapshot(self) -> PageSnapshot:
        raw = self.driver.execute_script(_PROBE_JS, {
            "wid_keys": list(sel.OWN_WID_KEYS), "logged_in": list(sel.LOGGED_IN),
            "syncing": list(sel.SYNCING), "qr_container": list(sel.QR_CONTAINER),
            "qr_canvas": list(sel.QR_CANVAS), "qr_reload": list(sel.QR_RELOAD_BUTTON),
        })
        if sel.LOGOUT_URL_MARK in (raw.get("url") or ""):
            return PageSnapshot(PageState.LOGGED_OUT)
        if raw.get("loggedIn"):
            return PageSnapshot(PageState.CONNECTED, wid=raw.get("wid"))
        if raw.get("qr"):
            return PageSnapshot(PageState.UNPAIRED, qr=raw["qr"])
        if raw.get("reload"):
            return PageSnapshot(PageState.UNPAIRED_IDLE)
        if raw.get("syncing") and raw.get("wid"):
            # A progress bar alone is also the start-up screen; it means "scanned, syncing"
            # only once the page holds a login (own wid in localStorage).
            return PageSnapshot(PageState.PAIRING, wid=raw.get("wid"))
        return PageSnapshot(PageState.OPENING, wid=raw.get("wid"))

    def reload_qr(self) -> bool:
        button = self._first(sel.QR_RELOAD_BUTTON)
        if button is None:
            return False
        button.click()
        return True

    # --- sending ----------------------------------------------------------------------
    def send_text(self, phone: str, text: str, timeout: float = 20.0) -> str:
        """Send ``text`` to ``phone`` (E.164 digits); return the WhatsApp message id.

        Returns once the server accepted the message (the pending clock icon is gone).
        """
        deadline = time.monotonic() + timeout
        self.driver.get(urljoin(self.base_url, f"send?phone={phone}&text={quote(text)}"))
        box = self._wait_for_chat(phone, deadline)
        prefix = sel.OUTGOING_ROW_PREFIX.format(jid=f"{phone}@c.us")
        before = set(self._row_ids(prefix))
        if self._normalized(box.text) != self._normalized(text):
            self._type(box, text)
        box.send_keys(Keys.ENTER)
        wa_id = self._wait(deadline, lambda: next(iter(set(self._row_ids(prefix)) - before), None),
                           "the sent message did not appear in the chat")
        self._wait(deadline, lambda: self.message_status(wa_id) not in (None, sel.ICON_PENDING),
                   "the message stayed pending")
        return wa_id

    def message_status(self, row_id: str) -> str | None:
        return self.driver.execute_script(_ROW_STATUS_JS, row_id, sel.READ_ARIA_LABEL)

    def _wait_for_chat(self, phone: str, deadline: float):
        def ready():
            box = self._first(sel.COMPOSE_BOX)
            if box is not None:
                return box
            dialog = self._first(sel.INVALID_NUMBER_DIALOG)
            if dialog is not None and sel.INVALID_NUMBER_TEXT in dialog.text:
                ok = self._first(sel.DIALOG_OK_BUTTON)
                if ok is not None:
                    ok.click()
                raise NumberNotOnWhatsApp(f"The number {phone} is not on WhatsApp")
            return None

        return self._wait(deadline, ready, "the chat did not open")

    def _type(self, box, text: str) -> None:
        if box.text:
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.DELETE)
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if i:
                box.send_keys(Keys.SHIFT, Keys.ENTER)  # Enter alone would send
            box.send_keys(line)

    def _row_ids(self, prefix: str) -> list[str]:
        return self.driver.execute_script(_ROWS_JS, prefix, sel.MESSAGE_ROW[0]) or []

    def _first(self, alternatives):
        return self.driver.execute_script(_FIRST_JS, list(alternatives))

    @staticmethod
    def _normalized(text: str) -> str:
        return " ".join((text or "").split())

    @staticmethod
    def _wait(deadline: float, condition, what: str, interval: float = 0.05):
        while True:
            try:
                value = condition()
            except SendError:
                raise
            except WebDriverException:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TransientSendError(what)
            time.sleep(interval)
