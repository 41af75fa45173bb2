"""A page object for WhatsApp Web.

It knows the page and nothing about queues or databases: it reads the page's state,
and sends.  Every selector comes from ``browser.selectors``; waits are explicit.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from enum import StrEnum
from urllib.parse import quote, urljoin

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed
from tenacity.stop import stop_base

from browser import selectors as sel


class PageState(StrEnum):
    OPENING = "OPENING"
    UNPAIRED = "UNPAIRED"  # a QR (or a pairing code) is on screen
    UNPAIRED_IDLE = "UNPAIRED_IDLE"  # the QR expired; reload button shown
    PAIRING = "PAIRING"  # scanned, syncing
    CONNECTED = "CONNECTED"  # chat list usable
    TIMEOUT = "TIMEOUT"  # logged in, but the phone or the computer is offline
    CONFLICT = "CONFLICT"  # logged in, but open in another window
    LOGGED_OUT = "LOGGED_OUT"  # logged out from the phone


# Ack levels of an outgoing message, as its status icon shows them (WWJ MessageAck order).
ACK_LEVELS = ("pending", "sent", "delivered", "read")


def ack_rank(level: str | None) -> int:
    return ACK_LEVELS.index(level) if level in ACK_LEVELS else -1


@dataclass(frozen=True)
class PageSnapshot:
    state: PageState
    qr: str | None = None
    wid: str | None = None
    pairing_code: str | None = None
    # Outgoing rows of the open chat: data-id -> ack level.
    acks: dict[str, str] = field(default_factory=dict)
    # Chats whose last message is ours: the peer's digits -> that message's ack level.
    chat_acks: dict[str, str] = field(default_factory=dict)

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


class MediaRejected(SendError):
    """The page refused the file (e.g. over its size limit)."""

    permanent = True


class UnconfirmedSend(TransientSendError):
    """The send was committed but not confirmed: the message may be out. The next
    attempt looks for it in the chat before sending again."""


class PairingError(Exception):
    """The page would not give a pairing code (bad number, already logged in, ...)."""


class stop_before_deadline(stop_base):  # noqa: N801 - tenacity's naming
    """Stop retrying once a monotonic deadline has passed."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def __call__(self, retry_state) -> bool:
        return time.monotonic() >= self.deadline


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


def format_pairing_code(code: str) -> str:
    """'A,B,C,D,E,F,G,H' (the page's data-link-code) -> 'ABCD-EFGH', as the page shows it."""
    code = code.replace("-", "").replace(",", "").strip().upper()  # the page's attribute is "A,B,C,..."
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


_LEVEL_JS = """
const firstIn = (root, list) => { for (const s of list) { const el = root.querySelector(s); if (el) return el; } return null; };
const level = (icon) => {
  if (!icon) return null;
  if ((icon.getAttribute('aria-label') || '').trim() === S.read_label.trim()) return 'read';
  const name = (icon.getAttribute('data-icon') || '').replace(/^status-/, 'msg-');
  return S.levels[name] || null;
};
"""

# One round trip reads everything the state machine needs.
_PROBE_JS = """
const S = arguments[0];
""" + _LEVEL_JS + """
const first = (list) => firstIn(document, list);
const all = (list) => { for (const s of list) { const els = document.querySelectorAll(s); if (els.length) return els; } return []; };
let wid = null;
for (const k of S.wid_keys) { try { const v = localStorage.getItem(k); if (v) { wid = v; break; } } catch (e) {} }
const bar = first(S.syncing);
const syncing = !!bar && (!!wid || (document.body.textContent || '').includes(S.syncing_text));
const out = {url: location.href, wid: wid, loggedIn: !!first(S.logged_in), syncing: syncing,
             qr: null, reload: false, code: null, offline: false, conflict: false, acks: {}, chats: {}};
const box = first(S.qr_container);
if (box) {
  out.reload = !!first(S.qr_reload);
  if (!out.reload && first(S.qr_canvas)) out.qr = box.getAttribute('data-ref');
}
const code = first(S.pairing_code);
if (code) out.code = code.getAttribute('data-link-code');
if (out.loggedIn) {
  out.offline = !!first(S.offline);
  for (const modal of all(S.conflict_modal)) {
    if ((modal.textContent || '').includes(S.conflict_text)) { out.conflict = true; break; }
  }
  for (const row of all(S.open_rows)) {
    const id = row.getAttribute('data-id');
    if (id && id.startsWith('true_')) out.acks[id] = level(firstIn(row, S.status_icon));
  }
  for (const row of all(S.chat_rows)) {
    const title = firstIn(row, S.chat_title);
    const digits = title ? (title.getAttribute('title') || '').replace(/\\D/g, '') : '';
    const icon = firstIn(row, S.status_icon);
    if (digits && icon) out.chats[digits] = level(icon);
  }
}
return out;
"""

