"""Applying state changes to the database: the only code that writes statuses.

The recorder calls ``apply_event`` for every event a worker published; the API calls
``change_session_status`` for the transitions it makes itself (initialize, destroy).
Both refuse stale or illegal transitions and say why, so the caller can log it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.events import (
    Event,
    IncomingMessageEvent,
    MessageEvent,
    SessionBackup,
    SessionEvent,
    SessionNotice,
    SessionRestriction,
    SlotStarted,
)
from models.states import (
    BROWSER_KEPT_REASONS,
    LIVE_SESSION_STATES,
    MESSAGE_DONE,
    MESSAGE_SUCCESS,
    MESSAGE_UNSENT,
    MESSAGE_WAITING,
    DisconnectReason,
    JobStatus,
    MessageStatus,
    SessionStatus,
    job_status,
    message_transition_allowed,
    session_event_is_fresh,
    session_transition_allowed,
)
from models.optouts import OptOutRules, record_incoming_text
from models.tables import (
    IncomingMessage, Job, Message, SessionTransition, WhatsAppSession, new_id, seed_timestamp, utcnow,
)
from models.webhooks import enqueue_webhook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """Whether an event or a change was written (``applied``), and if not, why (``reason``)."""

    applied: bool
    reason: str = ""


def _parse_time(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else utcnow()


def _parse_optional_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def change_session_status(
    db: Session,
    row: WhatsAppSession,
    new: SessionStatus,
    *,
    reason: str | None = None,
    source: str = "api",
    event_id: str | None = None,
    at: datetime | None = None,
    qr_code: str | None = None,
    pairing_code: str | None = None,
    phone_number: str | None = None,
) -> Outcome:
    """Move ``row`` to ``new`` if the transition table allows it: records the transition,
    the seed's flags, the QR or pairing code (kept only in QR_READY), makes waiting messages
    due on READY and queues a ``session.status`` webhook. ``at``: when (UTC, default now).
    The caller commits; a refused change returns ``Outcome(False, why)`` and writes nothing."""
    if not session_transition_allowed(row.status, new, row.status_reason):
        return Outcome(False, f"illegal transition {row.status} -> {new}")
    at = at or utcnow()
    db.add(SessionTransition(
        session_id=row.session_id, from_status=row.status, to_status=new.value, reason=reason,
        epoch=row.epoch, event_id=event_id, source=source, created_at=at,
    ))
    row.status = new.value
    row.status_reason = reason
    row.is_authenticated = new in (SessionStatus.AUTHENTICATED, SessionStatus.READY)
    row.is_ready = new == SessionStatus.READY
    # The seed keeps the QR image only while it can be scanned.
    row.qr_code = qr_code if new == SessionStatus.QR_READY else None
    row.pairing_code = pairing_code if new == SessionStatus.QR_READY else None
    if phone_number:
        row.phone_number = phone_number
    row.last_activity = at
    if event_id:
        row.last_event_id = event_id
    if new == SessionStatus.READY:
        # Back in business: what waits for this session is due now (the sweeper sends it;
        # a copy still queued elsewhere finds it reserved, claimed or done).
        db.execute(update(Message).where(
            Message.session_id == row.session_id, Message.status.in_([m.value for m in MESSAGE_UNSENT]),
            Message.dispatch_due_at > at).values(dispatch_due_at=at))
    if row.callback_url:
        enqueue_webhook(db, row.callback_url, "session.status", {
            "session_id": row.session_id, "status": new.value, "reason": reason,
            "phone_number": row.phone_number, "pairing_code": row.pairing_code, "at": seed_timestamp(at),
        }, at=at)
    return Outcome(True)


def apply_session_event(db: Session, event_id: str, event: SessionEvent) -> Outcome:
    """Apply a slot's SessionEvent (``event_id``: its stream id) to the session's row,
    locked; stale events (older placement or stream id) are refused. A LOGOUT fails the
    session's unsent messages."""
    row = db.execute(
        select(WhatsAppSession).where(WhatsAppSession.session_id == event.session_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return Outcome(False, "session no longer exists")
    if not session_event_is_fresh(row.epoch, row.last_event_id, event.epoch, event_id):
        return Outcome(False, f"stale event (epoch {event.epoch} vs {row.epoch})")
    if event.status == SessionStatus.DISCONNECTED and event.reason == DisconnectReason.LOGOUT:
        fail_unsent_messages(db, row.session_id, "Session logged out from the phone")
    return change_session_status(
        db, row, event.status,
        reason=event.reason.value if event.reason else None, source="worker", event_id=event_id,
        at=_parse_time(event.at), qr_code=event.qr_code, pairing_code=event.pairing_code,
        phone_number=event.phone_number,
    )


_TIMESTAMP_FIELD = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}


def change_message_status(
    db: Session, msg: Message, new: MessageStatus, *, at: datetime | None = None,
    attempt: int | None = None, wa_message_id: str | None = None, wa_id: str | None = None,
    error: str | None = None, next_attempt_at: datetime | None = None, wait_reason: str | None = None,
    dispatch_at: datetime | None = None,
) -> Outcome:
    """``dispatch_at``: when the sweeper should dispatch the message again if nothing
    else happened to it by then (a wait's end, or a send's lease)."""
    if not message_transition_allowed(msg.status, new):
        return Outcome(False, f"illegal transition {msg.status} -> {new}")
    at = at or utcnow()
    was_unsent = MessageStatus(msg.status) in MESSAGE_UNSENT
    msg.status = new.value
    if attempt:
        msg.attempts = max(msg.attempts, attempt)
    if wa_message_id:
        msg.wa_message_id = wa_message_id
    if wa_id:
        msg.wa_id = wa_id[:64]
    if error:
        msg.error = error
    if new in _TIMESTAMP_FIELD:
        setattr(msg, _TIMESTAMP_FIELD[new], at)
    waiting = new == MessageStatus.SCHEDULED
    msg.next_attempt_at = next_attempt_at if waiting else None
    msg.wait_reason = wait_reason if waiting else None
    msg.dispatch_due_at = dispatch_at if new in MESSAGE_UNSENT else None
    if was_unsent and new not in MESSAGE_UNSENT:
        _release_successors(db, msg, at)
    job = _refresh_job(db, msg.job_id, at)
    if new in _WEBHOOK_STATUSES:
        url = job.callback_url or _session_callback(db, msg.session_id)
        if url:
            enqueue_webhook(db, url, f"message.{new.value}", {
                "message_id": msg.id, "job_id": msg.job_id, "session_id": msg.session_id, "to": msg.to_input,
                "status": new.value, "whatsapp_message_id": msg.wa_message_id, "wa_id": msg.wa_id,
                "error": msg.error,
                "attempts": msg.attempts, "at": seed_timestamp(at),
            }, at=at)
    return Outcome(True)


_WEBHOOK_STATUSES = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ,
                               MessageStatus.FAILED})


