"""Records of the simulated world: QR codes, pairing codes, linked devices, page connections, messages.

Plain dataclasses plus small helpers; all behaviour lives in :mod:`simulator.state`.
"""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import segno

# a connection that has not polled for this long no longer counts as a page on screen
STALE_AFTER = 10.0
PAIR_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
ACK_NAMES = {-1: "error", 0: "pending", 1: "server", 2: "delivered", 3: "read"}
MSG_ID_RE = re.compile(r"^[0-9A-Za-z]{8,64}$")
LOGGED_IN_STATES = ("PAIRING", "CONNECTED", "TIMEOUT", "CONFLICT")


class SimError(Exception):
    """An error answered as JSON ``{"error": code, "message": message}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def b64(nbytes: int) -> str:
    return base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def normalize_phone(raw: Any, *, strict: bool = False) -> str | None:
    """Digits of a phone number or None. strict: only a leading '+' and spaces may be dropped."""
    if raw is None:
        return None
    text = str(raw).strip()
    if text.startswith("+"):
        text = text[1:]
    if strict:
        text = text.replace(" ", "")
    else:
        text = re.sub(r"[\s\-().]", "", text)
    if not text.isdigit() or not 7 <= len(text) <= 15:
        return None
    return text


def qr_matrix(payload: str) -> list[str]:
    qr = segno.make(payload, error="L", micro=False)
    return ["".join("1" if cell else "0" for cell in row) for row in qr.matrix]


def size_limit_text(limit_mb: float) -> str:
    shown = int(limit_mb) if float(limit_mb).is_integer() else round(limit_mb, 3)
    return f"The file you tried adding is larger than the {shown} MB limit."


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass
class QrCode:
    serial: int
    ref: str
    payload: str
    shown_at: float
    expires_at: float
    matrix: list[str]
    ended_at: float | None = None
    end_reason: str | None = None  # expired | scanned | mode | reload | closed

    def public(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "ref": self.ref,
            "payload": self.payload,
            "shown_at": iso(self.shown_at),
            "shown_ts": self.shown_at,
            "expires_at": iso(self.expires_at),
            "expires_ts": self.expires_at,
            "ended_at": iso(self.ended_at),
            "end_reason": self.end_reason,
        }


@dataclass
class PairCode:
    code: str
    phone: str
    shown_at: float
    expires_at: float
    ended_at: float | None = None
    end_reason: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "display": f"{self.code[:4]}-{self.code[4:]}",
            "phone": self.phone,
            "shown_at": iso(self.shown_at),
            "expires_at": iso(self.expires_at),
            "expires_ts": self.expires_at,
            "ended_at": iso(self.ended_at),
            "end_reason": self.end_reason,
        }


@dataclass
class Device:
    """A linked device (companion) of a phone; ``token`` is the login kept by the browser."""

    token: str
    phone: str
    device: int
    wid: str
    created: float
    via: str
    noise_info: dict[str, Any]
    revoked_at: float | None = None
    revoke_reason: str | None = None  # phone | web | onboarding
    # 2026 profile: a fresh link of a 2026 page gets the onboarding dialog and one scheduled reload
    profile: str = "legacy"
    lid: str | None = None  # our own LID (2026 profile)
    main_at: float | None = None  # first MAIN (chat list) after the link
    onboarding: str | None = None  # None | pending | acknowledged | revoked
    onboarding_shown_at: float | None = None
    onboarding_acked_at: float | None = None
    reload_done_at: float | None = None  # the scheduled reload after the link was handed to a page

    def public(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "phone": self.phone,
            "device": self.device,
            "wid": self.wid,
            "lid": self.lid,
            "via": self.via,
            "profile": self.profile,
            "created": iso(self.created),
            "revoked": self.revoked_at is not None,
            "revoked_at": iso(self.revoked_at),
            "revoke_reason": self.revoke_reason,
            "main_at": iso(self.main_at),
            "onboarding": self.onboarding,
            "onboarding_shown_at": iso(self.onboarding_shown_at),
            "onboarding_acked_at": iso(self.onboarding_acked_at),
            "reload_done_at": iso(self.reload_done_at),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token, "phone": self.phone, "device": self.device, "wid": self.wid,
            "created": self.created, "via": self.via, "noise_info": self.noise_info,
            "revoked_at": self.revoked_at, "revoke_reason": self.revoke_reason,
            "profile": self.profile, "lid": self.lid, "main_at": self.main_at,
            "onboarding": self.onboarding, "onboarding_shown_at": self.onboarding_shown_at,
            "onboarding_acked_at": self.onboarding_acked_at, "reload_done_at": self.reload_done_at,
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> "Device":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in item.items() if k in known})


@dataclass
class Connection:
    """One page load (document) talking to the simulator."""

    cid: str
    created: float
    user_agent: str
    path: str
    noise_key: str
    identity_key: str
    adv_secret: str
    state: str = "UNPAIRED"
    mode: str = "qr"  # qr | phone_input | code | app | logged_out | unsupported
    qr: QrCode | None = None
    qr_serial: int = 0
    qr_in_series: int = 0
    payloads: list[QrCode] = field(default_factory=list)
    pair: PairCode | None = None
    pair_phone: str | None = None
    pair_codes: list[PairCode] = field(default_factory=list)
    token: str | None = None
    phone: str | None = None
    wid: str | None = None
    sync_until: float | None = None
    conflict: bool = False
    logged_out: bool = False
    last_seen: float = 0.0
    closed_at: float | None = None
    rev: int = 0
    # page profile (fixed at connect) and 2026 additions
    profile: str = "legacy"
    locale: str = "en"
    load_cause: str = "navigation"
    unsupported: bool = False  # the user agent was refused (UNSUPPORTED_BROWSER)
    unsupported_min_chrome: int | None = None
    conflict_kind: str = "window"  # window (ANOTHER_SESSION) | computer (CONFLICT)
    main_at: float | None = None  # this page reached MAIN
    reload: dict[str, Any] | None = None  # {"cause", "id"}: the page must reload itself once
    screen_seen: str | None = None  # last computed screen (a change bumps rev)
    onboarding_seen: bool = False

    def alive(self, now: float) -> bool:
        return self.closed_at is None and now - self.last_seen < STALE_AFTER

    def last_payload(self) -> str | None:
        return self.payloads[-1].payload if self.payloads else None


@dataclass
class Message:
    id: str
    own: str  # the linked account (own phone number)
    peer: str  # the other party (phone number digits)
    from_me: bool
    type: str  # chat | image | video | document | sticker
    text: str | None
    caption: str | None
    media: dict[str, Any] | None
    created: float
    server_at: float | None = None
    delivered_at: float | None = None
    read_at: float | None = None
    token: str | None = None
    cid: str | None = None
    wid: str | None = None
    forced_ack: int | None = None
    chat: str | None = None  # the chat's wid when the message was made: <digits>@c.us or <lid>@lid
    quoted_id: str | None = None  # the message this one replies to (quotes)

    def ack(self, now: float) -> int:
        if self.server_at is None:
            return 0
        if self.read_at is not None and now >= self.read_at:
            return 3
        if self.delivered_at is not None and now >= self.delivered_at:
            return 2
        return 1

    @property
    def chat_wid(self) -> str:
        return self.chat or f"{self.peer}@c.us"

    def serialized_in(self, chat_wid: str) -> str:
        return f"{'true' if self.from_me else 'false'}_{chat_wid}_{self.id}"

    @property
    def serialized(self) -> str:
        return self.serialized_in(self.chat_wid)

    def for_page(self, now: float, chat_wid: str | None = None) -> dict[str, Any]:
        """The message as the page draws it; ``chat_wid`` = the chat's address for that page."""
        media = None
        if self.media:
            media = {k: self.media[k] for k in ("name", "size", "mimetype")}
            media["url"] = f"/sim/api/media/{self.id}"
        wid = chat_wid or self.chat_wid
        return {
            "id": self.id,
            "data_id": self.serialized_in(wid),
            "serialized": self.serialized_in(wid),
            "chat": wid,
            "from_me": self.from_me,
            "peer": self.peer,
            "type": self.type,
            "sticker": self.type == "sticker",
            "text": self.text,
            "caption": self.caption,
            "media": media,
            "ack": self.ack(now) if self.from_me else None,
            "t": self.server_at or self.created,
            "quoted_id": self.quoted_id,
        }

    def public(self, now: float) -> dict[str, Any]:
        ts = self.server_at if self.server_at is not None else self.created
        ack = self.ack(now) if self.from_me else None
        return {
            "id": self.id,
            "serialized": self.serialized,
            "chat": self.chat_wid,
            "from": self.own if self.from_me else self.peer,
            "to": self.peer if self.from_me else self.own,
            "from_me": self.from_me,
            "type": self.type,
            "sticker": self.type == "sticker",
            "text": self.text,
            "caption": self.caption,
            "media": dict(self.media) if self.media else None,
            "time": iso(ts),
            "timestamp": ts,
            "ack": ack,
            "ack_name": ACK_NAMES.get(ack) if ack is not None else None,
            "server_at": iso(self.server_at),
            "delivered_at": iso(self.delivered_at) if ack is not None and ack >= 2 else None,
            "read_at": iso(self.read_at) if ack is not None and ack >= 3 else None,
            "device": self.wid,
            "cid": self.cid,
            "quoted_id": self.quoted_id,
        }