_ROWS_JS = """
const prefix = arguments[0];
return Array.from(document.querySelectorAll(arguments[1]))
  .map(r => r.getAttribute('data-id')).filter(id => id && id.startsWith(prefix));
"""

_ROW_STATUS_JS = """
const S = arguments[1];
""" + _LEVEL_JS + """
const row = document.querySelector('[data-id="' + arguments[0] + '"]');
return row ? level(firstIn(row, S.status_icon)) : null;
"""

_ROW_TEXTS_JS = """
const prefix = arguments[0];
const firstIn = (root, list) => { for (const s of list) { const el = root.querySelector(s); if (el) return el; } return null; };
for (const s of arguments[1]) {
  const rows = Array.from(document.querySelectorAll(s)).filter(r => (r.getAttribute('data-id') || '').startsWith(prefix));
  if (rows.length) return rows.map(r => { const t = firstIn(r, arguments[2]); return {id: r.getAttribute('data-id'), text: t ? t.innerText : ''}; });
}
return [];
"""

_FIRST_JS = """
for (const s of arguments[0]) { const el = document.querySelector(s); if (el) return el; }
return null;
"""

# The first element (of the first alternative that matches any) whose text holds a word.
_WITH_TEXT_JS = """
for (const s of arguments[0]) {
  for (const el of document.querySelectorAll(s)) { if ((el.textContent || '').includes(arguments[1])) return el; }
}
return null;
"""

_STATUS_ARGS = {
    "read_label": sel.READ_ARIA_LABEL, "status_icon": list(sel.STATUS_ICON),
    "levels": {sel.ICON_PENDING: "pending", sel.ICON_SENT: "sent", sel.ICON_DELIVERED: "delivered",
               sel.ICON_FAILED: "failed"},
}


