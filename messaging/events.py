"""Status transitions travel through Redis.

Workers append each event to a stream (durable: the recorder reads it with a consumer
group and acknowledges only after the database commit) and, in the same MULTI, publish
it on a per-session or per-message channel for live listeners (the API's QR and
send waits).  Slot workers hold no database connection; this is their only output.
"""
from __future__ import annotations

import json
import logging
import threading

import redis

from models.events import (
    Event, IncomingMessageEvent, MessageEvent, SessionBackup, SessionEvent, SessionNotice, SessionRestriction, SlotStarted,
)
from models.states import DisconnectReason, MessageStatus, SessionStatus

log = logging.getLogger(__name__)

STREAM = "wa:events"
GROUP = "recorder"
DEAD_LETTERS = "wa:events:dead"


def session_channel(session_id: str) -> str:
    """The pub/sub channel of a session's live events (``wa:live:session:<id>``)."""
    return f"wa:live:session:{session_id}"


def message_channel(message_id: str) -> str:
    """The pub/sub channel of a message's live events (``wa:live:message:<id>``)."""
    return f"wa:live:message:{message_id}"


def slot_channel(slot: str) -> str:
    """The pub/sub channel of a slot's live events (``wa:live:slot:<name>``)."""
    return f"wa:live:slot:{slot}"


def live_channel(event: dict) -> str:
    """The channel an event (as a dict) is published on: its message's, its slot's for
    ``slot_started``, else its session's."""
    if event.get("type") == "message":
        return message_channel(event["message_id"])
    if event.get("type") == "slot_started":
        return slot_channel(event["slot"])
    return session_channel(event["session_id"])


class EventBus:
    """Publishes typed events (models/events.py): each is appended to the stream and, in
    the same MULTI, published on its live channel."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    def emit(self, event: Event, mark_key: str | None = None, mark_ttl: int = 0) -> None:
        """Send ``event``; with ``mark_key``, also SET it (the event as its value, ``mark_ttl``
        seconds) atomically with the event, e.g. "this message was sent"."""
        body = event.encode()
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(STREAM, {"e": body})
        pipe.publish(live_channel(event.to_dict()), body)
        if mark_key:
            pipe.set(mark_key, body, ex=mark_ttl or None)
        pipe.execute()

    def slot_started(self, slot: str, started_ms: int) -> None:
        """A slot worker started with no browsers (the recorder retires older placements)."""
        self.emit(SlotStarted(slot=slot, started_ms=started_ms))

    def backup(self, session_id: str, epoch: int, key: str) -> None:
        """A new good archive of the session's login (the row's s3_session_key)."""
        self.emit(SessionBackup(session_id=session_id, epoch=epoch, key=key))

    def page_notice(self, session_id: str, epoch: int, kind: str, **fields) -> None:
        """Something on the session's page a person should look at (``kind``: e.g.
        ``unknown_dialog`` with its ``text`` and ``buttons``); recorded, and sent as a
        ``session.notice`` webhook."""
        self.emit(SessionNotice(session_id=session_id, epoch=epoch, kind=kind, **fields))

    def restriction(self, session_id: str, epoch: int, kind: str, *, restricted: bool, reason: str) -> None:
        """WhatsApp restricts the session (``restricted``) or stopped doing so: ``kind``
        names the restriction (``reachout_timelock``, ``new_chat_cap``, ``temporary_ban``,
        ...), ``reason`` says it in words (the messages' ``wait_reason``). Recorded, and
        sent as a ``session.restricted`` / ``session.unrestricted`` webhook."""
        self.emit(SessionRestriction(session_id=session_id, epoch=epoch, kind=kind, restricted=restricted,
                                     reason=reason))

    def notify_session(self, session_id: str, notice: dict) -> None:
        """A live-only notice (not a state change): published, not recorded."""
        self.redis.publish(session_channel(session_id), json.dumps(notice, separators=(",", ":")))

    def session(self, session_id: str, epoch: int, status: str, **fields) -> None:
        """A session's new state; ``fields`` as SessionEvent's (reason, qr, qr_code,
        pairing_code, phone_number, error). TypeError for a field it does not have,
        ValueError for a status or reason outside their enums."""
        fields = {k: v for k, v in fields.items() if v is not None}
        if "reason" in fields:
            fields["reason"] = DisconnectReason(fields["reason"])
        self.emit(SessionEvent(session_id=session_id, epoch=epoch, status=SessionStatus(status), **fields))

    def incoming(self, event: IncomingMessageEvent) -> None:
        """A message the session received (recorded once per session and WhatsApp id)."""
        self.emit(event)

    def message(self, message_id: str, job_id: str, session_id: str, status: str, *,
                mark_key: str | None = None, mark_ttl: int = 0, **fields) -> None:
        """A message's new state; ``fields`` as MessageEvent's."""
        fields = {k: v for k, v in fields.items() if v is not None}
        self.emit(MessageEvent(message_id=message_id, job_id=job_id, session_id=session_id,
                               status=MessageStatus(status), **fields), mark_key=mark_key, mark_ttl=mark_ttl)


class MemoryBus(EventBus):
    """An EventBus that keeps what it is given in memory, in order, instead of sending it:
    for a slot runtime run without the recorder (the canary, tests). The events are checked
    and built as on the stream; each is kept as its ``to_dict()`` with a ``status`` (its
    wire type for events that have none); live-only notices as ``{"type": "notice", ...}``.
    ``on_event`` is called with each one as it comes."""

    def __init__(self):
        super().__init__(client=None)
        self.events: list[dict] = []
        self._cond = threading.Condition()

    def emit(self, event: Event, mark_key: str | None = None, mark_ttl: int = 0) -> None:
        """Keep ``event`` (a mark is not kept: there is no Redis)."""
        body = event.to_dict()
        self._keep({**body, "status": body.get("status", body["type"])})

    def notify_session(self, session_id: str, notice: dict) -> None:
        """Keep a live-only notice."""
        self._keep({"type": "notice", "session_id": session_id, **notice})

    def on_event(self, event: dict) -> None:
        """Called with each event as it is kept; does nothing here."""

    def wait_for(self, match, timeout: float) -> dict | None:
        """The first event kept (oldest first) for which ``match(event)`` is true, waiting
        up to ``timeout`` seconds for one; None when none came."""
        def found():
            return next((e for e in self.events if match(e)), None)

        with self._cond:
            self._cond.wait_for(found, timeout)
            return found()

    def _keep(self, event: dict) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        self.on_event(event)