def _session_callback(db: Session, session_id: str) -> str | None:
    return db.execute(select(WhatsAppSession.callback_url)
                      .where(WhatsAppSession.session_id == session_id)).scalar_one_or_none()


def _release_successors(db: Session, msg: Message, at: datetime) -> None:
    """The next message to the same recipient may go now (messages to one recipient keep
    their order); the sweeper dispatches it."""
    released = db.execute(update(Message).where(Message.after_message_id == msg.id,
                                                Message.status == MessageStatus.QUEUED.value)
                          .values(dispatch_due_at=at)).rowcount
    if released:  # the recorder asks for a sweep at once rather than at the next beat
        db.info["released"] = db.info.get("released", 0) + released


def fail_unsent_messages(db: Session, session_id: str, error: str, at: datetime | None = None) -> int:
    """Fail every message of a session that was not sent yet (the session is gone for good)."""
    at = at or utcnow()
    rows = db.execute(select(Message).where(
        Message.session_id == session_id,
        Message.status.in_([s.value for s in MESSAGE_UNSENT])).with_for_update()).scalars().all()
    for msg in rows:
        change_message_status(db, msg, MessageStatus.FAILED, at=at, error=error)
    return len(rows)


def _refresh_job(db: Session, job_id: str, at: datetime) -> Job:
    db.flush()
    job = db.get(Job, job_id)
    statuses = db.execute(select(Message.status).where(Message.job_id == job_id)).scalars().all()
    new = job_status(statuses)
    job.status = new.value
    job.updated_at = at
    if new not in (JobStatus.QUEUED, JobStatus.PROCESSING) and all(s in MESSAGE_DONE for s in statuses):
        if job.finished_at is None:
            job.finished_at = at
            url = job.callback_url or _session_callback(db, job.session_id)
            if url:
                enqueue_webhook(db, url, "job.finished", {
                    "job_id": job.id, "session_id": job.session_id, "status": new.value,
                    "total_messages": len(statuses),
                    "successful_sends": sum(1 for x in statuses if x in MESSAGE_SUCCESS),
                    "failed_sends": sum(1 for x in statuses if x == MessageStatus.FAILED),
                    "at": seed_timestamp(at),
                }, at=at)
    return job