class WhatsAppWeb:
    def __init__(self, driver: WebDriver, base_url: str):
        self.driver = driver
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    # --- reading the page -------------------------------------------------------------
    def open(self) -> None:
        self.driver.get(self.base_url)

    def snapshot(self) -> PageSnapshot:
        raw = self.driver.execute_script(_PROBE_JS, {
            **_STATUS_ARGS,
            "wid_keys": list(sel.OWN_WID_KEYS), "logged_in": list(sel.LOGGED_IN),
            "syncing": list(sel.SYNCING), "syncing_text": sel.SYNCING_TEXT, "qr_container": list(sel.QR_CONTAINER),
            "qr_canvas": list(sel.QR_CANVAS), "qr_reload": list(sel.QR_RELOAD_BUTTON),
            "pairing_code": list(sel.PAIRING_CODE), "offline": list(sel.OFFLINE_BANNER),
            "conflict_modal": list(sel.CONFLICT_MODAL), "conflict_text": sel.CONFLICT_TEXT,
            "open_rows": list(sel.OPEN_CHAT_ROWS), "chat_rows": list(sel.CHAT_LIST_ROWS),
            "chat_title": list(sel.CHAT_TITLE),
        })
        wid = raw.get("wid")
        if sel.LOGOUT_URL_MARK in (raw.get("url") or ""):
            return PageSnapshot(PageState.LOGGED_OUT)
        if raw.get("loggedIn"):
            acks = {k: v for k, v in (raw.get("acks") or {}).items() if v}
            chats = {k: v for k, v in (raw.get("chats") or {}).items() if v}
            state = (PageState.CONFLICT if raw.get("conflict")
                     else PageState.TIMEOUT if raw.get("offline") else PageState.CONNECTED)
            return PageSnapshot(state, wid=wid, acks=acks, chat_acks=chats)
        if raw.get("qr"):
            return PageSnapshot(PageState.UNPAIRED, qr=raw["qr"])
        if raw.get("code"):
            return PageSnapshot(PageState.UNPAIRED, pairing_code=format_pairing_code(raw["code"]))
        if raw.get("reload"):
            return PageSnapshot(PageState.UNPAIRED_IDLE)
        if raw.get("syncing"):
            # A progress bar alone is also the start-up screen; it means "scanned, syncing"
            # only with the sync screen's text or once the page holds a login (own wid).
            return PageSnapshot(PageState.PAIRING, wid=wid)
        return PageSnapshot(PageState.OPENING, wid=wid)

    def reload_qr(self) -> bool:
        button = self._first(sel.QR_RELOAD_BUTTON)
        if button is None:
            return False
        button.click()
        return True

    def take_over(self) -> bool:
        """Answer the conflict modal with "Use here"; False if there is none."""
        button = self.driver.execute_script(_WITH_TEXT_JS, list(sel.CONFLICT_BUTTONS), sel.USE_HERE_TEXT)
        if button is None:
            return False
        button.click()
        return True

    # --- linking with a phone number ---------------------------------------------------
    def request_pairing_code(self, phone: str, timeout: float = 20.0) -> str:
        """Ask the page for a pairing code for ``phone`` (digits); return it as shown (ABCD-EFGH)."""
        deadline = time.monotonic() + timeout
        if self.snapshot().state in (PageState.CONNECTED, PageState.TIMEOUT, PageState.CONFLICT):
            raise PairingError("The session is already logged in")
        if self._first(sel.PAIRING_CODE) is not None or self._first(sel.PHONE_NUMBER_INPUT) is None:
            self.open()  # a fresh login page; a code for another number would be stale

            def link_button():
                for text in sel.LINK_WITH_PHONE_TEXTS:
                    found = self.driver.execute_script(_WITH_TEXT_JS, list(sel.LINK_BUTTONS), text)
                    if found is not None:
                        return found
                return None

            self._wait(deadline, link_button, "the login page offered no 'Link with phone number'",
                       error=PairingError).click()
        box = self._wait(deadline, lambda: self._first(sel.PHONE_NUMBER_INPUT),
                         "the phone number input did not appear", error=PairingError)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(f"+{phone}")
        button = self._first(sel.PHONE_NUMBER_NEXT) or self.driver.execute_script(
            _WITH_TEXT_JS, ["button"], sel.PHONE_NUMBER_NEXT_TEXT)
        if button is not None:
            button.click()
        else:
            box.send_keys(Keys.ENTER)

        def shown():
            code = self._first(sel.PAIRING_CODE)
            if code is not None:
                return code.get_attribute("data-link-code")
            problem = self._first(sel.PHONE_NUMBER_ERROR)
            if problem is not None and problem.text.strip():
                raise PairingError(problem.text.strip())
            return None

        return format_pairing_code(self._wait(deadline, shown, "no pairing code appeared", error=PairingError))

    # --- sending ----------------------------------------------------------------------
    # A send has three steps. Preparing (open the chat, type, attach) touches nothing the
    # recipient sees, so tenacity retries it on transient page errors. Committing (Enter,
    # or the preview's Send) is done once; ``on_commit`` learns the newest row before it,
    # so that a later attempt can look for this one instead of sending blindly again.
    # Confirming waits for the new row and the server's ack; a failure there is
    # ``UnconfirmedSend``: the message may be out.

    def send_text(self, phone: str, text: str, timeout: float = 20.0, on_commit=None) -> str:
        """Send ``text`` to ``phone`` (E.164 digits); return the WhatsApp message id.

        Returns once the server accepted the message (the pending clock icon is gone).
        """
        deadline = time.monotonic() + timeout

        def prepare():
            self.driver.get(urljoin(self.base_url, f"send?phone={phone}&text={quote(text)}"))
            box = self._wait_for_chat(phone, deadline)
            if self._normalized(box.text) != self._normalized(text):
                self._type(box, text)
            return box

        box = self._prepared(prepare, deadline)
        before = self._commit_point(phone, on_commit)  # taken last: the history loads meanwhile
        box.send_keys(Keys.ENTER)
        return self._wait_sent(phone, before, deadline)

    def send_file(self, phone: str, path: Path, *, as_media: bool, caption: str = "",
                  timeout: float = 60.0, on_commit=None) -> str:
        """Attach ``path`` (photos & videos input when ``as_media``, else documents) with
        ``caption``; return the WhatsApp message id once the server has it."""
        deadline = time.monotonic() + timeout

        def prepare():
            self.driver.get(urljoin(self.base_url, f"send?phone={phone}"))
            self._wait_for_chat(phone, deadline)
            self._wait(deadline, lambda: self._first(sel.ATTACH_BUTTON), "no attach button").click()
            inputs = sel.MEDIA_INPUT if as_media else sel.DOCUMENT_INPUT
            file_input = self._wait(deadline, lambda: self._first(inputs), "the attach menu did not open")
            file_input.send_keys(str(Path(path).resolve()))

            def preview():
                self._raise_on_toast()
                return self._first(sel.CAPTION_BOX)

            box = self._wait(deadline, preview, "the media preview did not open")
            if caption:
                self._type(box, caption)
            return self._wait(deadline, lambda: self._first(sel.MEDIA_SEND_BUTTON), "no send button")

        send = self._prepared(prepare, deadline)
        before = self._commit_point(phone, on_commit)
        send.click()
        return self._wait_sent(phone, before, deadline)

    def find_sent(self, phone: str, *, text: str = "", after_row: str | None = None,
                  timeout: float = 20.0) -> str | None:
        """The id of an outgoing row in the chat with ``phone`` that a crashed attempt may
        have sent: newer than ``after_row`` (the newest row when that attempt committed)
        and carrying ``text`` (the text, or the caption of a media message)."""
        deadline = time.monotonic() + timeout
        self._prepared(lambda: (self.driver.get(urljoin(self.base_url, f"send?phone={phone}")),
                                self._wait_for_chat(phone, deadline)), deadline)
        rows = self._settled_rows(phone, deadline)
        ids = [r["id"] for r in rows]
        if after_row in ids:
            rows = rows[ids.index(after_row) + 1:]
        wanted = self._normalized(text)
        matches = [r["id"] for r in rows if self._normalized(r.get("text") or "") == wanted]
        return matches[-1] if matches else None

    def _prepared(self, step, deadline: float):
        """Run a preparing step, again on transient page errors, until the deadline."""
        retrying = Retrying(
            retry=retry_if_exception_type((TransientSendError, StaleElementReferenceException)),
            stop=stop_after_attempt(3) | stop_before_deadline(deadline),
            wait=wait_fixed(0.3), reraise=True,
        )
        return retrying(step)

    def _commit_point(self, phone: str, on_commit) -> set[str]:
        before = self._row_ids(phone)
        if on_commit is not None:
            on_commit(before[-1] if before else None)
        return set(before)

    def _settled_rows(self, phone: str, deadline: float, quiet: float = 0.6) -> list[dict]:
        """The chat's outgoing rows (id, text) once its history stopped loading."""
        prefix = sel.OUTGOING_ROW_PREFIX.format(jid=f"{phone}@c.us")
        last, stable_since = None, time.monotonic()
        while True:
            rows = self.driver.execute_script(_ROW_TEXTS_JS, prefix, list(sel.OPEN_CHAT_ROWS),
                                              list(sel.MESSAGE_TEXT)) or []
            now = time.monotonic()
            if rows != last:
                last, stable_since = rows, now
            elif now - stable_since >= quiet or now > deadline:
                return rows
            time.sleep(0.1)

    def message_status(self, row_id: str) -> str | None:
        """The ack level of an outgoing row on screen: pending, sent, delivered, read, failed."""
        return self.driver.execute_script(_ROW_STATUS_JS, row_id, _STATUS_ARGS)

    def _wait_sent(self, phone: str, before: set[str], deadline: float) -> str:
        def new_row():
            self._raise_on_toast()
            return next(iter(set(self._row_ids(phone)) - before), None)

        wa_id = self._wait(deadline, new_row, "the sent message did not appear in the chat", error=UnconfirmedSend)

        def accepted():
            self._raise_on_toast()
            status = self.message_status(wa_id)
            if status == "failed":
                raise TransientSendError("the server refused the message")
            return status not in (None, "pending")

        self._wait(deadline, accepted, "the message stayed pending", error=UnconfirmedSend)
        return wa_id

    def _raise_on_toast(self) -> None:
        toast = self._first(sel.TOAST)
        if toast is not None and toast.text.strip():
            raise MediaRejected(toast.text.strip())

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

    def _row_ids(self, phone: str) -> list[str]:
        prefix = sel.OUTGOING_ROW_PREFIX.format(jid=f"{phone}@c.us")
        return self.driver.execute_script(_ROWS_JS, prefix, sel.MESSAGE_ROW[0]) or []

    def _first(self, alternatives):
        return self.driver.execute_script(_FIRST_JS, list(alternatives))

    @staticmethod
    def _normalized(text: str) -> str:
        return " ".join((text or "").split())

    @staticmethod
    def _wait(deadline: float, condition, what: str, interval: float = 0.05,
              error: type[Exception] = TransientSendError):
        while True:
            try:
                value = condition()
            except (SendError, PairingError):
                raise
            except WebDriverException:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise error(what)
            time.sleep(interval)
