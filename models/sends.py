"""Accepting sends: the rows that make a request durable, written in one transaction.

Core inserts rather than ORM objects: this is the API's hot path.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from models.states import JobStatus, MessageStatus
from models.tables import Job, Message, new_id, utcnow


@dataclass(frozen=True)
class Recipient:
    to: str  # E.164 digits
    to_input: str  # as the client wrote it
    text: str
    media: list[dict] | None = None  # [{"url": ...}] or [{"filename", "mimetype", "data"}]


@dataclass(frozen=True)
class Accepted:
    job_id: str
    message_ids: list[str]


def accept_messages(s: Session, session_id: str, kind: str, recipients: list[Recipient],
                    dispatch_due_at: datetime | None) -> Accepted:
    now = utcnow()
    job_id = new_id("job")
    s.execute(insert(Job).values(id=job_id, session_id=session_id, kind=kind, status=JobStatus.QUEUED.value,
                                 total=len(recipients), created_at=now, updated_at=now))
    rows = [{
        "id": new_id("msg"), "job_id": job_id, "session_id": session_id, "position": i, "to": r.to,
        "to_input": r.to_input, "text": r.text, "media": r.media or None, "status": MessageStatus.QUEUED.value, "attempts": 0,
        "dispatch_due_at": dispatch_due_at, "created_at": now, "updated_at": now,
    } for i, r in enumerate(recipients)]
    s.execute(insert(Message), rows)
    return Accepted(job_id, [r["id"] for r in rows])