def apply_message_event(db: Session, event_id: str, event: MessageEvent) -> Outcome:
    """Apply a MessageEvent (``event_id``: its stream id) to the message's row, locked:
    status, attempt, ids, error and wait; a SENT marks the session's last activity."""
    msg = db.execute(select(Message).where(Message.id == event.message_id).with_for_update()).scalar_one_or_none()
    if msg is None:
        return Outcome(False, "message no longer exists")
    at = _parse_time(event.at)
    outcome = change_message_status(
        db, msg, event.status, at=at, attempt=event.attempt,
        wa_message_id=event.wa_message_id, wa_id=event.wa_id, error=event.error,
        next_attempt_at=_parse_optional_time(event.next_attempt_at),
        wait_reason=event.wait_reason, dispatch_at=_parse_optional_time(event.dispatch_at),
    )
    if outcome.applied and msg.status == MessageStatus.SENT:
        session = db.execute(
            select(WhatsAppSession).where(WhatsAppSession.session_id == msg.session_id)
        ).scalar_one_or_none()
        if session is not None:
            session.last_activity = at
    return outcome


def apply_slot_started(db: Session, event_id: str, event: SlotStarted) -> Outcome:
    """A slot worker (re)started with no browsers: the sessions placed on it before that
    are gone (a worker killed with SIGKILL could not say so itself)."""
    started = event.started_ms
    rows = db.execute(select(WhatsAppSession).where(
        WhatsAppSession.slot == event.slot, WhatsAppSession.epoch < started,
        WhatsAppSession.status.in_([s.value for s in LIVE_SESSION_STATES] + [SessionStatus.DISCONNECTED.value]),
    ).with_for_update()).scalars().all()
    for row in rows:
        if row.status != SessionStatus.DISCONNECTED or row.status_reason in BROWSER_KEPT_REASONS:
            change_session_status(db, row, SessionStatus.DISCONNECTED, reason="WORKER_RESTARTED", source="worker",
                                  at=_parse_time(event.at))
    return Outcome(True)


def apply_backup(db: Session, event: SessionBackup) -> Outcome:
    """Record the key of the session's newest saved login archive (``s3_session_key``)."""
    row = db.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == event.session_id)
                     .with_for_update()).scalar_one_or_none()
    if row is None:
        return Outcome(False, "session no longer exists")
    row.s3_session_key = event.key
    return Outcome(True)


