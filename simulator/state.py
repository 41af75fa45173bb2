"""In-memory model of the simulated WhatsApp network, phones and browser connections.

Everything lives in one :class:`SimState` guarded by one lock. Time-driven changes (QR rotation,
pairing code re-issue, end of the history sync, acks, and in the 2026 profile the onboarding
dialog, its revocation and the scheduled reload) are evaluated lazily from timestamps each time
the state is touched, so no background threads are needed.

The records are in :mod:`simulator.model`, LIDs / titles / browser checks in
:mod:`simulator.addressing`, and what only the 2026 profile does (whole screens, socket state,
onboarding, self reloads, counters) in :mod:`simulator.modern`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from typing import Any, Iterable

from .addressing import boot_stages, format_title, lid_for, lid_fraction, lid_wid, pn_wid, resolve_locale, \
    split_wid, ua_refused
from .config import SimConfig
from .model import (ACK_NAMES, LOGGED_IN_STATES, MSG_ID_RE, PAIR_ALPHABET, STALE_AFTER, Connection, Device,
                    Message, PairCode, QrCode, SimError, as_int, b64, iso, normalize_phone, qr_matrix,
                    size_limit_text)
from .modern import LOAD_CAUSES, ModernMixin

INCOMING_TYPES = ("chat", "image", "document")
# A 1x1 transparent PNG and a minimal PDF: what an incoming image or document holds.
_PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                         "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
INCOMING_MEDIA_DEFAULTS = {
    "image": ("photo.png", "image/png", _PNG_1PX),
    "document": ("document.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n"),
}

__all__ = ["SimState", "SimError", "normalize_phone", "size_limit_text", "iso", "ACK_NAMES", "STALE_AFTER",
           "Connection", "Device", "Message", "QrCode", "PairCode"]

QR_PLATFORM = "WEB"  # 5th field of the 2026 QR payload [unverified value]


def qr_key(payload: str) -> str:
    """The part of a QR payload that identifies it: ref and the three keys (the platform is extra)."""
    return ",".join(payload.split(",")[:4])


class SimState(ModernMixin):
    """The whole simulated world. All public methods take the lock."""

    def __init__(self, config: SimConfig):
        self.lock = threading.RLock()
        self.initial_config = config
        self.config = config
        self.lid_phone: dict[str, str] = {}  # LID -> phone, filled as LIDs are handed out (never cleared)
        self._clear()
        self._load()

    # ------------------------------------------------------------------ basics
    def _clear(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.devices: dict[str, Device] = {}
        self.device_counter: dict[str, int] = {}
        self.messages: list[Message] = []
        self.messages_by_id: dict[str, Message] = {}
        self.media_blobs: dict[str, bytes] = {}
        self.lid_peers: set[str] = set()  # numbers made LID senders by /sim/control/incoming
        self.new_chats_opened: dict[str, set[str]] = {}  # own number -> new chats it opened (link_limit)
        self.chats: dict[str, dict[str, dict[str, Any]]] = {}
        self.chats_v: dict[str, int] = {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.seq = 0
        self.offline_all: str | None = None
        self.offline_phones: dict[str, str] = {}
        self.offline_tokens: dict[str, str] = {}
        self.config_gen = 0
        self._clear_modern()

    def now(self) -> float:
        return time.time()

    def reset(self, keep_config: bool = False) -> None:
        with self.lock:
            for conn in self.connections.values():
                if conn.closed_at is None:
                    conn.closed_at = self.now()
            self._clear()
            if not keep_config:
                self.config = self.initial_config
            self._save()

    def get_config(self) -> dict[str, Any]:
        with self.lock:
            return self.config.to_dict()

    def set_config(self, values: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._tick(self.now())
            try:
                self.config = self.config.updated(values)
            except ValueError as exc:
                raise SimError(400, "bad_config", str(exc)) from None
            self.config_gen += 1
            return self.config.to_dict()

    def is_registered(self, phone: str | None) -> bool:
        return phone is not None and phone not in self.config.unregistered

    # ------------------------------------------------------------ addressing
    def _lid(self, phone: str) -> str:
        lid = lid_for(phone)
        self.lid_phone[lid] = phone
        return lid

    def _uses_lid(self, phone: str, profile: str) -> bool:
        """Is the chat with ``phone`` keyed by its LID for a page of ``profile``?"""
        cfg = self.config
        if profile != "2026" or not self.is_registered(phone) or phone in cfg.pn_numbers:
            return False
        return phone in cfg.lid_numbers or phone in self.lid_peers or lid_fraction(phone) < cfg.lid_share

    def _chat_wid(self, phone: str, profile: str) -> str:
        return lid_wid(self._lid(phone)) if self._uses_lid(phone, profile) else pn_wid(phone)

    def _peer(self, raw: Any, *, strict: bool = True) -> str | None:
        """Phone digits of a chat given as digits ("+" and spaces allowed), a c.us wid or a known LID wid,
        as the account WhatsApp knows (``account_number``)."""
        wid = split_wid(raw)
        if wid is not None:
            user, server = wid
            if server == "lid":
                return self.lid_phone.get(user)
            return self.account_number(normalize_phone(user, strict=True))
        return self.account_number(normalize_phone(raw, strict=strict))

    def account_number(self, phone: str | None) -> str | None:
        """The number of the account a dialled number reaches, as the existence query answers it:
        a Mexican mobile dialled with the old "1" after 52 is the account without it
        (code-chat-br/whatsapp-api#107, evolution-api#447); a Brazilian mobile is the account
        with the ninth digit, unless its 8-digit form is in ``legacy_br_numbers`` (older accounts:
        wwebjs/whatsapp-web.js#596, devlikeapro/waha#238, wppconnect-team/wa-js PR #3216)."""
        if phone is None:
            return None
        if len(phone) == 13 and phone.startswith("521"):
            return "52" + phone[3:]
        if phone.startswith("55") and len(phone) in (12, 13):
            area, rest = phone[2:4], phone[4:]
            short = rest[1:] if len(rest) == 9 and rest[0] == "9" else rest
            if len(short) == 8 and short[0] in "6789":
                legacy = f"55{area}{short}"
                return legacy if legacy in self.config.legacy_br_numbers else f"55{area}9{short}"
        return phone

    def _chat_head(self, phone: str, profile: str) -> dict[str, Any]:
        """id / wid / phone / lid / title of a chat, as a page of ``profile`` shows it."""
        if profile != "2026":
            return {"id": pn_wid(phone), "wid": pn_wid(phone), "phone": phone, "lid": None, "title": f"+{phone}"}
        lid = self._lid(phone) if self._uses_lid(phone, profile) else None
        wid = lid_wid(lid) if lid else pn_wid(phone)
        return {"id": wid, "wid": wid, "phone": phone, "lid": lid, "title": format_title(phone)}

    def _me(self, conn: Connection) -> dict[str, Any] | None:
        if not conn.phone or conn.logged_out or conn.state not in LOGGED_IN_STATES:
            return None
        return {"pn": conn.phone, "lid": self._lid(conn.phone) if conn.profile == "2026" else None}

    # ------------------------------------------------------------- persistence
    def _load(self) -> None:
        path = self.config.state_file
        if not path or not os.path.exists(path):
            return
        try:
            with open(path, "r", encoding="utf-8") as fh:
                data = json.load(fh)
            for item in data.get("devices", []):
                dev = Device.from_json(item)
                self.devices[dev.token] = dev
            self.device_counter = {k: int(v) for k, v in data.get("device_counter", {}).items()}
        except (OSError, ValueError, TypeError):
            pass  # a broken state file means: start empty

    def _save(self) -> None:
        path = self.config.state_file
        if not path:
            return
        data = {
            "devices": [d.to_json() for d in self.devices.values()],
            "device_counter": self.device_counter,
        }
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, path)
        except OSError:
            pass

    # ------------------------------------------------------------------ ticking
    def _offline_kind(self, token: str | None, phone: str | None) -> str | None:
        if token and token in self.offline_tokens:
            return self.offline_tokens[token]
        if phone and phone in self.offline_phones:
            return self.offline_phones[phone]
        return self.offline_all

    def _tick(self, now: float) -> None:
        for conn in self.connections.values():
            if conn.closed_at is None:
                self._tick_conn(conn, now)
        self._tick_devices(now)
        self._flush_pending(now)
        for conn in self.connections.values():
            if conn.closed_at is None:
                self._note_screen(conn, now)

    def _tick_conn(self, conn: Connection, now: float) -> None:
        cfg = self.config
        if conn.mode == "qr" and conn.state == "UNPAIRED":
            while conn.qr is not None and now >= conn.qr.expires_at:
                old = conn.qr
                old.ended_at, old.end_reason = old.expires_at, "expired"
                conn.qr = None
                if conn.qr_in_series < cfg.qr_count:
                    self._new_qr(conn, old.expires_at)
                else:
                    conn.state = "UNPAIRED_IDLE"
                conn.rev += 1
        if conn.mode == "code" and conn.pair is not None:
            while now >= conn.pair.expires_at:
                old = conn.pair
                old.ended_at, old.end_reason = old.expires_at, "expired"
                self._new_pair_code(conn, old.phone, old.expires_at)
        if conn.state == "PAIRING" and conn.sync_until is not None and now >= conn.sync_until:
            # 2026: the sync needs the connection; offline it waits behind "Connecting to WhatsApp"
            if conn.profile != "2026" or not self._offline_kind(conn.token, conn.phone):
                conn.state = "CONNECTED"
                conn.rev += 1
        if conn.state in ("CONNECTED", "TIMEOUT", "CONFLICT"):
            if conn.conflict:
                new_state = "CONFLICT"
            elif self._offline_kind(conn.token, conn.phone):
                new_state = "TIMEOUT"
            else:
                new_state = "CONNECTED"
            if new_state != conn.state:
                conn.state = new_state
                conn.rev += 1
        if conn.state == "CONNECTED" and conn.main_at is None and conn.token and not conn.logged_out:
            conn.main_at = now

    def _flush_pending(self, now: float) -> None:
        for msg in self.messages:
            if msg.from_me and msg.server_at is None and not self._offline_kind(msg.token, msg.own):
                self._accept(msg, now)

    def _accept(self, msg: Message, now: float) -> None:
        cfg = self.config
        msg.server_at = now
        msg.delivered_at = now + cfg.deliver_delay if cfg.deliver_delay >= 0 else None
        if msg.delivered_at is not None and cfg.read_delay >= 0:
            msg.read_at = msg.delivered_at + cfg.read_delay
        else:
            msg.read_at = None
        self._bump_chat(msg.own, msg.peer, msg.server_at, unread=False, msg_id=msg.id)

    # --------------------------------------------------------------- QR / codes
    def _new_qr(self, conn: Connection, start: float) -> None:
        cfg = self.config
        ttl = cfg.qr_first_ttl if conn.qr_in_series == 0 else cfg.qr_ttl
        conn.qr_in_series += 1
        conn.qr_serial += 1
        ref = "2@" + b64(48)
        fields = [ref, conn.noise_key, conn.identity_key, conn.adv_secret]
        if conn.profile == "2026":
            fields.append(QR_PLATFORM)
        payload = ",".join(fields)
        qr = QrCode(conn.qr_serial, ref, payload, start, start + ttl, qr_matrix(payload))
        conn.qr = qr
        conn.payloads.append(qr)
        conn.rev += 1

    def _start_series(self, conn: Connection, now: float) -> None:
        self._end_qr(conn, now, "reload")
        self._end_pair(conn, now, "mode")
        conn.mode = "qr"
        conn.state = "UNPAIRED"
        conn.qr_in_series = 0
        self._new_qr(conn, now)

    def _end_qr(self, conn: Connection, now: float, reason: str) -> None:
        if conn.qr is not None:
            conn.qr.ended_at, conn.qr.end_reason = now, reason
            conn.qr = None
            conn.rev += 1

    def _end_pair(self, conn: Connection, now: float, reason: str) -> None:
        if conn.pair is not None:
            conn.pair.ended_at, conn.pair.end_reason = now, reason
            conn.pair = None
            conn.rev += 1

    def _new_pair_code(self, conn: Connection, phone: str, start: float) -> None:
        code = "".join(secrets.choice(PAIR_ALPHABET) for _ in range(8))
        pc = PairCode(code, phone, start, start + self.config.pair_code_ttl)
        conn.pair = pc
        conn.pair_codes.append(pc)
        conn.rev += 1

    # -------------------------------------------------------------- page side
    def _conn(self, cid: Any) -> Connection:
        conn = self.connections.get(str(cid)) if cid else None
        if conn is None or conn.closed_at is not None:
            raise SimError(404, "unknown_connection", "unknown or closed connection")
        conn.last_seen = self.now()
        return conn

    def page_config(self, user_agent: str, accept_language: str | None) -> dict[str, Any]:
        """What the page needs before it connects (rendered into the HTML as ``page_config``)."""
        with self.lock:
            cfg = self.config
            modern = cfg.profile == "2026"
            refused = modern and cfg.ua_gate and ua_refused(user_agent, cfg.min_chrome)
            return {
                "profile": cfg.profile,
                "locale": resolve_locale(cfg.locale, None, accept_language) if modern else "en",
                "boot_seconds": cfg.boot_seconds if modern else 0.0,
                "boot_stages": boot_stages(cfg.boot_seconds if modern else 0.0),
                "version": cfg.version,
                "modules": cfg.modules,
                "open_chat_args": cfg.open_chat_args,
                "page_heap_mb": cfg.page_heap_mb,
                "cookie_banner": cfg.cookie_banner,
                "poll_ms": cfg.poll_ms,
                "unsupported": {"min_chrome": cfg.min_chrome} if refused else None,
            }

    def connect(self, token: str | None, path: str, user_agent: str, *, load_cause: Any = None,
                language: Any = None, accept_language: str | None = None) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._tick(now)
            cfg = self.config
            profile = cfg.profile
            conn = Connection(
                cid=secrets.token_hex(8), created=now, user_agent=user_agent[:300], path=path[:500],
                noise_key=b64(32), identity_key=b64(32), adv_secret=b64(32), last_seen=now,
                profile=profile,
                locale=resolve_locale(cfg.locale, language, accept_language) if profile == "2026" else "en",
                load_cause=load_cause if load_cause in LOAD_CAUSES else "navigation",
            )
            self.connections[conn.cid] = conn
            status = "none"
            if token:
                dev = self.devices.get(token)
                if dev is None:
                    status = "unknown"
                elif dev.revoked_at is not None:
                    status = "revoked"
                else:
                    status = "valid"
            self._count_load(conn, now)
            if profile == "2026" and cfg.ua_gate and ua_refused(user_agent, cfg.min_chrome):
                # no app at all: no QR, no login (the stored login stays in the browser)
                conn.unsupported = True
                conn.unsupported_min_chrome = cfg.min_chrome
                conn.mode = "unsupported"
                conn.state = "UNPAIRED"
            elif status == "valid":
                dev = self.devices[token]
                conn.token, conn.phone, conn.wid = dev.token, dev.phone, dev.wid
                self._load_to_device(conn)
                conn.mode = "app"
                conn.state = "CONNECTED"
                # the newest window wins; older windows of the same login get the conflict
                # (legacy: the modal; 2026: the ANOTHER_SESSION screen)
                for other in self.connections.values():
                    if (other is not conn and other.token == token and other.alive(now)
                            and other.state in ("CONNECTED", "TIMEOUT")):
                        other.conflict = True
                        other.conflict_kind = "window"
                        other.rev += 1
                self._tick_conn(conn, now)
            else:
                self._start_series(conn, now)
            self._tick(now)
            snap = self._snapshot(conn, now, since=self.seq, qr_serial=-1, chats_v=None, watch=[])
            snap["token_status"] = status
            return snap

    def poll(self, cid: Any, since: Any, qr_serial: Any, chats_v: Any, watch: Any) -> dict[str, Any]:
        with self.lock:
            conn = self._conn(cid)
            now = self.now()
            self._tick(now)
            return self._snapshot(conn, now, since=as_int(since, self.seq), qr_serial=as_int(qr_serial, -1),
                                  chats_v=str(chats_v), watch=watch if isinstance(watch, list) else [])

    def _snapshot(self, conn: Connection, now: float, *, since: int, qr_serial: int, chats_v: Any,
                  watch: Iterable[Any]) -> dict[str, Any]:
        cfg = self.config
        screen, screen_info = self._screen(conn, now)
        snap: dict[str, Any] = {
            "cid": conn.cid,
            "rev": conn.rev,
            "state": conn.state,
            "mode": conn.mode,
            "logged_out": conn.logged_out,
            "poll_ms": cfg.poll_ms,
            "limits": {"media_max_mb": cfg.media_max_mb, "doc_max_mb": cfg.doc_max_mb},
            "seq": self.seq,
            "events": [],
            "acks": {},
            "qr": None,
            "idle_payload": conn.last_payload() if conn.state == "UNPAIRED_IDLE" else None,
            "pair": None,
            "pair_phone": conn.pair_phone,
            "login": None,
            "offline": None,
            "chats_v": None,
            "chats": None,
            # page profile (both profiles carry these; the legacy page ignores them)
            "profile": conn.profile,
            "locale": conn.locale,
            "version": cfg.version,
            "boot_seconds": cfg.boot_seconds,
            "page_heap_mb": cfg.page_heap_mb,
            "modules": cfg.modules,
            "open_chat_args": cfg.open_chat_args,
            "cookie_banner": cfg.cookie_banner,
            "screen": screen,
            "screen_info": screen_info,
            "socket_state": self._socket_state(conn, screen),
            "onboarding": {"show": True} if self._onboarding_shows(conn, screen) else None,
            "reload": dict(conn.reload) if conn.reload else None,
            "me": self._me(conn),
            "logout_reason": self._logout_reason(conn),
            "restriction": self._restriction(conn),
        }
        if conn.qr is not None:
            qr = {"serial": conn.qr.serial, "payload": conn.qr.payload,
                  "expires_in": max(0.0, conn.qr.expires_at - now)}
            if conn.qr.serial != qr_serial:
                qr["matrix"] = conn.qr.matrix
            snap["qr"] = qr
        if conn.pair is not None:
            snap["pair"] = {"code": conn.pair.code, "phone": conn.pair.phone,
                            "expires_in": max(0.0, conn.pair.expires_at - now)}
        if conn.token and conn.state in LOGGED_IN_STATES:
            dev = self.devices.get(conn.token)
            snap["login"] = {"phone": conn.phone, "wid": conn.wid, "token": conn.token,
                             "noise_info": dev.noise_info if dev else {},
                             "lid": self._lid(conn.phone) if conn.profile == "2026" and conn.phone else None}
            if conn.state == "PAIRING" and conn.sync_until is not None:
                total = max(self.config.sync_delay, 1e-6)
                snap["sync_progress"] = min(1.0, max(0.0, 1 - (conn.sync_until - now) / total))
        if conn.phone and conn.state in ("CONNECTED", "TIMEOUT", "CONFLICT"):
            snap["offline"] = self._offline_kind(conn.token, conn.phone)
            snap["events"] = [self._event_for(conn, ev, now) for (seq, phone, ev) in self.events
                              if seq > since and phone == conn.phone]
            if snap["offline"] is None:
                for mid in watch:
                    msg = self.messages_by_id.get(str(mid))
                    if msg is not None and msg.own == conn.phone and msg.from_me:
                        snap["acks"][msg.id] = msg.ack(now)
            version = self._chats_version(conn.phone, now)
            snap["chats_v"] = version
            if version != chats_v:
                snap["chats"] = self._chat_list(conn.phone, now, conn.profile)
        return snap

    def _event_for(self, conn: Connection, event: dict[str, Any], now: float) -> dict[str, Any]:
        """An event as this page sees it (message ids in the chat's address form for its profile)."""
        if event.get("type") != "message":
            return dict(event)
        msg = self.messages_by_id.get(event["msg_id"])
        head = self._chat_head(event["chat"], conn.profile)
        shown = msg.for_page(now, head["wid"]) if msg else None
        quoted = self.messages_by_id.get(msg.quoted_id) if msg and msg.quoted_id else None
        if shown is not None and quoted is not None:
            shown["quoted"] = {"id": quoted.id, "from_me": quoted.from_me, "type": quoted.type,
                               "body": quoted.text if quoted.text is not None else quoted.caption}
        return {"type": "message", "chat": event["chat"], "wid": head["wid"], "lid": head["lid"],
                "title": head["title"], "msg": shown}

    def disconnect(self, cid: Any) -> None:
        with self.lock:
            conn = self.connections.get(str(cid)) if cid else None
            if conn is not None and conn.closed_at is None:
                now = self.now()
                conn.closed_at = now
                self._end_qr(conn, now, "closed")
                self._end_pair(conn, now, "closed")

    def _unpaired_conn(self, cid: Any) -> tuple[Connection, float]:
        """A connection still on the login screen (QR or phone number), brought up to date."""
        conn = self._conn(cid)
        now = self.now()
        self._tick_conn(conn, now)
        if conn.unsupported:
            raise SimError(409, "unsupported_browser", "this browser was refused (UNSUPPORTED_BROWSER)")
        if conn.state not in ("UNPAIRED", "UNPAIRED_IDLE"):
            raise SimError(409, "bad_state", f"connection is {conn.state}")
        return conn, now

    def reload_qr(self, cid: Any) -> dict[str, Any]:
        with self.lock:
            conn, now = self._unpaired_conn(cid)
            self._start_series(conn, now)
            return self._snapshot(conn, now, since=self.seq, qr_serial=-1, chats_v=None, watch=[])

    def set_mode(self, cid: Any, mode: Any) -> dict[str, Any]:
        with self.lock:
            conn, now = self._unpaired_conn(cid)
            if mode == "qr":
                self._start_series(conn, now)
            elif mode == "phone":
                self._end_qr(conn, now, "mode")
                self._end_pair(conn, now, "mode")
                conn.mode = "phone_input"
                conn.state = "UNPAIRED"
                conn.rev += 1
            else:
                raise SimError(400, "bad_mode", "mode must be 'qr' or 'phone'")
            return self._snapshot(conn, now, since=self.seq, qr_serial=-1, chats_v=None, watch=[])

    def request_pair_code(self, cid: Any, phone_raw: Any) -> dict[str, Any]:
        with self.lock:
            conn, now = self._unpaired_conn(cid)
            phone = normalize_phone(phone_raw)
            if phone is None:
                raise SimError(400, "bad_phone", "Invalid phone number.")
            self._end_qr(conn, now, "mode")
            self._end_pair(conn, now, "reissued")
            conn.mode = "code"
            conn.state = "UNPAIRED"
            conn.pair_phone = phone
            self._new_pair_code(conn, phone, now)
            return self._snapshot(conn, now, since=self.seq, qr_serial=-1, chats_v=None, watch=[])

    def web_logout(self, cid: Any, source: Any = None) -> dict[str, Any]:
        """Log out pressed in the page (menu, a screen's button, or ``Socket.logout()``)."""
        with self.lock:
            now = self.now()
            known = self.connections.get(str(cid)) if cid else None
            self._count_logout_click(known, cid, source, now)
            conn = self._conn(cid)
            if conn.token:
                self._revoke([conn.token], now, "web")
            return {"ok": True}

    def takeover(self, cid: Any) -> dict[str, Any]:
        with self.lock:
            conn = self._conn(cid)
            now = self.now()
            self._tick(now)
            if not conn.token or conn.logged_out:
                raise SimError(409, "not_logged_in", "connection is not logged in")
            self._takeover(conn, now)
            return self._snapshot(conn, now, since=self.seq, qr_serial=-1, chats_v=None, watch=[])

    def _takeover(self, conn: Connection, now: float) -> None:
        conn.conflict = False
        conn.rev += 1
        for other in self.connections.values():
            if other is not conn and other.token == conn.token and other.alive(now) and \
                    other.state in ("CONNECTED", "TIMEOUT"):
                other.conflict = True
                other.conflict_kind = "window"
                other.rev += 1
        self._tick(now)

    def _logged_in_conn(self, cid: Any) -> Connection:
        conn = self._conn(cid)
        self._tick_conn(conn, self.now())
        if not conn.phone or conn.logged_out or conn.state not in ("CONNECTED", "TIMEOUT", "CONFLICT"):
            raise SimError(409, "not_logged_in", "connection is not logged in")
        return conn

    def open_chat(self, cid: Any, phone_raw: Any, wid_raw: Any = None, in_app: Any = None) -> dict[str, Any]:
        with self.lock:
            conn = self._logged_in_conn(cid)
            now = self.now()
            raw = phone_raw if phone_raw not in (None, "") else wid_raw
            phone = self._peer(raw)
            ok = phone is not None and self.is_registered(phone)
            limited = ok and self._past_link_limit(conn, phone)
            self._count_chat_open(conn, phone, raw, in_app, ok and not limited, now)
            if not ok or limited:
                return {"ok": False, "invalid": True, "phone": str(raw or "")}
            chat = self.chats.get(conn.phone, {}).get(phone)
            if chat is not None and chat["unread"]:
                self._count_chat_read(conn, phone, chat["unread"], "open", now)
                chat["unread"] = 0
                self._bump_version(conn.phone)
            head = self._chat_head(phone, conn.profile)
            return {"ok": True, "chat": {
                **head,
                "messages": [m.for_page(now, head["wid"]) for m in self._history(conn.phone, phone)],
                "restricted": self._restricted_chat(conn, phone),
            }}

    def chat_seen(self, cid: Any, phone_raw: Any, via: Any = None) -> dict[str, Any]:
        """The page marks a chat read: ``via`` "model" (its sendSeen action, the chat closed),
        else a message arrived in the open chat."""
        with self.lock:
            conn = self._logged_in_conn(cid)
            phone = self._peer(phone_raw)
            chat = self.chats.get(conn.phone, {}).get(phone or "")
            if via == "model" or (chat is not None and chat["unread"]):
                self._count_chat_read(conn, phone, chat["unread"] if chat else 0,
                                      "model" if via == "model" else "open_chat", self.now())
            if chat is not None and chat["unread"]:
                chat["unread"] = 0
                self._bump_version(conn.phone)
            return {"ok": True}

    def chat_view(self, own_raw: Any) -> dict[str, Any]:
        """GET /sim/control/chats?phone=<own>: each chat of that account and its unread count."""
        with self.lock:
            own = normalize_phone(own_raw, strict=False) if own_raw else None
            if own is None:
                raise SimError(400, "bad_phone", "phone must be the account's number")
            return {"phone": own, "chats": [{"peer": peer, "unread": chat["unread"]}
                                            for peer, chat in self.chats.get(own, {}).items()]}

    def exists(self, cid: Any, phone_raw: Any) -> dict[str, Any]:
        """``queryWidExists``: the c.us wid of a registered number (+ its LID when chats with it use
        the LID), or ``{"wid": null}``."""
        with self.lock:
            now = self.now()
            self._tick(now)
            profile = self.config.profile
            if cid:
                conn = self._conn(cid)
                profile = conn.profile
            self.exists_queries += 1
            phone = self._peer(phone_raw, strict=False)
            if phone is None or not self.is_registered(phone):
                return {"wid": None, "lid": None, "phone": phone}
            lid = self._lid(phone) if self._uses_lid(phone, profile) else None
            return {"wid": pn_wid(phone), "lid": lid, "phone": phone}

    def _check_new_message(self, conn: Connection, to_raw: Any, msg_id: Any) -> tuple[str, str]:
        to = self._peer(to_raw)
        if to is None or not self.is_registered(to):
            raise SimError(400, "invalid_number", "recipient is not a registered number")
        mid = str(msg_id or "")
        if not MSG_ID_RE.match(mid):
            raise SimError(400, "bad_id", "message id must be 8-64 letters/digits")
        self._check_not_blocked(conn)
        if self._restricted_chat(conn, to):
            # What other clients get from the server (WHATSAPP_WEB.md section 9: error 463).
            raise SimError(463, "restricted", "Your account has been restricted")
        return to, mid

    def send_text(self, cid: Any, to_raw: Any, msg_id: Any, text: Any) -> dict[str, Any]:
        with self.lock:
            conn = self._logged_in_conn(cid)
            now = self.now()
            to, mid = self._check_new_message(conn, to_raw, msg_id)
            existing = self.messages_by_id.get(mid)
            if existing is not None:  # a retry of the same message
                return {"id": mid, "ack": existing.ack(now), "serialized": existing.serialized}
            if not isinstance(text, str) or not text.strip():
                raise SimError(400, "empty", "text must be a non-empty string")
            msg = Message(id=mid, own=conn.phone, peer=to, from_me=True, type="chat", text=text,
                          caption=None, media=None, created=now, token=conn.token, cid=conn.cid,
                          wid=conn.wid, chat=self._chat_wid(to, conn.profile))
            self._store(msg, now)
            return {"id": mid, "ack": msg.ack(now), "serialized": msg.serialized}

    def send_media(self, cid: Any, to_raw: Any, msg_id: Any, kind: str, caption: Any, name: str,
                   mimetype: str, data: bytes, sticker: bool = False) -> dict[str, Any]:
        with self.lock:
            conn = self._logged_in_conn(cid)
            now = self.now()
            to, mid = self._check_new_message(conn, to_raw, msg_id)
            existing = self.messages_by_id.get(mid)
            if existing is not None:
                return {"id": mid, "ack": existing.ack(now), "serialized": existing.serialized}
            if sticker and kind == "document":
                raise SimError(400, "bad_sticker", "a sticker is sent through the sticker input, not as a document")
            if sticker and not mimetype.startswith("image/"):
                raise SimError(400, "bad_sticker", "the sticker maker takes images only")
            limit = self.config.doc_max_mb if kind == "document" else self.config.media_max_mb
            if len(data) > limit * 1024 * 1024:
                raise SimError(413, "too_large", size_limit_text(limit))
            if sticker:
                mtype = "sticker"
            elif kind == "document":
                mtype = "document"
            elif mimetype.startswith("video/"):
                mtype = "video"
            else:
                mtype = "image"
            caption_s = str(caption) if caption and not sticker else None
            msg = Message(
                id=mid, own=conn.phone, peer=to, from_me=True, type=mtype, text=None,
                caption=caption_s,
                media={"name": name, "size": len(data), "mimetype": mimetype,
                       "sha256": hashlib.sha256(data).hexdigest(), "kind": "sticker" if sticker else kind},
                created=now, token=conn.token, cid=conn.cid, wid=conn.wid, chat=self._chat_wid(to, conn.profile),
            )
            self.media_blobs[mid] = data
            self._store(msg, now)
            return {"id": mid, "ack": msg.ack(now), "serialized": msg.serialized}

    def _store(self, msg: Message, now: float) -> None:
        self.messages.append(msg)
        self.messages_by_id[msg.id] = msg
        if not self._offline_kind(msg.token, msg.own):
            self._accept(msg, now)
        else:
            self._bump_chat(msg.own, msg.peer, now, unread=False, msg_id=msg.id)

    def media(self, msg_id: str) -> tuple[bytes, str, str] | None:
        with self.lock:
            msg = self.messages_by_id.get(msg_id)
            data = self.media_blobs.get(msg_id)
            if msg is None or data is None or not msg.media:
                return None
            return data, msg.media["mimetype"], msg.media["name"]

    # ---------------------------------------------------------- restrictions
    def _restriction(self, conn: Connection) -> str | None:
        """The account's restriction on new chats (2026 profile), or None."""
        kind = self.config.restriction
        return kind if kind != "none" and conn.profile == "2026" else None

    def _restricted_chat(self, conn: Connection, peer: str) -> str | None:
        """The restriction that keeps ``conn`` from writing to ``peer``: only new chats (no
        message either way yet) are restricted [unverified: the exact rule of
        canSendMsgWhileTimelocked / canSendMsgWhileCapped]."""
        kind = self._restriction(conn)
        if kind is None or any(True for _ in self._history(conn.phone, peer)):
            return None
        return kind

    def _past_link_limit(self, conn: Connection, peer: str) -> bool:
        """Whether opening the chat with registered ``peer`` is refused with the invalid-number
        dialog: it is a new chat (no message either way yet) and the account already opened
        ``link_limit`` new chats (mukulhase/WebWhatsapp-Wrapper#1123, SaeidJavadi/Advanced-
        WhatsApp-Sender#11: the dialog for valid numbers when new chats by link are limited;
        counting per account and applying to the in-app open too is [unverified]). A new chat
        opened within the limit is counted once and stays open-able."""
        limit = self.config.link_limit
        if limit < 0 or self._history(conn.phone, peer):
            return False
        opened = self.new_chats_opened.setdefault(conn.phone, set())
        if peer in opened:
            return False
        if len(opened) >= limit:
            return True
        opened.add(peer)
        return False

    # ----------------------------------------------------------------- chats
    def _history(self, own: str, peer: str) -> list[Message]:
        return [m for m in self.messages if m.own == own and m.peer == peer]

    def _bump_version(self, own: str) -> None:
        self.chats_v[own] = self.chats_v.get(own, 0) + 1

    def _chats_version(self, own: str, now: float) -> str:
        """Changes whenever the chat list of ``own`` would render differently (incl. last acks)."""
        acks = 0
        for chat in self.chats.get(own, {}).values():
            last = self.messages_by_id.get(chat.get("last_id") or "")
            if last is not None and last.from_me:
                acks += last.ack(now)
        return f"{self.chats_v.get(own, 0)}.{acks}.{self.config_gen}"

    def _bump_chat(self, own: str, peer: str, ts: float, *, unread: bool, msg_id: str | None = None) -> None:
        chat = self.chats.setdefault(own, {}).setdefault(peer, {"unread": 0, "last_t": ts, "last_id": None})
        chat["last_t"] = max(chat["last_t"], ts)
        if msg_id is not None:
            chat["last_id"] = msg_id
        if unread:
            chat["unread"] += 1
        self._bump_version(own)

    def _chat_list(self, own: str, now: float, profile: str = "legacy") -> list[dict[str, Any]]:
        out = []
        for peer, chat in self.chats.get(own, {}).items():
            head = self._chat_head(peer, profile)
            hist = self._history(own, peer)
            last = hist[-1].for_page(now, head["wid"]) if hist else None
            out.append({**head, "unread": chat["unread"], "t": chat["last_t"], "last": last})
        out.sort(key=lambda c: c["t"], reverse=True)
        return out

    def _emit(self, phone: str, event: dict[str, Any]) -> None:
        self.seq += 1
        self.events.append((self.seq, phone, event))
        if len(self.events) > 2000:
            del self.events[:1000]

    # ------------------------------------------------------------ phone side
    def _link(self, conn: Connection, phone: str, via: str, now: float) -> Device:
        n = self.device_counter.get(phone, 0) + 1
        self.device_counter[phone] = n
        token = secrets.token_urlsafe(24)
        noise_info = {
            "v": 1,
            "staticKeyPair": {"pubKey": conn.noise_key, "privKey": b64(32)},
            "recoveryToken": b64(24),
        }
        modern = conn.profile == "2026"
        dev = Device(token=token, phone=phone, device=n, wid=f"{phone}:{n}@c.us", created=now,
                     via=via, noise_info=noise_info, profile=conn.profile,
                     lid=self._lid(phone) if modern else None,
                     onboarding="pending" if modern and self.config.onboarding else None)
        self.devices[token] = dev
        self._end_qr(conn, now, "scanned")
        self._end_pair(conn, now, "used")
        conn.token, conn.phone, conn.wid = dev.token, phone, dev.wid
        conn.mode = "app"
        conn.state = "PAIRING"
        conn.sync_until = now + self.config.sync_delay
        conn.rev += 1
        self._load_to_device(conn)
        self._tick_conn(conn, now)
        self._save()
        return dev

    def _own_phone(self, raw: Any) -> str:
        phone = normalize_phone(raw)
        if phone is None:
            raise SimError(400, "bad_phone", "phone must be a phone number (7-15 digits)")
        if not self.is_registered(phone):
            raise SimError(403, "unregistered_phone", "that phone number is not registered on WhatsApp")
        return phone

    def phone_scan(self, payload: Any, phone_raw: Any) -> dict[str, Any]:
        """The phone scans a QR payload: 4 fields (ref,noise,identity,adv) or 5 (+ platform)."""
        with self.lock:
            now = self.now()
            self._tick(now)
            if not isinstance(payload, str) or not payload:
                raise SimError(400, "bad_payload", "payload must be the QR string")
            phone = self._own_phone(phone_raw)
            key = qr_key(payload.strip())
            for conn in self.connections.values():
                if conn.qr is not None and qr_key(conn.qr.payload) == key:
                    if not conn.alive(now):
                        raise SimError(410, "page_gone", "the page showing this QR code is gone")
                    dev = self._link(conn, phone, "qr", now)
                    return {"ok": True, "cid": conn.cid, "wid": dev.wid, "token": dev.token}
            for conn in self.connections.values():
                if any(qr_key(q.payload) == key for q in conn.payloads):
                    raise SimError(410, "qr_expired", "this QR code is no longer on screen "
                                                      "(expired, replaced or already used)")
            raise SimError(404, "unknown_qr", "no page ever showed this QR payload")

    def phone_pair(self, code_raw: Any, phone_raw: Any) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._tick(now)
            code = re.sub(r"[\s\-]", "", str(code_raw or "")).upper()
            if len(code) != 8:
                raise SimError(400, "bad_code", "code must have 8 characters (ABCD-EFGH)")
            phone = self._own_phone(phone_raw)
            for conn in self.connections.values():
                if conn.pair is not None and conn.pair.code == code:
                    if not conn.alive(now):
                        raise SimError(410, "page_gone", "the page showing this code is gone")
                    if conn.pair.phone != phone:
                        raise SimError(403, "phone_mismatch",
                                       "the code was requested for another phone number")
                    dev = self._link(conn, phone, "pair_code", now)
                    return {"ok": True, "cid": conn.cid, "wid": dev.wid, "token": dev.token}
            for conn in self.connections.values():
                if any(p.code == code for p in conn.pair_codes):
                    raise SimError(410, "code_expired", "this code is no longer on screen")
            raise SimError(404, "unknown_code", "no page showed this code")

    def _revoke(self, tokens: Iterable[str], now: float, reason: str) -> list[str]:
        done = []
        for token in tokens:
            dev = self.devices.get(token)
            if dev is None or dev.revoked_at is not None:
                continue
            dev.revoked_at, dev.revoke_reason = now, reason
            done.append(token)
            for conn in self.connections.values():
                if conn.token == token and not conn.logged_out:
                    conn.logged_out = True
                    conn.mode = "logged_out"
                    conn.state = "UNPAIRED"
                    conn.rev += 1
        if done:
            self._save()
        return done

    def phone_logout(self, phone_raw: Any = None, token: Any = None) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._tick(now)
            if token:
                if str(token) not in self.devices:
                    raise SimError(404, "unknown_token", "no such device token")
                tokens = [str(token)]
            elif phone_raw:
                phone = normalize_phone(phone_raw)
                if phone is None:
                    raise SimError(400, "bad_phone", "phone must be a phone number")
                tokens = [t for t, d in self.devices.items() if d.phone == phone and d.revoked_at is None]
            else:
                raise SimError(400, "missing", "give phone or token")
            return {"ok": True, "revoked": self._revoke(tokens, now, "phone")}

    # ---------------------------------------------------------- control side
    def _select_conns(self, body: dict[str, Any], now: float, *, logged_in: bool = True) -> list[Connection]:
        cid, token, phone = body.get("cid"), body.get("token"), body.get("phone")
        phone_n = normalize_phone(phone) if phone else None
        out = []
        for conn in self.connections.values():
            if not conn.alive(now):
                continue
            if logged_in and (not conn.token or conn.logged_out):
                continue
            if cid and conn.cid != cid:
                continue
            if token and conn.token != token:
                continue
            if phone and conn.phone != phone_n:
                continue
            out.append(conn)
        return out

    def conflict(self, body: dict[str, Any]) -> dict[str, Any]:
        """Another computer (kind "computer", default) or another window of this browser ("window")
        takes the session over."""
        with self.lock:
            now = self.now()
            self._tick(now)
            kind = body.get("kind", "computer")
            if kind not in ("computer", "window"):
                raise SimError(400, "bad_kind", "kind must be 'computer' or 'window'")
            conns = [c for c in self._select_conns(body, now) if c.state in ("CONNECTED", "TIMEOUT")]
            for conn in conns:
                conn.conflict = True
                conn.conflict_kind = kind
                conn.rev += 1
            self._tick(now)
            return {"ok": True, "cids": [c.cid for c in conns]}

    def set_connection(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            online = body.get("online")
            if not isinstance(online, bool):
                raise SimError(400, "missing", "online must be true or false")
            kind = body.get("kind", "phone")
            if kind not in ("phone", "computer"):
                raise SimError(400, "bad_kind", "kind must be 'phone' or 'computer'")
            token, phone_raw = body.get("token"), body.get("phone")
            phone = normalize_phone(phone_raw) if phone_raw else None
            if phone_raw and phone is None:
                raise SimError(400, "bad_phone", "phone must be a phone number")
            self._tick(now)
            if online:
                if token:
                    self.offline_tokens.pop(str(token), None)
                elif phone:
                    self.offline_phones.pop(phone, None)
                else:
                    self.offline_all = None
                    self.offline_phones.clear()
                    self.offline_tokens.clear()
            else:
                if token:
                    self.offline_tokens[str(token)] = kind
                elif phone:
                    self.offline_phones[phone] = kind
                else:
                    self.offline_all = kind
            self._tick(now)
            return {"ok": True, "offline": self._offline_view()}

    def _offline_view(self) -> dict[str, Any]:
        return {"all": self.offline_all, "phones": dict(self.offline_phones),
                "tokens": dict(self.offline_tokens)}

    def incoming(self, body: dict[str, Any]) -> dict[str, Any]:
        """The phone ``from`` sends a message to the linked account(s): a text (``type``
        chat), an image or a document (``media`` {name, mimetype, size}, ``text`` its
        caption), optionally quoting an earlier message of the chat (``quote``: its id), from
        a sender whose chat is keyed by its LID on 2026 pages (``lid: true``)."""
        with self.lock:
            now = self.now()
            self._tick(now)
            sender = normalize_phone(body.get("from"))
            if sender is None or not self.is_registered(sender):
                raise SimError(400, "bad_from", "from must be a registered phone number")
            kind = {"text": "chat"}.get(body.get("type") or "chat", body.get("type") or "chat")
            if kind not in INCOMING_TYPES:
                raise SimError(400, "bad_type", "type must be text (chat), image or document")
            text = body.get("text")
            if kind == "chat" and (not isinstance(text, str) or not text):
                raise SimError(400, "bad_text", "text must be a non-empty string")
            if text is not None and not isinstance(text, str):
                raise SimError(400, "bad_text", "text (a caption for media) must be a string")
            media, blob = self._incoming_media(kind, body.get("media"))
            if body.get("to"):
                to = normalize_phone(body.get("to"))
                if to is None:
                    raise SimError(400, "bad_to", "to must be a phone number")
                targets = [to]
            else:
                targets = sorted({c.phone for c in self.connections.values()
                                  if c.alive(now) and c.phone and not c.logged_out})
                if not targets:
                    raise SimError(409, "nobody", "no logged-in page; give 'to'")
            quote = body.get("quote")
            if quote is not None:
                quoted = self.messages_by_id.get(str(quote))
                if quoted is None or quoted.peer != sender or quoted.own not in targets:
                    raise SimError(400, "bad_quote", "quote must be the id of a message of this chat")
            if body.get("lid") is True:
                self.lid_peers.add(sender)
            mid = str(body.get("id") or ("3A" + secrets.token_hex(9).upper()))
            if not MSG_ID_RE.match(mid):
                raise SimError(400, "bad_id", "id must be 8-64 letters/digits")
            ids = []
            for i, own in enumerate(targets):
                this_id = mid if i == 0 else f"{mid}{i}"
                if this_id in self.messages_by_id:
                    raise SimError(409, "duplicate_id", "message id already used")
                caption = text if kind != "chat" else None
                msg = Message(id=this_id, own=own, peer=sender, from_me=False, type=kind,
                              text=text if kind == "chat" else None, caption=caption, media=media, created=now,
                              server_at=now, chat=self._chat_wid(sender, self._profile_of(own)),
                              quoted_id=str(quote) if quote is not None else None)
                self.messages.append(msg)
                self.messages_by_id[this_id] = msg
                if blob is not None:
                    self.media_blobs[this_id] = blob
                self._bump_chat(own, sender, now, unread=True, msg_id=this_id)
                self._emit(own, {"type": "message", "chat": sender, "msg_id": this_id})
                ids.append({"id": this_id, "to": own, "serialized": msg.serialized, "chat": msg.chat_wid})
            return {"ok": True, "messages": ids}

    @staticmethod
    def _incoming_media(kind: str, raw: Any) -> tuple[dict[str, Any] | None, bytes | None]:
        """The media record and bytes of an incoming image or document: a 1x1 PNG (or a
        small PDF) padded to the ``size`` asked for (at most 2 MiB kept)."""
        if kind == "chat":
            return None, None
        raw = raw if isinstance(raw, dict) else {}
        default_name, default_type, head = INCOMING_MEDIA_DEFAULTS[kind]
        name, mimetype = raw.get("name") or default_name, raw.get("mimetype") or default_type
        size = raw.get("size", len(head))
        if not isinstance(name, str) or not isinstance(mimetype, str) or "/" not in mimetype:
            raise SimError(400, "bad_media", "media needs a name and a mimetype")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise SimError(400, "bad_media", "media size must be a positive number of bytes")
        blob = head + b"\0" * max(0, min(size, 2 * 1024 * 1024) - len(head))
        return {"name": name, "mimetype": mimetype, "size": size, "kind": kind,
                "sha256": hashlib.sha256(blob).hexdigest()}, blob

    def _profile_of(self, own: str) -> str:
        """The profile of the newest live page of ``own`` (else the configured one)."""
        pages = [c for c in self.connections.values() if c.phone == own and c.closed_at is None and not c.logged_out]
        if pages:
            return max(pages, key=lambda c: c.created).profile
        return self.config.profile

    def force_ack(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._tick(now)
            ack = body.get("ack", "read")
            level = {"delivered": 2, "read": 3, 2: 2, 3: 3, "2": 2, "3": 3}.get(ack)
            if level is None:
                raise SimError(400, "bad_ack", "ack must be 'delivered' or 'read' (2 or 3)")
            mid, to_raw = body.get("id"), body.get("to")
            to = self._peer(to_raw, strict=False) if to_raw else None
            changed = []
            for msg in self.messages:
                if not msg.from_me or msg.server_at is None:
                    continue
                if mid and msg.id != mid:
                    continue
                if to_raw and msg.peer != to:
                    continue
                if msg.ack(now) >= level:
                    continue
                if msg.delivered_at is None or msg.delivered_at > now:
                    msg.delivered_at = now
                if level == 3:
                    msg.read_at = now
                changed.append(msg.id)
            return {"ok": True, "changed": changed}

    def message_log(self, *, to: Any = None, include_all: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            now = self.now()
            self._tick(now)
            to_n = self._peer(to, strict=False) if to else None
            out = []
            for msg in self.messages:
                if not include_all and (not msg.from_me or msg.server_at is None):
                    continue
                if to and (msg.peer if msg.from_me else msg.own) != to_n:
                    continue
                out.append(msg.public(now))
            return out

    def snapshot_state(self) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._tick(now)
            conns = []
            on_screen = []
            for conn in self.connections.values():
                screen, screen_info = self._screen(conn, now)
                dev = self.devices.get(conn.token) if conn.token else None
                item = {
                    "cid": conn.cid,
                    "state": conn.state,
                    "mode": conn.mode,
                    "alive": conn.alive(now),
                    "closed": conn.closed_at is not None,
                    "created": iso(conn.created),
                    "last_seen": iso(conn.last_seen),
                    "path": conn.path,
                    "user_agent": conn.user_agent,
                    "payload": conn.qr.payload if conn.qr else None,
                    "qr_expires_in": max(0.0, conn.qr.expires_at - now) if conn.qr else None,
                    "payloads": [q.public() for q in conn.payloads],
                    "pair_code": conn.pair.public() if conn.pair else None,
                    "pair_codes": [p.public() for p in conn.pair_codes],
                    "phone": conn.phone,
                    "wid": conn.wid,
                    "token": conn.token,
                    "conflict": conn.conflict,
                    "logged_out": conn.logged_out,
                    "offline": self._offline_kind(conn.token, conn.phone) if conn.phone else None,
                    "profile": conn.profile,
                    "locale": conn.locale,
                    "load_cause": conn.load_cause,
                    "screen": screen,
                    "screen_info": screen_info,
                    "socket_state": self._socket_state(conn, screen),
                    "conflict_kind": conn.conflict_kind if conn.conflict else None,
                    "main_at": iso(conn.main_at),
                    "onboarding": dev.onboarding if dev is not None else None,
                    "onboarding_showing": self._onboarding_shows(conn, screen),
                    "reload": dict(conn.reload) if conn.reload else None,
                    "me": self._me(conn),
                }
                conns.append(item)
                if conn.qr is not None and conn.alive(now):
                    on_screen.append({"cid": conn.cid, "payload": conn.qr.payload,
                                      "expires_in": item["qr_expires_in"]})
            return {
                "time": iso(now),
                "profile": self.config.profile,
                "connections": conns,
                "on_screen": on_screen,
                "devices": [d.public() for d in self.devices.values()],
                "offline": self._offline_view(),
                "screens": self._screens_view(),
            }
