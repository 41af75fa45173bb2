"""A page object for WhatsApp Web.

It knows the page and nothing about queues or databases: it reads the page's state,
and sends.  Every selector, text and module name comes from ``browser.selectors``;
waits are explicit.

Two routes read the page, as mature libraries do on the 2025-26 page: first the page's
own modules (``window.require('WAWeb…')``: socket state, own ids, message acks), then
the DOM, for whatever the modules do not answer (WhatsApp renames them now and then).
Each snapshot says which route answered (``PageSnapshot.route``).
"""
from __future__ import annotations

import json
import logging
import time
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed
from tenacity.stop import stop_base

from browser import selectors as sel
from models.phones import same_account

log = logging.getLogger("browser.whatsapp")


class PageState(StrEnum):
    """What the page shows, as ``snapshot`` classifies it (the whole-screen states of
    WHATSAPP_WEB.md sections 3 and 4)."""

    OPENING = "OPENING"  # loading screen, or the login page between two codes
    UNPAIRED = "UNPAIRED"  # a QR (or a pairing code) is on screen
    UNPAIRED_IDLE = "UNPAIRED_IDLE"  # the QR expired; reload button shown
    PAIRING = "PAIRING"  # scanned, syncing
    CONNECTED = "CONNECTED"  # chat list usable
    TIMEOUT = "TIMEOUT"  # logged in, but the phone or the computer is offline
    CONNECTING = "CONNECTING"  # the start-up popup "Connecting to WhatsApp": the socket is stuck
    CONFLICT = "CONFLICT"  # open in another window, or on another computer or browser
    TEMP_BANNED = "TEMP_BANNED"  # the temporary-ban screen
    TOS_BLOCKED = "TOS_BLOCKED"  # the terms-of-service block screen
    NEEDS_UPDATE = "NEEDS_UPDATE"  # this build is refused (Stream.needsUpdate, DEPRECATED_VERSION)
    UNSUPPORTED_BROWSER = "UNSUPPORTED_BROWSER"  # "WhatsApp works with Google Chrome …" instead of the app
    APP_LOCKED = "APP_LOCKED"  # the app-lock passcode screen
    LOGGED_OUT = "LOGGED_OUT"  # logged out from the phone
    UNKNOWN = "UNKNOWN"  # none of the above: reported as UNKNOWN_PAGE if it lasts


# Screens recognised from the page's text (section 4 of the research notes) -> state.
_SCREENS = {
    "ANOTHER_SESSION": (sel.SCREEN_ANOTHER_WINDOW, PageState.CONFLICT),
    "CONFLICT": (sel.SCREEN_CONFLICT, PageState.CONFLICT),
    "TEMP_BAN": (sel.SCREEN_TEMP_BAN, PageState.TEMP_BANNED),
    "TOS_BLOCK": (sel.SCREEN_TOS_BLOCK, PageState.TOS_BLOCKED),
    "NEEDS_UPDATE": (sel.SCREEN_NEEDS_UPDATE, PageState.NEEDS_UPDATE),
    "UNSUPPORTED_BROWSER": (sel.SCREEN_UNSUPPORTED_BROWSER, PageState.UNSUPPORTED_BROWSER),
    "APP_LOCKED": (sel.SCREEN_APP_LOCKED, PageState.APP_LOCKED),
    "CONNECTING": (sel.SCREEN_CONNECTING, PageState.CONNECTING),
    "OFFLINE": (sel.SCREEN_OFFLINE, PageState.TIMEOUT),
}
# Socket.state values (WAJS SOCKET_STATE.ts) that name a screen by themselves.
_SOCKET_SCREENS = {
    "CONFLICT": PageState.CONFLICT,
    "TOS_BLOCK": PageState.TOS_BLOCKED,
    "SMB_TOS_BLOCK": PageState.TOS_BLOCKED,
    "DEPRECATED_VERSION": PageState.NEEDS_UPDATE,
}
# Socket states on the way to a usable page.
_SOCKET_STARTING = frozenset({"UNLAUNCHED", "OPENING", "PAIRING", "UNPAIRED", "UNPAIRED_IDLE"})

# Seconds a message's time on WhatsApp's clock may precede our clock's time of its dispatch.
SEND_CLOCK_SKEW = 5.0
# Seconds an open chat's footer must show no composer before it is taken for a locked compose bar.
COMPOSE_LOCK_SECONDS = 0.5
SCRIPT_TIMEOUT = 30.0  # seconds: WebDriver's default for asynchronous scripts

# Ack levels of an outgoing message (WWJ MessageAck order).
ACK_LEVELS = ("pending", "sent", "delivered", "read")


def ack_rank(level: str | None) -> int:
    """The order of an ack level in ACK_LEVELS (pending 0 ... read 3); -1 for None or "failed"."""
    return ACK_LEVELS.index(level) if level in ACK_LEVELS else -1


def ack_level(ack: int | None) -> str | None:
    """A model's ``ack`` number (WAWebAck: -1 failed, 0 clock, 1 sent, 2 received, 3 read,
    4 played) -> our level name."""
    if not isinstance(ack, int):
        return None
    if ack < 0:
        return "failed"
    return ACK_LEVELS[min(ack, 3)]


def message_key(serialized: str) -> str:
    """The part of a serialized message id that names the message in every address form:
    ``true_<lid>@lid_3EB0AB`` and ``true_<digits>@c.us_3EB0AB`` -> ``3EB0AB`` (the chat
    part differs between a send result and its ack; read_file id 67175400273)."""
    parts = (serialized or "").split("_")
    return parts[2] if len(parts) >= 3 else serialized


@dataclass(frozen=True)
class Dialog:
    """A modal dialog on the page: its text and its buttons' labels."""

    text: str
    buttons: tuple[str, ...]


def is_screen_dialog(dialog: Dialog) -> bool:
    """Whether a dialog is one of the page states (the 2021-23 conflict modal, the
    "Connecting to WhatsApp" popup), which the state machine answers, or a popup that goes
    by itself ("Starting chat"): not for the dialog rule."""
    text = dialog.text.lower()
    if any(t.lower() in text for t in sel.DIALOG_TRANSIENT_TEXTS):
        return True  # a popup that goes by itself
    return any(needle.lower() in text for needles, _state in _SCREENS.values() for needle in needles)


def allowed_action(dialog: Dialog) -> str | None:
    """The button the driver may press by itself on ``dialog`` (Continue, OK, Got it,
    Accept, ...), or None: never one of a dialog that is a page state."""
    if is_screen_dialog(dialog):
        return None
    allowed = {a.lower() for a in sel.DIALOG_ALLOWED_ACTIONS}
    return next((b for b in dialog.buttons if b.strip().lower() in allowed), None)


def unknown_dialogs(dialogs: tuple[Dialog, ...]) -> list[Dialog]:
    """The dialogs the driver leaves open: neither a page state nor one with an allowed action."""
    return [d for d in dialogs if not is_screen_dialog(d) and allowed_action(d) is None]


@dataclass(frozen=True)
class Incoming:
    """A message that arrived, as the page's message collection tells it."""

    serialized: str  # false_<chat>_<id>, the chat as <digits>@c.us or <lid>@lid
    key: str  # the message's own id (the serialized id's last part)
    sender_wa_id: str | None  # the chat's wid: <digits>@c.us or <lid>@lid
    sender_number: str | None  # digits; for a LID sender only when the page knows the number
    type: str  # WhatsApp's message type: chat, image, video, audio, ptt, document, sticker, ...
    text: str | None  # the body of a text, the caption of media
    mimetype: str | None = None
    filename: str | None = None
    size: int | None = None  # bytes
    quoted_key: str | None = None  # the own id of the message it quotes (quotedStanzaID)
    t: float | None = None  # when WhatsApp says it was sent, epoch seconds


@dataclass(frozen=True)
class ChatPreview:
    """A chat-list row: what the DOM says of a chat without opening it."""

    phone: str  # digits ("" for a saved contact shown by name)
    title: str
    unread: int
    text: str | None  # the newest message's preview
    ours: bool  # the newest message is ours (it shows a status icon)