def apply_notice(db: Session, event: SessionNotice) -> Outcome:
    """Something on the session's page worth a person's look (an unknown dialog left open):
    nothing changes state; the session's webhook hears of it (``session.notice``)."""
    row = db.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == event.session_id)
                     ).scalar_one_or_none()
    if row is None:
        return Outcome(False, "session no longer exists")
    log.info("session=%s page notice %s", row.session_id, event.kind)
    if row.callback_url:
        enqueue_webhook(db, row.callback_url, "session.notice", {
            "session_id": row.session_id, "user_id": row.user_id, "kind": event.kind,
            "text": event.text, "buttons": event.buttons or [],
        }, at=_parse_time(event.at))
    return Outcome(True)


def apply_restriction(db: Session, event: SessionRestriction) -> Outcome:
    """WhatsApp restricts a session (or stopped doing so). While it does, the session's
    waiting messages say so (``scheduled``, ``wait_reason`` naming the restriction; their
    dispatch times are kept); nothing is failed. The session's webhook hears of it as
    ``session.restricted`` / ``session.unrestricted``."""
    row = db.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == event.session_id)
                     ).scalar_one_or_none()
    if row is None:
        return Outcome(False, "session no longer exists")
    if event.epoch != row.epoch:
        return Outcome(False, f"stale event (epoch {event.epoch} vs {row.epoch})")
    at = _parse_time(event.at)
    restricted, reason = event.restricted, event.reason or event.kind
    log.info("session=%s restriction %s %s", row.session_id, event.kind, "on" if restricted else "off")
    if restricted:
        waiting = db.execute(select(Message).where(
            Message.session_id == row.session_id,
            Message.status.in_([s.value for s in MESSAGE_WAITING])).with_for_update()).scalars().all()
        for msg in waiting:
            change_message_status(db, msg, MessageStatus.SCHEDULED, at=at, wait_reason=reason,
                                  next_attempt_at=msg.next_attempt_at, dispatch_at=msg.dispatch_due_at)
    if row.callback_url:
        enqueue_webhook(db, row.callback_url, "session.restricted" if restricted else "session.unrestricted", {
            "session_id": row.session_id, "user_id": row.user_id, "restriction": event.kind,
            "reason": reason, "at": seed_timestamp(at),
        }, at=at)
    return Outcome(True)


