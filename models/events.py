"""The events slot workers publish and the recorder applies: one small dataclass per kind,
with their one serialisation (``to_dict`` / ``decode``). docs/events.md is the contract.

On the wire an event is a JSON object with a ``type`` and the fields of its class (None
fields left out); times are ISO 8601 strings in UTC. ``decode`` refuses a body that is
not JSON, of an unknown type, missing a required field or with a value outside its enum
(ValueError): the recorder moves such an entry to the dead-letter stream. Fields it does
not know are ignored, so a newer worker's extra fields do not stop an older recorder.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, ClassVar

from models.states import DisconnectReason, MessageStatus, SessionStatus


def now_iso() -> str:
    """Now, in UTC, as ISO 8601 with an offset ("2026-01-15T10:30:00.123456+00:00")."""
    return datetime.now(timezone.utc).isoformat()


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has: its ``type`` (the class's) and ``at``, when it happened."""

    type: ClassVar[str] = ""
    at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object sent on the stream and the live channels."""
        body: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            body[f.name] = value.value if isinstance(value, Enum) else value
        return body

    def encode(self) -> str:
        """The event as compact JSON: ``to_dict()``, one line, as it goes on the stream."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def get(self, name: str, default: Any = None) -> Any:
        """Read a field like a dict's key (listeners that take either shape)."""
        value = getattr(self, name, default)
        return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True, kw_only=True)
class PlacedEvent(Event):
    """What one placement of a session tells (no wire type of its own): ``epoch`` is the
    placement that speaks; the recorder refuses what older ones say (fencing), but for
    messages received, which are facts whoever saw them."""

    session_id: str
    epoch: int


@dataclass(frozen=True, kw_only=True)
class SessionEvent(PlacedEvent):
    """A session's state changed (emitted by the slot's page monitor and commands)."""

    type: ClassVar[str] = "session"
    status: SessionStatus
    reason: DisconnectReason | None = None  # with DISCONNECTED
    qr: str | None = None  # the QR payload on screen (QR_READY)
    qr_code: str | None = None  # the same as a PNG data URL
    pairing_code: str | None = None  # "ABCD-EFGH" (QR_READY of a phone-number link)
    phone_number: str | None = None  # our own number, E.164 digits (READY)
    error: str | None = None  # what went wrong (BROWSER_FAILED)


@dataclass(frozen=True, kw_only=True)
class MessageEvent(Event):
    """A message's state changed (emitted by the send task and the ack follower)."""

    type: ClassVar[str] = "message"
    message_id: str
    job_id: str
    session_id: str
    status: MessageStatus
    attempt: int | None = None  # 1, 2, ...
    wa_message_id: str | None = None  # WhatsApp's id of the message (sent)
    wa_id: str | None = None  # the recipient as WhatsApp knows it, <digits>@c.us (sent)
    error: str | None = None  # failed
    next_attempt_at: str | None = None  # scheduled: when it comes back (ISO 8601)
    wait_reason: str | None = None  # scheduled: why it waits
    dispatch_at: str | None = None  # when the sweeper dispatches it again if nothing else happened (ISO 8601)


@dataclass(frozen=True, kw_only=True)
class SessionBackup(PlacedEvent):
    """A new verified archive of a session's login (the row's s3_session_key)."""

    type: ClassVar[str] = "session_backup"
    key: str


@dataclass(frozen=True, kw_only=True)
class SessionNotice(PlacedEvent):
    """Something on the session's page a person should look at; sent as ``session.notice``."""

    type: ClassVar[str] = "session_notice"
    kind: str  # e.g. "unknown_dialog"
    text: str | None = None
    buttons: list[str] | None = None


@dataclass(frozen=True, kw_only=True)
class SessionRestriction(PlacedEvent):
    """WhatsApp restricts the session (``restricted``) or stopped doing so; sent as
    ``session.restricted`` / ``session.unrestricted``."""

    type: ClassVar[str] = "session_restriction"
    kind: str  # reachout_timelock, new_chat_cap, new_chat_link_limit, compose_locked, temporary_ban
    restricted: bool
    reason: str  # in words: the waiting messages' wait_reason


@dataclass(frozen=True, kw_only=True)
class IncomingMessageEvent(PlacedEvent):
    """A message arrived in one of the session's chats (emitted by the slot's incoming
    follower). Recorded once per (session, ``wa_message_id``): a slot that restarts and
    sees the same message again changes nothing. ``at`` is when the slot saw it."""

    type: ClassVar[str] = "incoming_message"
    wa_message_id: str  # the message's own id (last part of its serialized id), or "dom-<digits>-<n>"
    received_at: str  # when WhatsApp says it was sent (ISO 8601)
    wa_serialized: str | None = None  # false_<chat>_<id> as the page gave it
    sender_wa_id: str | None = None  # <digits>@c.us or <lid>@lid
    sender_number: str | None = None  # E.164 digits, when the page tells them
    msg_type: str = "chat"  # WhatsApp's type: chat, image, video, audio, ptt, document, sticker, ...
    text: str | None = None  # the text, or a media message's caption
    media_kind: str | None = None
    media_mimetype: str | None = None
    media_filename: str | None = None
    media_size: int | None = None  # bytes
    quoted_wa_message_id: str | None = None  # the own id of the message it quotes
    route: str = "modules"  # modules (the page's message collection) or dom (the chat list)


@dataclass(frozen=True, kw_only=True)
class SlotStarted(Event):
    """A slot worker started with no browsers: placements on it older than ``started_ms``
    (epoch milliseconds) are gone."""

    type: ClassVar[str] = "slot_started"
    slot: str
    started_ms: int


EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in
                                       (SessionEvent, MessageEvent, SlotStarted, SessionBackup, SessionNotice,
                                        SessionRestriction, IncomingMessageEvent)}
_ENUMS = {"status": {SessionEvent: SessionStatus, MessageEvent: MessageStatus}, "reason": {SessionEvent: DisconnectReason}}


def from_dict(body: dict[str, Any]) -> Event:
    """The event a JSON object describes; ValueError when it describes none."""
    if not isinstance(body, dict):
        raise ValueError("an event is a JSON object")
    cls = EVENT_TYPES.get(body.get("type"))
    if cls is None:
        raise ValueError(f"unknown event type {body.get('type')!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in body or body[f.name] is None:
            continue
        value = body[f.name]
        enum = _ENUMS.get(f.name, {}).get(cls)
        if enum is not None:
            value = enum(value)  # ValueError outside the enum
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"{cls.type} event: {exc}") from None


def decode(raw: bytes | str) -> Event:
    """An event from its wire form (JSON); ValueError for anything else."""
    try:
        body = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    return from_dict(body)