@dataclass(frozen=True)
class Inbox:
    """What one look at the page says of incoming messages: ``messages`` from the page's
    message collection (``route`` "modules"), else the chat list's ``chats`` ("dom")."""

    route: str
    messages: tuple[Incoming, ...] = ()
    chats: tuple[ChatPreview, ...] = ()


def read_inbox(raw: dict | None) -> Inbox | None:
    """The Inbox of a probe's raw answer (see _INBOX_JS); None when it was not asked for."""
    if not raw:
        return None
    if raw.get("route") == "modules":
        msgs = []
        for m in raw.get("messages") or ():
            if not m.get("id"):
                continue
            size = m.get("size")
            msgs.append(Incoming(
                serialized=m["id"], key=m.get("key") or message_key(m["id"]), sender_wa_id=m.get("from"),
                sender_number=wid_to_phone(f"{m['phone']}@c.us") if m.get("phone") else None,
                type=m.get("type") or "chat", text=m.get("body"), mimetype=m.get("mimetype"),
                filename=m.get("filename"), size=int(size) if isinstance(size, (int, float)) else None,
                quoted_key=message_key(m["quoted"]) if m.get("quoted") else None,
                t=float(m["t"]) if isinstance(m.get("t"), (int, float)) else None))
        return Inbox("modules", messages=tuple(msgs))
    return Inbox("dom", chats=tuple(ChatPreview(c.get("phone") or "", c.get("title") or "", int(c.get("unread") or 0),
                                                c.get("text"), bool(c.get("ours")))
                                    for c in raw.get("chats") or ()))


@dataclass(frozen=True)
class PageSnapshot:
    """One reading of the page: its state, the QR payload (``div[data-ref]``, verbatim) or
    pairing code, our own id (``wid``), the acks it shows, open dialogs and the build."""

    state: PageState
    qr: str | None = None
    wid: str | None = None
    pairing_code: str | None = None
    # Outgoing rows: message key (see message_key) -> ack level, from the models or the open chat.
    acks: dict[str, str] = field(default_factory=dict)
    # Chats whose last message is ours: the peer's digits -> that message's ack level.
    chat_acks: dict[str, str] = field(default_factory=dict)
    dialogs: tuple[Dialog, ...] = ()
    version: str | None = None  # window.Debug.VERSION, the page's build
    route: str = "dom"  # "modules" when the page's own modules answered
    # The account's restriction on new chats the page's modules report ("reachout_timelock",
    # "new_chat_cap"), None when there is none or the modules do not tell.
    restriction: str | None = None
    url: str = ""
    title: str = ""
    inbox: Inbox | None = None  # incoming messages, when the snapshot was asked for them

    @property
    def phone_number(self) -> str | None:
        """The linked account's number (digits) from ``wid``, None before linking."""
        return wid_to_phone(self.wid)


class SendError(Exception):
    """A send that failed; ``permanent`` says whether trying again can help."""

    permanent = False


class TransientSendError(SendError):
    """A send that failed for now (the page not ready, a dialog in the way, the server
    refused); trying again can help."""


class NumberNotOnWhatsApp(SendError):
    """The number has no WhatsApp account: the page's existence query (``queryWidExists``)
    said so, or its "Phone number shared via url is invalid." dialog for a number not known
    to be registered (WHATSAPP_WEB.md section 9). Permanent."""

    permanent = True


class MediaRejected(SendError):
    """The page refused the file (e.g. over its size limit)."""

    permanent = True


class UnconfirmedSend(TransientSendError):
    """The send was committed but not confirmed: the message may be out. The next
    attempt looks for it in the chat before sending again."""


class SendRestricted(SendError):
    """WhatsApp restricts the account for now (a reach-out timelock, a new-chat cap, new
    chats by link limited): the session pauses; the number is not at fault.
    ``kind`` names the restriction (see ``workers.send_rules.RESTRICTION_NAMES``)."""

    def __init__(self, kind: str, message: str | None = None):
        super().__init__(message or f"WhatsApp restricts this account for now ({kind})")
        self.kind = kind


@dataclass(frozen=True)
class NumberCheck:
    """WhatsApp's answer for one number: whether it is on WhatsApp and the id WhatsApp
    uses for it (``<digits>@c.us``), and which route of the page answered."""

    exists: bool
    wid: str | None
    route: str  # "modules" (the existence query) or "dom" (the chat was opened)


class PairingError(Exception):
    """The page would not give a pairing code (bad number, already logged in, ...)."""