def _insert_once(db: Session, values: dict) -> int | None:
    """INSERT the incoming row unless (session_id, wa_message_id) is there already; the new
    row's seq, or None. One statement, so a replayed batch or a second slot seeing the same
    message cannot make a second row or abort the recorder's transaction."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(IncomingMessage).on_conflict_do_nothing(
            constraint="uq_incoming_session_wa_message")
    elif dialect == "sqlite":
        stmt = sqlite.insert(IncomingMessage).on_conflict_do_nothing(index_elements=["session_id", "wa_message_id"])
    else:  # pragma: no cover - the project runs on PostgreSQL
        stmt = insert(IncomingMessage)
    return db.execute(stmt.values(**values).returning(IncomingMessage.seq)).scalar_one_or_none()


def quoted_message(db: Session, session_id: str, wa_key: str | None) -> Message | None:
    """Our message (a send of ``session_id``) whose WhatsApp id ends in ``wa_key``, the own
    id a reply quotes (``quotedStanzaID``: WAJS src/chat/events/registerNewMessageEvent.ts);
    our rows keep the serialized form (``true_<chat>_<id>``, the chat as a number or a LID)."""
    if not wa_key:
        return None
    pattern = "%\\_" + wa_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return db.execute(select(Message).where(
        Message.session_id == session_id,
        (Message.wa_message_id == wa_key) | Message.wa_message_id.like(pattern, escape="\\"),
    ).order_by(Message.created_at.desc()).limit(1)).scalar_one_or_none()


def record_incoming_message(db: Session, event: IncomingMessageEvent, opt_outs: OptOutRules | None = None) -> Outcome:
    """Record a message the session received, exactly once per (session, WhatsApp message
    id), and, for a new row only, the ``message.received`` webhook (to the session's
    callback URL, else to that of the job whose message it quotes) and, with
    ``opt_outs``, its sender's opt-out when the text is one of the keywords.

    This is the one place an incoming message becomes a row: whatever must happen once
    per message received is called here, after the insert, where ``inserted`` is true.
    """
    row = db.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == event.session_id)
                     ).scalar_one_or_none()
    if row is None:
        return Outcome(False, "session no longer exists")
    quoted = quoted_message(db, row.session_id, event.quoted_wa_message_id)
    received_at = _parse_time(event.received_at)
    values = dict(
        id=new_id("in"), session_id=row.session_id, wa_message_id=event.wa_message_id[:160],
        wa_serialized=(event.wa_serialized or None) and event.wa_serialized[:240],
        sender_number=event.sender_number, sender_wa_id=(event.sender_wa_id or None) and event.sender_wa_id[:64],
        type=(event.msg_type or "chat")[:20], text=event.text, media_kind=event.media_kind,
        media_mimetype=(event.media_mimetype or None) and event.media_mimetype[:120],
        media_filename=(event.media_filename or None) and event.media_filename[:255], media_size=event.media_size,
        quoted_wa_message_id=event.quoted_wa_message_id, route=event.route[:10],
        in_reply_to_message_id=quoted.id if quoted else None, in_reply_to_job_id=quoted.job_id if quoted else None,
        received_at=received_at, created_at=utcnow(),
    )
    inserted = _insert_once(db, values) is not None
    if not inserted:
        return Outcome(False, f"incoming message {event.wa_message_id} already recorded")
    row.last_activity = max(row.last_activity or received_at, received_at)
    if opt_outs is not None and event.text and event.sender_number:
        record_incoming_text(db, row.session_id, event.sender_number, event.text, opt_outs.keywords,
                             mirror=opt_outs.mirror)
    url = row.callback_url
    if url is None and quoted is not None:
        url = db.execute(select(Job.callback_url).where(Job.id == quoted.job_id)).scalar_one_or_none()
    if url:
        enqueue_webhook(db, url, "message.received", incoming_webhook_data(row, values, quoted), at=received_at)
    return Outcome(True)


def incoming_webhook_data(session: WhatsAppSession, values: dict, quoted: Message | None) -> dict:
    """The ``data`` of a ``message.received`` webhook (docs/events.md)."""
    media = None
    if values["media_kind"] or values["media_mimetype"]:
        media = {"kind": values["media_kind"], "mimetype": values["media_mimetype"],
                 "filename": values["media_filename"], "size": values["media_size"]}
    return {
        "message_id": values["id"], "session_id": session.session_id, "user_id": session.user_id,
        "whatsapp_message_id": values["wa_message_id"], "from": values["sender_number"],
        "from_wa_id": values["sender_wa_id"], "type": values["type"], "text": values["text"], "media": media,
        "in_reply_to": ({"message_id": quoted.id, "job_id": quoted.job_id,
                         "whatsapp_message_id": quoted.wa_message_id} if quoted else None),
        "received_at": seed_timestamp(values["received_at"]),
    }


def apply_event(db: Session, event_id: str, event: Event, opt_outs: OptOutRules | None = None) -> Outcome:
    """Apply one event of the stream (``event_id``: its stream id, the order of a session's
    events); the Outcome says whether it changed anything, and why not. ``opt_outs``: the
    keywords that put the sender of a text received on the session's opt-out list."""
    if isinstance(event, SessionEvent):
        return apply_session_event(db, event_id, event)
    if isinstance(event, MessageEvent):
        return apply_message_event(db, event_id, event)
    if isinstance(event, SlotStarted):
        return apply_slot_started(db, event_id, event)
    if isinstance(event, SessionBackup):
        return apply_backup(db, event)
    if isinstance(event, SessionNotice):
        return apply_notice(db, event)
    if isinstance(event, SessionRestriction):
        return apply_restriction(db, event)
    if isinstance(event, IncomingMessageEvent):
        return record_incoming_message(db, event, opt_outs)
    return Outcome(False, f"unknown event type {event.type!r}")
