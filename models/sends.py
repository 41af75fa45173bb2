"""Accepting sends: the rows that make a request durable, written in one transaction.

Core statements on the tables rather than ORM objects, built once: this is the API's hot
path (building a statement costs more CPU than running it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, or_, select
from sqlalchemy.orm import Session

from models.states import MESSAGE_UNSENT, JobStatus, MessageStatus, job_status
from models.states import SessionStatus
from models.tables import Job, Message, WhatsAppSession, new_id, utcnow


_messages = Message.__table__
# The session's unsent messages to some numbers (``numbers``), oldest last.
_UNSENT_TO = (select(_messages.c.to, _messages.c.id)
              .where(_messages.c.session_id == bindparam("session_id"),
                     _messages.c.to.in_(bindparam("numbers", expanding=True)),
                     _messages.c.status.in_([m.value for m in MESSAGE_UNSENT]))
              .order_by(_messages.c.created_at, _messages.c.position))
_INSERT_JOB = insert(Job.__table__)
_INSERT_MESSAGES = insert(_messages)


@dataclass(frozen=True)
class Recipient:
    """One message of a send request as accepted from the client, before it has a row."""

    to: str  # E.164 digits; "" when the number was invalid
    to_input: str  # as the client wrote it
    text: str
    # [{"url": ...}], [{"ref", "filename", "mimetype", "size", "sha256"}] (inline media, stored:
    # storage.media), or, before they are stored, [{"filename", "mimetype", "data": base64}]
    media: list[dict] | None = None
    error: str | None = None  # refused on its own (e.g. an invalid number): failed at once
    mark_chat_read: bool = False  # mark the chat read once the message is out


@dataclass(frozen=True)
class AcceptedMessage:
    """A message row written by ``accept_messages``, with whether to enqueue it now."""

    id: str
    to: str
    to_input: str
    text: str
    media: list[dict] | None
    status: MessageStatus
    error: str | None
    dispatch_now: bool  # False: failed, or waits for the message before it to the same number
    mark_chat_read: bool = False


@dataclass(frozen=True)
class Accepted:
    """What ``accept_messages`` wrote: the job, its messages in request order, and when (UTC)."""

    job_id: str
    messages: list[AcceptedMessage]
    created_at: datetime

    @property
    def message_ids(self) -> list[str]:
        """The messages' ids, in request order."""
        return [m.id for m in self.messages]


def accept_messages(s: Session, session_id: str, kind: str, recipients: list[Recipient],
                    dispatch_due_at: datetime | None, callback_url: str | None = None,
                    api_key_id: str | None = None) -> Accepted:
    """Write a job and its messages (``api_key_id``: the key that sent it, None for a
    trusted caller). A message to a number that still has an unsent message of this
    session (earlier in this request or before) waits for it."""
    now = utcnow()
    job_id = new_id("job")
    numbers = {r.to for r in recipients if not r.error}
    last_unsent: dict[str, str] = {}
    if numbers:
        for to, message_id in s.execute(_UNSENT_TO, {"session_id": session_id, "numbers": list(numbers)}).all():
            last_unsent[to] = message_id
    rows, accepted = [], []
    for i, r in enumerate(recipients):
        message_id = new_id("msg")
        failed = r.error is not None
        after = None if failed else last_unsent.get(r.to)
        if not failed:
            last_unsent[r.to] = message_id
        rows.append({
            "id": message_id, "job_id": job_id, "session_id": session_id, "position": i, "to": r.to,
            "to_input": r.to_input[:64], "text": r.text, "media": r.media or None,
            "status": (MessageStatus.FAILED if failed else MessageStatus.QUEUED).value, "attempts": 0,
            "error": r.error, "failed_at": now if failed else None, "after_message_id": after,
            "dispatch_due_at": None if failed or after else dispatch_due_at,
            "dispatched_at": None if failed or after else now,  # the caller enqueues it now
            "mark_chat_read": r.mark_chat_read,
            "created_at": now, "updated_at": now,
        })
        accepted.append(AcceptedMessage(message_id, r.to, r.to_input, r.text, r.media,
                                        MessageStatus.FAILED if failed else MessageStatus.QUEUED, r.error,
                                        dispatch_now=not failed and after is None,
                                        mark_chat_read=r.mark_chat_read))
    status = job_status([m.status for m in accepted])
    s.execute(_INSERT_JOB, {"id": job_id, "session_id": session_id, "kind": kind, "status": status.value,
                            "total": len(recipients), "callback_url": callback_url, "api_key_id": api_key_id,
                            "created_at": now, "updated_at": now,
                            "finished_at": now if status in (JobStatus.FAILED, JobStatus.COMPLETED) else None})
    if rows:
        s.execute(_INSERT_MESSAGES, rows)
    return Accepted(job_id, accepted, now)


# A session READY but not sending this long while a message waits for it is reported
# (``NOT_SENDING`` in /status, health ``degraded``, the ``wa_sessions_not_sending`` metric).
NOT_SENDING = "NOT_SENDING"


def stuck_sessions(s: Session, stuck_after: timedelta, session_id: str | None = None,
                   now: datetime | None = None) -> dict[str, datetime]:
    """READY sessions that cannot send: a message of theirs was dispatched more than
    ``stuck_after`` ago and still waits unsent (queued, or sending without an outcome),
    and nothing happened to the session (no send, no change of state) for as long.
    Messages that wait for a reason (``scheduled``: pacing, a cap, a retry, a restriction)
    do not count. Answers session id -> the first dispatch of its oldest such message."""
    now = now or utcnow()
    before = now - stuck_after
    query = (select(Message.session_id, func.min(Message.dispatched_at))
             .join(WhatsAppSession, WhatsAppSession.session_id == Message.session_id)
             .where(WhatsAppSession.status == SessionStatus.READY.value,
                    Message.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]),
                    Message.dispatched_at < before,
                    or_(WhatsAppSession.last_activity.is_(None), WhatsAppSession.last_activity < before))
             .group_by(Message.session_id))
    if session_id is not None:
        query = query.where(Message.session_id == session_id)
    return dict(s.execute(query).all())