class stop_before_deadline(stop_base):  # noqa: N801 - tenacity's naming
    """Stop retrying once a monotonic deadline has passed."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def __call__(self, retry_state) -> bool:
        return time.monotonic() >= self.deadline


def wid_to_phone(wid: str | None) -> str | None:
    """'"919876543210:12@c.us"' or '919876543210@c.us' -> '919876543210'."""
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


# --- JavaScript read in the page ----------------------------------------------------------
# Shared helpers: S is the dictionary of selectors (_PAGE_ARGS).
_HELPERS_JS = """
const S = arguments[0];
const firstIn = (root, list) => { for (const s of list) { try { const el = root.querySelector(s); if (el) return el; } catch (e) {} } return null; };
const allIn = (root, list) => { for (const s of list) { try { const els = root.querySelectorAll(s); if (els.length) return Array.from(els); } catch (e) {} } return []; };
const mod = (names) => {
  if (typeof window.require !== 'function') return null;
  for (const n of names) { try { const m = window.require(n); if (m) return m; } catch (e) {} }
  return null;
};
const digits = (t) => (t || '').replace(/\\D/g, '');
const blue = (el) => {
  for (const prop of ['color', 'fill']) {
    try {
      const c = (getComputedStyle(el)[prop] || '').match(/[\\d.]+/g);
      if (c && c.length >= 3 && Number(c[2]) - Math.max(Number(c[0]), Number(c[1])) > 60) return true;
    } catch (e) {}
  }
  return false;
};
// The ack level an icon inside root shows: WDS <svg><title> names first (2025-26, shifted by
// one: the single tick is "delivered"), then the 2021-23 data-icon names.
const level = (root) => {
  for (const t of root.querySelectorAll('svg title')) {
    const name = (t.textContent || '').trim();
    if (S.t_pending.includes(name)) return 'pending';
    if (S.t_sent.includes(name)) return 'sent';
    if (S.t_read.includes(name)) {
      const svg = t.closest('svg');
      const labelled = svg.closest('[aria-label]');
      if (labelled && labelled.getAttribute('aria-label') === S.read_label) return 'read';
      return (blue(svg) || blue(svg.parentElement)) ? 'read' : 'delivered';
    }
  }
  const icon = firstIn(root, S.status_icon);
  if (!icon) return null;
  if ((icon.getAttribute('aria-label') || '').trim() === S.read_label.trim()) return 'read';
  const name = (icon.getAttribute('data-icon') || '').replace(/^status-/, 'msg-');
  return S.levels[name] || null;
};
// The open chat's number, or '' when its title is a saved name; null when no chat is open.
const openChatNumber = () => {
  const head = firstIn(document, S.header);
  return head ? digits(head.getAttribute('title') || head.textContent) : null;
};
"""

# Incoming messages. Route 1, the page's message collection: a listener on Msg 'add' keeps
# each new message (isNewMsg) that is not ours in a queue on the window (WWJ src/Client.js;
# WAJS src/chat/events/registerNewMessageEvent.ts; a 'ciphertext' one is taken when its type
# changes, as both do); when it is installed (a new document) the messages already there newer
# than inbox.since join the queue. Entries stay queued until the caller names them in
# inbox.done, so a probe whose answer is lost loses nothing. Route 2, the DOM: each chat-list
# row's number, unread count and newest message's preview (the chat is not opened).
_INBOX_JS = """
const ser = (w) => w ? String(w._serialized || w) : null;
const incomingOf = (m, contact) => {
  const remote = ser(m.id.remote) || '';
  // In a group the sender is the author; in a 1:1 chat, the chat (WWJ Message.author / from).
  const fromWid = remote.endsWith('@g.us') ? m.author : (m.from || m.id.remote);
  const from = ser(fromWid);
  let phone = null;
  if (from && from.endsWith('@lid')) {
    try { const pn = contact && contact.getPhoneNumber(fromWid); if (pn) phone = String(pn.user || ser(pn).split('@')[0]); } catch (e) {}
  } else if (from) phone = from.split('@')[0].split(':')[0];
  let quoted = m.quotedStanzaID || null;
  if (!quoted && m.quotedMsgId) quoted = String(m.quotedMsgId.id || ser(m.quotedMsgId) || '') || null;
  return {id: m.id._serialized, key: m.id.id, from: from, phone: phone, type: String(m.type || 'chat'),
          body: (m.type === 'chat' ? m.body : m.caption) || null, mimetype: m.mimetype || null,
          filename: m.filename || null, size: typeof m.size === 'number' ? m.size : null, quoted: quoted,
          t: typeof m.t === 'number' ? m.t : null};
};
const readInbox = (inbox, coll, contact) => {
  if (coll && coll.Msg && typeof coll.Msg.on === 'function' && typeof coll.Msg.getModelsArray === 'function') {
    let box = window.__waInbox;
    if (!box || box.msg !== coll.Msg) {
      box = window.__waInbox = {msg: coll.Msg, queue: [], seen: new Set()};
      const take = (m) => {
        try {
          if (!m || !m.id || m.id.fromMe || box.seen.has(m.id._serialized)) return;
          if ((ser(m.id.remote) || '').endsWith('@broadcast')) return;  // status updates and broadcasts: not messages to us
          if (m.type === 'ciphertext') { if (typeof m.once === 'function') m.once('change:type', take); return; }
          box.seen.add(m.id._serialized);
          box.queue.push(incomingOf(m, contact));
          if (box.queue.length > 2000) box.queue.shift();
        } catch (e) {}
      };
      coll.Msg.on('add', (m) => { if (m && m.isNewMsg) take(m); });
      const since = typeof inbox.since === 'number' ? inbox.since : Infinity;
      for (const m of coll.Msg.getModelsArray()) { if (m && typeof m.t === 'number' && m.t >= since) take(m); }
    }
    const done = new Set(inbox.done || []);
    box.queue = box.queue.filter(e => !done.has(e.id));
    return {route: 'modules', messages: box.queue.slice(0, 200)};
  }
  const chats = [];
  for (const row of allIn(document, S.chat_rows)) {
    const title = firstIn(row, S.chat_title);
    const name = title ? title.getAttribute('title') || '' : '';
    const badge = firstIn(row, S.unread);
    const unread = badge ? Number(digits(badge.getAttribute('aria-label') || badge.textContent)) || 0 : 0;
    let preview = null;
    for (const sp of allIn(row, S.preview)) { if (sp !== title && sp.getAttribute('title') !== name) preview = sp; }
    chats.push({phone: /^[+\\d][\\d\\s().-]*$/.test(name) ? digits(name) : '', title: name, unread: unread,
                text: preview ? preview.getAttribute('title') : null, ours: !!level(row)});
  }
  return {route: 'dom', chats: chats};
};
"""

# One round trip reads everything the state machine needs. arguments[1]: the serialized
# ids of the messages whose acks are followed; arguments[2]: null, or what the incoming
# follower asks ({since: epoch seconds, done: [serialized ids it has]}).
_PROBE_JS = _HELPERS_JS + _INBOX_JS + """
const watch = arguments[1] || [];
const out = {url: location.href, title: document.title, ready: document.readyState, origin: performance.timeOrigin,
             wid: null, me: null,
             version: null, socket: null, needsUpdate: false, route: 'dom', loggedIn: false, syncing: false,
             qr: null, reload: false, code: null, phoneInput: false, offline: false, screen: null,
             dialogs: [], acks: {}, chats: {}, text: '', restriction: null};
for (const k of S.wid_keys) { try { const v = localStorage.getItem(k); if (v) { out.wid = v; break; } } catch (e) {} }
try { out.version = (window.Debug && window.Debug.VERSION) ? String(window.Debug.VERSION) : null; } catch (e) {}
const sock = mod(S.m_socket);
if (sock && sock.Socket && sock.Socket.state) { out.socket = String(sock.Socket.state); out.route = 'modules'; }
const stream = mod(S.m_stream);
if (stream && stream.Stream) out.needsUpdate = !!stream.Stream.needsUpdate;
const me = mod(S.m_me);
if (me && typeof me.getMaybeMePnUser === 'function') {
  try { const w = me.getMaybeMePnUser(); if (w) out.me = String(w.user || String(w._serialized || w).split('@')[0]); } catch (e) {}
}
const lock = mod(S.m_timelock), cap = mod(S.m_cap);
try { if (lock && lock.isUserReachoutTimelocked()) out.restriction = 'reachout_timelock'; } catch (e) {}
try { if (!out.restriction && cap && cap.isUserCapped()) out.restriction = 'new_chat_cap'; } catch (e) {}
const coll = mod(S.m_collections);
if (coll && coll.Msg && typeof coll.Msg.get === 'function') {
  for (const id of watch) {
    try { const m = coll.Msg.get(id); if (m && typeof m.ack === 'number') out.acks[id] = {ack: m.ack}; } catch (e) {}
  }
}
out.loggedIn = !!firstIn(document, S.logged_in);
const bar = firstIn(document, S.syncing);
out.syncing = !!bar;
const box = firstIn(document, S.qr_container);
if (box) {
  out.reload = !!firstIn(document, S.qr_reload);
  if (!out.reload && firstIn(document, S.qr_canvas)) out.qr = box.getAttribute('data-ref');
}
const code = firstIn(document, S.pairing_code);
if (code) out.code = code.getAttribute('data-link-code');
out.phoneInput = !!firstIn(document, S.phone_input);
for (const d of allIn(document, S.dialog)) {
  out.dialogs.push({text: (d.innerText || d.textContent || '').trim().slice(0, 500),
                    buttons: allIn(d, S.dialog_buttons).map(b => (b.innerText || b.textContent || '').trim()).filter(Boolean)});
}
// Whole screens replace the main UI; with the main UI only dialogs (the 2021-23 conflict
// modal) and banners can say more.
let text = out.dialogs.map(d => d.text).join(' ');
if (!out.loggedIn && document.body) text += ' ' + (document.body.innerText || '');
text = text.toLowerCase();
for (const [name, needles] of S.screens) { if (needles.some(n => text.includes(n))) { out.screen = name; break; } }
if (!out.screen && !out.loggedIn && firstIn(document, S.app_lock)) out.screen = 'APP_LOCKED';
out.text = text.slice(0, 200);
if (out.loggedIn) {
  out.offline = !!firstIn(document, S.offline);
  const number = openChatNumber();
  for (const row of allIn(document, S.open_rows)) {
    const id = row.getAttribute('data-id');
    if (id && id.startsWith(S.own_prefix) && !(id in out.acks)) out.acks[id] = {level: level(row)};
  }
  for (const row of allIn(document, S.chat_rows)) {
    const title = firstIn(row, S.chat_title);
    const n = title ? digits(title.getAttribute('title')) : '';
    const l = level(row);
    if (n && l) out.chats[n] = l;
  }
}
const inbox = arguments[2];
if (inbox && out.loggedIn) out.inbox = readInbox(inbox, coll, mod(S.m_contact));
return out;
"""

# Our own messages in the chat with arguments[1] (digits), oldest first, as {id, text, t}:
# from the Msg collection (any address form: a LID chat is matched through the number
# behind it; t: Msg.t, epoch seconds), else from the open chat's rows once its header
# names that number (t: the start of the minute the row's stamp names, minute: true).
# A stamp is read in the page's own time zone (new Date(y, m, d, h, min)), as the page
# wrote it; day and month are told apart by the page's language (en-US: month first),
# unless one of them is above 12. A stamp that does not read gives t null.
_OWN_MESSAGES_JS = _HELPERS_JS + """
const phone = arguments[1];
const coll = mod(S.m_collections), contact = mod(S.m_contact);
if (coll && coll.Msg && typeof coll.Msg.getModelsArray === 'function') {
  try {
    let unresolved = false;
    const numberOf = (wid) => {
      if (!wid) return '';
      const ser = String(wid._serialized || wid);
      if (!ser.endsWith('@lid')) return ser.split('@')[0];
      try {
        const pn = contact && contact.getPhoneNumber(wid);
        if (pn) return String(pn.user || String(pn._serialized || pn).split('@')[0]);
      } catch (e) {}
      unresolved = true;  // a LID chat whose number the models do not tell
      return '';
    };
    const mine = coll.Msg.getModelsArray().filter(m => m.id && m.id.fromMe && numberOf(m.id.remote) === phone);
    // Missing one of ours would make a sent message look unsent: then the open chat's rows decide.
    if (!unresolved) return {route: 'modules', rows: mine.map(m => ({id: m.id._serialized, text: String(m.body || m.caption || ''), t: m.t || null}))};
  } catch (e) {}
}
const number = openChatNumber();
if (number === null || (number && number !== phone)) return {route: 'dom', rows: null};
let monthFirst = true;
try {
  const parts = new Intl.DateTimeFormat(document.documentElement.lang || navigator.language || 'en-US')
    .formatToParts(new Date(2001, 10, 22)).map(p => p.type);
  monthFirst = parts.indexOf('month') < parts.indexOf('day');
} catch (e) {}
const stampTime = (row) => {
  const el = firstIn(row, S.message_stamp);
  const stamp = ((el && el.getAttribute('data-pre-plain-text')) || '').replace(/[\\u200e\\u200f]/g, '');
  const inside = (stamp.match(/\\[([^\\]]*)\\]/) || [])[1] || '';
  const hm = inside.match(/(\\d{1,2})[:.](\\d{2})(?:[:.]\\d{2})?(?:[\\s\\u00a0\\u202f]*([ap])\\.?[\\s\\u00a0\\u202f]*m\\b\\.?)?/i);
  const ymd = inside.match(/(\\d{1,4})[\\/.-](\\d{1,2})[\\/.-](\\d{1,4})/);
  if (!hm || !ymd) return null;
  let [a, b, c] = [Number(ymd[1]), Number(ymd[2]), Number(ymd[3])];
  let y, mo, d;
  if (ymd[1].length === 4) [y, mo, d] = [a, b, c];
  else {
    y = c < 100 ? 2000 + c : c;
    [mo, d] = (a > 12 || (b <= 12 && !monthFirst)) ? [b, a] : [a, b];
  }
  let h = Number(hm[1]);
  const mi = Number(hm[2]);
  if (hm[3]) h = h % 12 + (hm[3].toLowerCase() === 'p' ? 12 : 0);
  const at = new Date(y, mo - 1, d, h, mi);
  if (at.getFullYear() !== y || at.getMonth() !== mo - 1 || at.getDate() !== d || at.getMinutes() !== mi) return null;
  return at.getTime() / 1000;
};
return {route: 'dom', rows: allIn(document, S.open_rows)
  .filter(r => (r.getAttribute('data-id') || '').startsWith(S.own_prefix))
  .map(r => {
    const t = firstIn(r, S.message_text);
    return {id: r.getAttribute('data-id'), text: t ? t.innerText : '', t: stampTime(r), minute: true};
  })};
"""

# The ack of one message: the model's number, else the level its row shows.
_MESSAGE_ACK_JS = _HELPERS_JS + """
const id = arguments[1];
const coll = mod(S.m_collections);
if (coll && coll.Msg && typeof coll.Msg.get === 'function') {
  try { const m = coll.Msg.get(id); if (m && typeof m.ack === 'number') return {ack: m.ack}; } catch (e) {}
}
for (const row of allIn(document, S.open_rows)) { if (row.getAttribute('data-id') === id) return {level: level(row)}; }
return null;
"""

_FIRST_JS = """
for (const s of arguments[0]) { try { const el = document.querySelector(s); if (el) return el; } catch (e) {} }
return null;
"""

# The deepest element whose whole text is one of arguments[0] (inside arguments[1] if
# given), or its button when it sits in one: "Next" is a <button> around a <div>.
_BY_TEXT_JS = """
const scopes = arguments[1] ? Array.from(document.querySelectorAll(arguments[1])) : [document.body];
for (const text of arguments[0]) {
  for (const scope of scopes) {
    if (!scope) continue;
    let found = null;
    for (const el of scope.querySelectorAll('*')) {
      if ((el.textContent || '').trim() === text && el.getClientRects().length > 0) found = el;
    }
    if (found) return found.closest('button, [role="button"]') || found;
  }
}
return null;
"""

# Press the button labelled arguments[1] inside the dialog whose text starts as arguments[2].
_PRESS_DIALOG_JS = """
const S = arguments[0];
for (const s of S.dialog) {
  for (const d of document.querySelectorAll(s)) {
    if (!(d.innerText || d.textContent || '').trim().startsWith(arguments[2])) continue;
    for (const bs of S.dialog_buttons) {
      for (const b of d.querySelectorAll(bs)) {
        if ((b.innerText || b.textContent || '').trim() === arguments[1]) { b.click(); return true; }
      }
    }
  }
}
return false;
"""

# Running a module call: the helper every asynchronous script below starts with.
_ASYNC_JS = """
const S = arguments[0], phone = arguments[1], done = arguments[arguments.length - 1];
const mod = (names) => {
  if (typeof window.require !== 'function') return null;
  for (const n of names) { try { const m = window.require(n); if (m) return m; } catch (e) {} }
  return null;
};
"""

# Open the chat with arguments[1] (digits) inside the running app through the page's own
# modules (WWJ InterfaceController.openChatWindow; WAJS openChatBottom.ts): the existence
# query first (the id WhatsApp answers with is the one used), then findOrCreateLatestChat
# and Cmd.openChatBottom, whose signature changed from positional to one object.
# Answers {route, ok, wid} or {route, missing} or {route, unregistered} or {route, restricted}
# or {route, error}; ``registered`` is the existence query's answer when it gave one.
_OPEN_CHAT_MODULES_JS = _ASYNC_JS + """
let registered = null;  // the id WhatsApp's existence query answered with
(async () => {
  const widFactory = mod(S.m_wid), exists = mod(S.m_exists), find = mod(S.m_find), cmd = mod(S.m_cmd),
        coll = mod(S.m_collections);
  if (!widFactory || !find || !cmd || !cmd.Cmd || !coll || !coll.Chat) return {route: 'modules', missing: true};
  let wid = widFactory.createWid(phone + '@c.us');
  if (exists && typeof exists.queryWidExists === 'function') {
    const found = await exists.queryWidExists(wid);
    if (!found || !found.wid) return {route: 'modules', unregistered: true};
    wid = found.wid;
    registered = String(wid._serialized || wid);
  }
  const result = await find.findOrCreateLatestChat(wid, 'newChatFlow');
  const chat = coll.Chat.get(result.chat.id) || coll.Chat.get(result.chat.id._serialized);
  if (!chat) return {route: 'modules', error: 'no chat model', registered};
  // The checks the page makes before it lets a chat be written to (WHATSAPP_WEB.md section 9).
  const lock = mod(S.m_timelock), cap = mod(S.m_cap), who = {chat: chat, contact: chat.contact};
  try {
    if (lock && lock.isUserReachoutTimelocked() && !lock.canSendMsgWhileTimelocked(who))
      return {route: 'modules', restricted: 'reachout_timelock', registered};
    if (cap && cap.isUserCapped() && !cap.canSendMsgWhileCapped(who))
      return {route: 'modules', restricted: 'new_chat_cap', registered};
  } catch (e) {}
  try { await cmd.Cmd.openChatBottom({chat: chat, chatEntryPoint: 'Chatlist'}); }
  catch (e) { if (e instanceof TypeError) await cmd.Cmd.openChatBottom(chat); else throw e; }
  return {route: 'modules', ok: true, wid: String(wid._serialized || wid), registered};
})().then(done, (e) => done({route: 'modules', error: String(e && e.message || e), registered}));
"""


# WhatsApp's existence query for arguments[1] (digits): WWJ getNumberId / isRegisteredUser,
# WAJS contact.queryExists. Answers {exists, wid} or {missing} (no such module) or {error}.
_QUERY_EXISTS_JS = _ASYNC_JS + """
(async () => {
  const widFactory = mod(S.m_wid), exists = mod(S.m_exists);
  if (!widFactory || !exists || typeof exists.queryWidExists !== 'function') return {missing: true};
  const found = await exists.queryWidExists(widFactory.createWid(phone + '@c.us'));
  if (!found || !found.wid) return {exists: false};
  return {exists: true, wid: String(found.wid._serialized || found.wid)};
})().then(done, (e) => done({error: String(e && e.message || e)}));
"""

# Mark the chat with arguments[1] (digits) read through the page's own action, without
# opening it: WWJ sendSeen (Stream.markAvailable, WAWebUpdateUnreadChatAction.sendSeen({chat,
# threadId}), Stream.markUnavailable); older builds take sendSeen(chat, false), and markSeen(chat)
# stood in where sendSeen broke. The chat is found by number, by LID, or by the id the
# existence query answers. Answers {ok, unread (before)} or {nochat} or {missing} or {error}.
_MARK_READ_JS = _ASYNC_JS + """
(async () => {
  const widFactory = mod(S.m_wid), coll = mod(S.m_collections), seen = mod(S.m_unread),
        contact = mod(S.m_contact), exists = mod(S.m_exists), stream = mod(S.m_stream);
  if (!widFactory || !coll || !coll.Chat || !seen || (typeof seen.sendSeen !== 'function'
      && typeof seen.markSeen !== 'function')) return {missing: true};
  const chatOf = (wid) => {
    let chat = coll.Chat.get(wid);
    if (!chat && contact && typeof contact.getCurrentLid === 'function') {
      try { const lid = contact.getCurrentLid(wid); if (lid) chat = coll.Chat.get(lid); } catch (e) {}
    }
    return chat;
  };
  const wid = widFactory.createWid(phone + '@c.us');
  let chat = chatOf(wid);
  if (!chat && exists && typeof exists.queryWidExists === 'function') {
    const found = await exists.queryWidExists(wid);
    if (found && found.wid) chat = chatOf(found.wid);
  }
  if (!chat) return {nochat: true};  // not synced to this page yet: opening it is the way
  const unread = chat.unreadCount || 0;
  const presence = stream && stream.Stream && typeof stream.Stream.markAvailable === 'function' ? stream.Stream : null;
  if (presence) presence.markAvailable();
  try {
    if (typeof seen.sendSeen === 'function') {
      try { await seen.sendSeen({chat: chat, threadId: undefined}); }
      catch (e) { if (e instanceof TypeError) await seen.sendSeen(chat, false); else throw e; }
    } else {
      await seen.markSeen(chat);
    }
  } finally {
    if (presence && typeof presence.markUnavailable === 'function') presence.markUnavailable();
  }
  return {ok: true, unread: unread};
})().then(done, (e) => done({error: String(e && e.message || e)}));
"""

# Click an in-page link to the chat: the app catches clicks on <a> in the capture phase and
# runs their href as an in-app command while its main UI shows (older bundle read_file id
# 36374890003; field code read_file id 22076177238). A whatsapp:// link, not wa.me: if
# the app did not catch it, the browser would hand it to no one instead of leaving the page
# for the internet.
_OPEN_CHAT_LINK_JS = """
const a = document.createElement('a');
a.href = 'whatsapp://send?phone=' + arguments[0];
a.style.display = 'none';
(document.getElementById('app') || document.body).appendChild(a);
a.click();
a.remove();
return true;
"""

# Insert lines into the focused editor in one round trip: execCommand('insertText') for
# each line and 'insertLineBreak' between them (what Shift+Enter does), each a beforeinput
# event the editor handles (field code read_file id 11272829935 types into the WhatsApp
# composer this way). JavaScript strings carry any Unicode, unlike ChromeDriver's keys.
_INSERT_LINES_JS = """
const box = arguments[0], lines = arguments[1];
box.focus();
lines.forEach((line, i) => {
  if (i) document.execCommand('insertLineBreak');
  if (line) document.execCommand('insertText', false, line);
});
return true;
"""

_TAKEOVER_JS = """
const names = arguments[0];
for (const n of names) {
  try { const m = window.require(n); if (m && m.Socket && typeof m.Socket.takeover === 'function') { m.Socket.takeover(); return true; } }
  catch (e) {}
}
return false;
"""

_PAGE_ARGS = {
    "m_socket": list(sel.MODULE_SOCKET), "m_stream": list(sel.MODULE_STREAM),
    "m_wid": list(sel.MODULE_WID_FACTORY), "m_exists": list(sel.MODULE_QUERY_EXISTS),
    "m_find": list(sel.MODULE_FIND_CHAT), "m_cmd": list(sel.MODULE_CMD),
    "m_timelock": list(sel.MODULE_TIMELOCK), "m_cap": list(sel.MODULE_NEW_CHAT_CAP),
    "m_collections": list(sel.MODULE_COLLECTIONS), "m_me": list(sel.MODULE_ME), "m_contact": list(sel.MODULE_CONTACT),
    "m_unread": list(sel.MODULE_UPDATE_UNREAD),
    "wid_keys": list(sel.OWN_WID_KEYS), "logged_in": list(sel.LOGGED_IN), "syncing": list(sel.SYNCING),
    "qr_container": list(sel.QR_CONTAINER), "qr_canvas": list(sel.QR_CANVAS), "qr_reload": list(sel.QR_RELOAD_BUTTON),
    "pairing_code": list(sel.PAIRING_CODE), "phone_input": list(sel.PHONE_NUMBER_INPUT),
    "offline": list(sel.OFFLINE_BANNER), "app_lock": list(sel.APP_LOCK_INPUT),
    "dialog": list(sel.DIALOG), "dialog_buttons": list(sel.DIALOG_BUTTONS),
    "screens": [[name, [n.lower() for n in needles]] for name, (needles, _state) in _SCREENS.items()],
    "header": list(sel.CHAT_HEADER_TITLE), "open_rows": list(sel.OPEN_CHAT_ROWS), "own_prefix": sel.OUTGOING_ROW_PREFIX,
    "message_text": list(sel.MESSAGE_TEXT), "chat_rows": list(sel.CHAT_LIST_ROWS), "chat_title": list(sel.CHAT_TITLE),
    "message_stamp": list(sel.MESSAGE_STAMP),
    "unread": list(sel.CHAT_UNREAD_BADGE), "preview": list(sel.CHAT_PREVIEW),
    "t_pending": list(sel.TICK_TITLE_PENDING), "t_sent": list(sel.TICK_TITLE_SENT),
    "t_read": list(sel.TICK_TITLE_DELIVERED_OR_READ), "read_label": sel.READ_ARIA_LABEL,
    "status_icon": list(sel.STATUS_ICON),
    "levels": {sel.ICON_PENDING: "pending", sel.ICON_SENT: "sent", sel.ICON_DELIVERED: "delivered",
               sel.ICON_FAILED: "failed"},
}


def _dated_from(row: dict, anchor: float) -> bool:
    """Whether one of our rows (``own_messages``) may be from ``anchor`` (epoch seconds)
    on: its time ``t`` is to the second, or, with ``minute``, the start of the minute its
    stamp names, which counts when it is not before the anchor's minute (local minutes
    start on the epoch's minutes in every time zone of whole minutes). Undated: True."""
    t = row.get("t")
    if not t:
        return True
    return t >= (anchor // 60 * 60 if row.get("minute") else anchor)


def _read_ack(entry: dict | None) -> str | None:
    if not entry:
        return None
    if "ack" in entry:
        return ack_level(entry["ack"])
    return entry.get("level")


def classify(raw: dict) -> PageState:
    """The page state from one probe's raw reading (see _PROBE_JS). The socket state of
    the page's modules wins where it names a state; whole screens are told apart by their
    text; a page matching nothing is UNKNOWN, never silently OPENING."""
    if sel.LOGOUT_URL_MARK in (raw.get("url") or ""):
        return PageState.LOGGED_OUT
    socket, screen = raw.get("socket"), raw.get("screen")
    screen_state = _SCREENS[screen][1] if screen in _SCREENS else None
    if raw.get("loggedIn"):
        if socket == "CONFLICT" or screen_state == PageState.CONFLICT:
            return PageState.CONFLICT
        if raw.get("offline") or socket == "TIMEOUT" or screen_state == PageState.TIMEOUT:
            return PageState.TIMEOUT
        return PageState.CONNECTED
    if screen_state is not None:
        return screen_state
    if socket in _SOCKET_SCREENS:
        return _SOCKET_SCREENS[socket]
    if raw.get("needsUpdate"):
        return PageState.NEEDS_UPDATE
    if socket == "TIMEOUT":
        return PageState.TIMEOUT if raw.get("wid") else PageState.CONNECTING
    if raw.get("qr") or raw.get("code"):
        return PageState.UNPAIRED
    if raw.get("reload"):
        return PageState.UNPAIRED_IDLE
    if raw.get("syncing"):
        # A progress bar alone is also the start-up screen (of a stored login too, which may
        # turn out revoked: a QR follows); it means "scanned, syncing" once the socket says
        # so, with the 2021-23 sync text, or when this same document showed a code before
        # (``scanned``, see snapshot()).
        text = raw.get("text") or ""
        if socket == "PAIRING" or raw.get("scanned") or sel.SYNCING_TEXT.lower() in text:
            return PageState.PAIRING
        return PageState.OPENING
    if raw.get("phoneInput"):
        return PageState.OPENING  # the phone-number path before its code shows
    if socket in _SOCKET_STARTING or raw.get("ready") != "complete":
        return PageState.OPENING  # on its way (or a document still loading)
    # Nothing known: a blank or foreign page, or the socket CONNECTED without the main UI.
    return PageState.UNKNOWN


class WhatsAppWeb:
    """The page object over one Chrome tab on ``base_url`` (web.whatsapp.com or the simulator):
    reads the page's state and sends; raises SendError and its subclasses when a send fails."""

    def __init__(self, driver: WebDriver, base_url: str):
        self.driver = driver
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        # The document (performance.timeOrigin) that last showed a QR or pairing code: a
        # loading bar in that same document follows a scan; after a reload it is a start-up.
        self._code_document: float | None = None
        # Dialled number -> the id WhatsApp answered with for it (``<digits>@c.us``), learnt
        # when its chat opened: the existence query's answer, or the open chat's number.
        self.recipients: dict[str, str] = {}

    # --- reading the page -------------------------------------------------------------
    def open(self) -> None:
        """Load the app and wait for its document (not for the app's own boot)."""
        self.driver.get(self.base_url)

    def start_loading(self, *, reload: bool = False) -> None:
        """Start loading the app again (``reload``: the page it shows) without waiting for
        the load, for callers that must not block on it (the slot's monitor)."""
        try:
            self.driver.execute_script("if (arguments[0]) location.reload(); else location.href = arguments[1];",
                                       reload, self.base_url)
        except WebDriverException:  # a page that runs no script (a browser error page)
            self.open()

    def snapshot(self, watch: list[str] | tuple[str, ...] = (), inbox: dict | None = None) -> PageSnapshot:
        """Read the page once. ``watch``: serialized ids of messages whose acks to read.
        ``inbox``: read incoming messages too, ``{"since": epoch seconds, "done": [serialized
        ids already taken]}`` (see ``Inbox``); the answer is ``PageSnapshot.inbox``."""
        raw = self.driver.execute_script(_PROBE_JS, _PAGE_ARGS, list(watch), inbox)
        if raw.get("qr") or raw.get("code"):
            self._code_document = raw.get("origin")
        raw["scanned"] = raw.get("origin") is not None and raw.get("origin") == self._code_document
        state = classify(raw)
        wid = raw.get("wid")
        if raw.get("me"):
            wid = f"{raw['me']}@c.us"  # getMaybeMePnUser() beats the localStorage guess
        common = {"version": raw.get("version"), "route": raw.get("route") or "dom",
                  "restriction": raw.get("restriction") or None,
                  "url": raw.get("url") or "", "title": raw.get("title") or "",
                  "dialogs": tuple(Dialog(d.get("text") or "", tuple(d.get("buttons") or ()))
                                   for d in raw.get("dialogs") or ())}
        if state in (PageState.CONNECTED, PageState.TIMEOUT, PageState.CONFLICT):
            acks = {message_key(k): level for k, v in (raw.get("acks") or {}).items() if (level := _read_ack(v))}
            chats = {k: v for k, v in (raw.get("chats") or {}).items() if v}
            return PageSnapshot(state, wid=wid, acks=acks, chat_acks=chats, inbox=read_inbox(raw.get("inbox")),
                                **common)
        if state == PageState.UNPAIRED:
            if raw.get("qr"):
                return PageSnapshot(state, qr=raw["qr"], **common)
            return PageSnapshot(state, pairing_code=format_pairing_code(raw["code"]), **common)
        return PageSnapshot(state, wid=wid, **common)

    def reload_qr(self) -> bool:
        """Click the reload control that replaces the QR once the page stops rotating codes
        (inside ``div[data-ref]``, WPP scrape-img-qr.ts; WHATSAPP_WEB.md section 3); False when absent."""
        button = self._first(sel.QR_RELOAD_BUTTON)
        if button is None:
            return False
        button.click()
        return True

    def take_over(self) -> bool:
        """Answer a conflict screen with "Use here" (the page's button, else the socket
        model's takeover()); False if neither is there. Never presses anything else."""
        button = self.driver.execute_script(_BY_TEXT_JS, list(sel.USE_HERE_TEXTS), None)
        if button is not None:
            button.click()
            return True
        return bool(self.driver.execute_script(_TAKEOVER_JS, list(sel.MODULE_SOCKET)))

    def dismiss_dialogs(self, dialogs: tuple[Dialog, ...]) -> int:
        """Press the allowed action (``allowed_action``) of every dialog that has one; the
        others are left alone (never a Log out). Returns how many were pressed."""
        pressed = 0
        for dialog in dialogs:
            label = allowed_action(dialog)
            if label is None:
                continue
            try:
                self.driver.execute_script(_PRESS_DIALOG_JS, _PAGE_ARGS, label, dialog.text[:40])
                pressed += 1
            except WebDriverException:
                pass  # gone meanwhile
        return pressed

    # --- linking with a phone number ---------------------------------------------------
    def request_pairing_code(self, phone: str, timeout: float = 20.0) -> str:
        """Ask the page for a pairing code for ``phone`` (digits); return it as shown (ABCD-EFGH).

        The number is typed as ``+<digits>`` over whatever the country picker prefilled.
        Raises PairingError when the page offers no code (already linked, bad number, ...).
        """
        deadline = time.monotonic() + timeout
        if self.snapshot().state in (PageState.CONNECTED, PageState.TIMEOUT, PageState.CONFLICT):
            raise PairingError("The session is already logged in")
        if self._first(sel.PAIRING_CODE) is not None or self._first(sel.PHONE_NUMBER_INPUT) is None:
            self.open()  # a fresh login page; a code for another number would be stale

            def link_entry() -> bool:
                # A cookie dialog may cover the page, and its backdrop may still take a click
                # while it closes: an intercepted click is tried again.
                dialogs = self.snapshot().dialogs
                if dialogs:
                    self.dismiss_dialogs(dialogs)
                    return False  # look again once it has gone
                entry = self.driver.execute_script(_BY_TEXT_JS, list(sel.LINK_WITH_PHONE_TEXTS), None)
                if entry is None:
                    return False
                entry.click()
                return True

            self._wait(deadline, link_entry, "the login page offered no 'Log in with phone number'",
                       error=PairingError)
        box = self._wait(deadline, lambda: self._first(sel.PHONE_NUMBER_INPUT),
                         "the phone number input did not appear", error=PairingError)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(f"+{phone}")
        button = self.driver.execute_script(_BY_TEXT_JS, list(sel.PHONE_NUMBER_NEXT_TEXTS), None)
        clicked = False
        if button is not None:
            try:
                button.click()
                clicked = True
            except ElementClickInterceptedException:  # something covers it for a moment
                pass
        if not clicked:
            box.send_keys(Keys.ENTER)  # Enter in the number field does the same

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
    # recipient sees, so tenacity retries it on transient page errors. Committing (Enter
    # in the composer or the caption) is done once; ``on_commit`` learns the newest row
    # before it, so that a later attempt can look for this one instead of sending blindly
    # again. Confirming waits for the new row and the server's ack; a failure there is
    # ``UnconfirmedSend``: the message may be out.

    def open_chat(self, phone: str, deadline: float):
        """Open the chat with ``phone`` (E.164 digits) inside the running app and return its
        composer: through the page's modules, else by clicking an in-page link the app
        handles itself; a full page load only when the app is not showing (a broken,
        blank or foreign page). The chat already open is kept.

        Raises NumberNotOnWhatsApp when WhatsApp's existence query (or the page's
        invalid-number dialog) says so, TransientSendError when the chat does not open.
        """
        snap = self.snapshot()
        if snap.state == PageState.UNKNOWN:
            self.open()  # an error, blank or foreign page: load the app again (no message text in any URL)
        if snap.state in (PageState.UNKNOWN, PageState.OPENING, PageState.PAIRING):
            snap = self._wait(deadline, lambda: (now := self.snapshot()).state == PageState.CONNECTED and now,
                              "the app did not come back")
        if snap.state != PageState.CONNECTED:
            raise TransientSendError(f"the page is {snap.state.value}")
        if self.dismiss_dialogs(snap.dialogs):
            raise TransientSendError("a dialog was answered")  # look again once it has gone
        if phone in self.recipients and self._chat_number() == self.number_of(phone):
            box = self._first(sel.COMPOSE_BOX)
            if box is not None:
                return box
        try:  # bounded: a model call that never answers costs the fallback, not the send
            self.driver.set_script_timeout(max(1.0, min(10.0, deadline - time.monotonic())))
            opened = self.driver.execute_async_script(_OPEN_CHAT_MODULES_JS, _PAGE_ARGS, phone) or {}
        except WebDriverException:
            opened = {}
        finally:
            self.driver.set_script_timeout(SCRIPT_TIMEOUT)
        if opened.get("unregistered"):
            raise NumberNotOnWhatsApp(f"The number {phone} is not on WhatsApp")
        if opened.get("registered"):
            self.recipients[phone] = opened["registered"]
        if opened.get("restricted"):
            raise SendRestricted(opened["restricted"])
        if not (opened.get("ok") and opened.get("wid")):
            self.driver.execute_script(_OPEN_CHAT_LINK_JS, phone)
        return self._wait_for_chat(phone, deadline, registered=bool(opened.get("registered")))

    def check_number(self, phone: str, timeout: float = 20.0) -> NumberCheck:
        """Whether ``phone`` (E.164 digits) is on WhatsApp, and the id WhatsApp uses for it.

        Through the page's existence query where its modules answer (nothing visible
        changes); else the chat is opened, whose invalid-number dialog says "not on
        WhatsApp" (on that route a limit on new chats by link cannot be told apart, and
        opening the chat marks it read). Raises TransientSendError when the page cannot
        answer now, SendRestricted when WhatsApp restricts the account.
        """
        deadline = time.monotonic() + timeout
        snap = self.snapshot()
        if snap.state != PageState.CONNECTED:
            raise TransientSendError(f"the page is {snap.state.value}")
        found = self._page_call(_QUERY_EXISTS_JS, phone, deadline)
        if isinstance(found.get("exists"), bool):
            if found["exists"]:
                self.recipients[phone] = found["wid"]
            return NumberCheck(found["exists"], found.get("wid"), "modules")
        try:
            self._prepared(lambda: self.open_chat(phone, deadline), deadline)
        except NumberNotOnWhatsApp:
            return NumberCheck(False, None, "dom")
        return NumberCheck(True, self.recipients.get(phone) or f"{self.number_of(phone)}@c.us", "dom")

    def mark_chat_read(self, phone: str, timeout: float = 20.0) -> str:
        """Mark the chat with ``phone`` (E.164 digits) read, as a person reading it would;
        return the route: "modules" (the page's own sendSeen, the chat stays closed) or
        "dom" (the chat was opened, which marks it read on the real page). Raises
        NumberNotOnWhatsApp, TransientSendError or SendRestricted as ``open_chat``."""
        deadline = time.monotonic() + timeout
        snap = self.snapshot()
        if snap.state != PageState.CONNECTED:
            raise TransientSendError(f"the page is {snap.state.value}")
        if self._page_call(_MARK_READ_JS, phone, deadline).get("ok"):
            return "modules"
        self._prepared(lambda: self.open_chat(phone, deadline), deadline)
        return "dom"

    def _page_call(self, script: str, phone: str, deadline: float) -> dict:
        """Run one of the asynchronous module scripts, bounded: a call that never answers
        costs the DOM fallback, not the caller's whole time ({} then)."""
        try:
            self.driver.set_script_timeout(max(1.0, min(10.0, deadline - time.monotonic())))
            return self.driver.execute_async_script(script, _PAGE_ARGS, phone) or {}
        except WebDriverException:
            return {}
        finally:
            self.driver.set_script_timeout(SCRIPT_TIMEOUT)

    def number_of(self, phone: str) -> str:
        """The number of the account ``phone`` reaches, once its chat was opened (else
        ``phone`` itself)."""
        return self.recipients.get(phone, phone).split("@", 1)[0]

    def send_text(self, phone: str, text: str, timeout: float = 20.0, on_commit=None) -> str:
        """Send ``text`` to ``phone`` (E.164 digits); return the WhatsApp message id
        (serialized, in the chat's address form: ``true_<digits>@c.us_…`` or ``true_<lid>@lid_…``).

        The chat is opened inside the running app (``open_chat``) and the text inserted as
        input events, so any text up to WhatsApp's limit works, emoji and other characters
        outside the BMP included; it never travels in a URL. Returns once the server
        accepted the message (ack 1: the pending clock is gone).
        """
        deadline = time.monotonic() + timeout

        def prepare():
            box = self.open_chat(phone, deadline)
            self._type(box, text)
            return box

        box = self._prepared(prepare, deadline)
        number = self.number_of(phone)
        before = self._commit_point(number, on_commit)  # taken last: the history loads meanwhile
        box.send_keys(Keys.ENTER)
        return self._wait_sent(number, before, deadline)

    def send_file(self, phone: str, path: Path, *, as_media: bool, caption: str = "",
                  timeout: float = 60.0, on_commit=None) -> str:
        """Attach ``path`` (photos & videos input when ``as_media``, else documents) with
        ``caption``; return the WhatsApp message id once the server has it."""
        deadline = time.monotonic() + timeout

        def prepare():
            self.open_chat(phone, deadline)
            self.dismiss_dialogs(self.snapshot().dialogs)  # e.g. "What's new", shown just after the chat opened
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
            return box

        try:
            box = self._prepared(prepare, deadline)
        except Exception:
            self._discard_media_editor()
            raise
        number = self.number_of(phone)
        before = self._commit_point(number, on_commit)
        box.send_keys(Keys.ENTER)  # the editor's Enter sends, in any language
        return self._wait_sent(number, before, deadline)

    def _discard_media_editor(self) -> None:
        """After a media send failed before its commit: a media editor it left open covers
        the chat (its attach button is not clickable, its composer not reachable), so every
        later send would fail the same way. The app is loaded again, which drops the
        unsent file; nothing was committed, so nothing the recipient sees is lost."""
        try:
            left_open = self._first(sel.CAPTION_BOX) is not None
        except WebDriverException:
            return  # a page that cannot be read is the monitor's to recover
        if left_open:
            log.info("a media editor was left open by a failed send; loading the app again")
            self.start_loading()

    def find_sent(self, phone: str, *, text: str = "", after_row: str | None = None,
                  since: float | None = None, after_id: str | None = None, timeout: float = 20.0) -> str | None:
        """The id of an outgoing message in the chat with ``phone`` that an earlier attempt
        may have sent, carrying ``text`` (the text, or the caption of a media message);
        None when there is none.

        Anchors, each used when known: ``after_row`` and ``after_id`` (message ids: only
        rows newer than the newest of them count), ``since`` (epoch seconds, less
        SEND_CLOCK_SKEW: only messages the page dates from then on count; the page's
        collection dates them to the second, a row's stamp on the DOM route to the minute,
        so there a row counts when its minute is not before the anchor's; a row whose stamp
        does not read is not filtered by time). Works in chats addressed by number or by
        LID: messages are compared by their key.
        """
        deadline = time.monotonic() + timeout
        self._prepared(lambda: self.open_chat(phone, deadline), deadline)
        rows = self._settled_rows(self.number_of(phone), deadline)
        keys = [message_key(r["id"]) for r in rows]
        anchors = [keys.index(message_key(a)) for a in (after_row, after_id) if a and message_key(a) in keys]
        if anchors:
            rows = rows[max(anchors) + 1:]
        if since is not None:
            rows = [r for r in rows if _dated_from(r, since - SEND_CLOCK_SKEW)]
        wanted = self._normalized(text)
        matches = [r["id"] for r in rows if self._normalized(r.get("text") or "") == wanted]
        return matches[-1] if matches else None

    def _prepared(self, step, deadline: float):
        """Run a preparing step, again on transient page errors (a dialog that covered a
        button meanwhile included), until the deadline."""
        retrying = Retrying(
            retry=retry_if_exception_type((TransientSendError, StaleElementReferenceException,
                                           ElementClickInterceptedException)),
            stop=stop_after_attempt(3) | stop_before_deadline(deadline),
            wait=wait_fixed(0.3), reraise=True,
        )
        return retrying(step)

    def _commit_point(self, phone: str, on_commit) -> set[str]:
        before = self.own_messages(phone) or []
        if on_commit is not None:
            on_commit(before[-1]["id"] if before else None)
        return {message_key(r["id"]) for r in before}

    def own_messages(self, phone: str) -> list[dict] | None:
        """Our messages to ``phone`` that the page holds, oldest first, as ``{id, text, t}``
        (``t``: epoch seconds, or with ``minute`` the start of the minute a row's stamp
        names; None when the page does not date it); None while the open chat is another
        one (DOM route)."""
        found = self.driver.execute_script(_OWN_MESSAGES_JS, _PAGE_ARGS, phone) or {}
        return found.get("rows")

    def _settled_rows(self, phone: str, deadline: float, quiet: float = 0.6) -> list[dict]:
        """Our messages in the chat once its history stopped loading."""
        last, stable_since = None, time.monotonic()
        while True:
            rows = self.own_messages(phone) or []
            now = time.monotonic()
            if rows != last:
                last, stable_since = rows, now
            elif now - stable_since >= quiet or now > deadline:
                return rows
            time.sleep(0.1)

    def message_status(self, wa_id: str) -> str | None:
        """The ack level of one of our messages: pending, sent, delivered, read, failed."""
        return _read_ack(self.driver.execute_script(_MESSAGE_ACK_JS, _PAGE_ARGS, wa_id))

    def _wait_sent(self, phone: str, before: set[str], deadline: float) -> str:
        def new_row():
            self._raise_on_toast()
            rows = self.own_messages(phone) or []
            return next((r["id"] for r in reversed(rows) if message_key(r["id"]) not in before), None)

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

    def _wait_for_chat(self, phone: str, deadline: float, *, registered: bool = False):
        """The composer of the chat with ``phone``, once that chat is open. Allow-listed
        dialogs on the way (a "What's new" after linking) are answered.

        Raises NumberNotOnWhatsApp on the invalid-number dialog, unless WhatsApp's existence
        query said the number is ``registered``: then that dialog, the restricted modal, or
        a compose bar without a composer (restricted or capped) raise SendRestricted
        (WHATSAPP_WEB.md section 9: "invalid" does not always mean invalid).
        """
        locked_since: list[float] = []

        def ready():
            snap = self.snapshot()
            snap_dialogs = snap.dialogs
            for dialog in snap_dialogs:
                if sel.INVALID_NUMBER_TEXT in dialog.text:
                    self.dismiss_dialogs((dialog,))
                    if registered:
                        raise SendRestricted("new_chat_link_limit")
                    raise NumberNotOnWhatsApp(f"The number {phone} is not on WhatsApp")
                if any(word in dialog.text.lower() for word in sel.RESTRICTED_DIALOG_TEXTS):
                    self.dismiss_dialogs((dialog,))
                    raise SendRestricted("reachout_timelock")
            if self.dismiss_dialogs(snap_dialogs) or any(is_screen_dialog(d) for d in snap_dialogs):
                return None  # one was answered, or a popup ("Starting chat") is still going
            number = self._chat_number()
            if number is None or (number and not same_account(number, phone)):
                return None  # another chat is still open
            box = self._first(sel.COMPOSE_BOX)
            if box is None:
                # This chat's footer holds no composer: a restricted or capped compose bar,
                # once it has stayed so for a moment (the footer is drawn with its composer).
                if self._first(sel.CHAT_FOOTER) is not None:
                    locked_since.append(time.monotonic())
                    if locked_since[-1] - locked_since[0] >= COMPOSE_LOCK_SECONDS:
                        raise SendRestricted(snap.restriction or "compose_locked")  # named by the modules if they can
                return None
            if number:  # "" = a saved name: cannot tell
                self.recipients[phone] = f"{number}@c.us"
            return box

        return self._wait(deadline, ready, "the chat did not open")

    def _chat_number(self) -> str | None:
        head = self._first(sel.CHAT_HEADER_TITLE)
        if head is None:
            return None
        return "".join(ch for ch in (head.get_attribute("title") or head.text or "") if ch.isdigit())

    def _type(self, box, text: str) -> None:
        """Put ``text`` into a composer or caption box (a Lexical editor: writing its DOM
        does not change what is sent). The lines go in as input events, never as keys
        (ChromeDriver's send_keys refuses characters outside the BMP, most emoji): all at
        once with execCommand in the page, else line by line with CDP ``Input.insertText``
        (the route of a paste or an IME) and Shift+Enter between lines (Enter alone sends).
        Raises TransientSendError when the box does not then hold the text."""
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for insert in (self._insert_in_page, self._insert_over_cdp):
            self._clear(box)
            insert(box, lines)
            if self._normalized(box.text) == self._normalized(text):
                return
        raise TransientSendError("the composer does not hold the text")

    def _clear(self, box) -> None:
        self.driver.execute_script("arguments[0].focus()", box)
        if box.text:
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.BACKSPACE)

    def _insert_in_page(self, box, lines: list[str]) -> None:
        try:
            self.driver.execute_script(_INSERT_LINES_JS, box, lines)
        except WebDriverException:
            pass  # checked by the caller, which then tries CDP

    def _insert_over_cdp(self, box, lines: list[str]) -> None:
        for i, line in enumerate(lines):
            if i:
                box.send_keys(Keys.SHIFT, Keys.ENTER)
            if line:
                self.driver.execute_cdp_cmd("Input.insertText", {"text": line})

    def _first(self, alternatives):
        return self.driver.execute_script(_FIRST_JS, list(alternatives))

    @staticmethod
    def _normalized(text: str) -> str:
        """Text as compared with what the page shows: whitespace collapsed and invisible
        format characters (direction marks, joiners: Unicode category Cf) left out, since
        WebDriver's visible text drops some of them."""
        visible = "".join(ch for ch in (text or "") if unicodedata.category(ch) != "Cf")
        return " ".join(visible.split())

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
