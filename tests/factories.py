"""Rows for tests, with defaults that make a valid row: pass only what the test is about.

    with db.begin() as s:
        session = make_session(s, status="READY", slot="slot-x")
        job, [msg] = make_job(s, session.session_id, messages=["919876543210"])

Ids are new each time (``unique_id``), so tests on a shared database do not collide.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable

from sqlalchemy.orm import Session

from models import Job, Message, WhatsAppSession


def unique_id(prefix: str = "user") -> str:
    """A fresh user/session id: ``<prefix>_<10 hex digits>``."""
    return f"{prefix}_{secrets.token_hex(5)}"


def make_session(s: Session, session_id: str | None = None, *, status: str = "READY", slot: str | None = "slot-x",
                 epoch: int = 1, **fields) -> WhatsAppSession:
    """A session row (its user id is its id), added to ``s`` and flushed."""
    session_id = session_id or unique_id()
    row = WhatsAppSession(user_id=fields.pop("user_id", session_id), session_id=session_id, status=status,
                          slot=slot, epoch=epoch, **fields)
    s.add(row)
    s.flush()
    return row


def make_job(s: Session, session_id: str, *, messages: Iterable[str | dict] = ("919876543210",),
             kind: str | None = None, **fields) -> tuple[Job, list[Message]]:
    """A job of ``session_id`` with one message per item of ``messages`` (a number, or the
    message's fields as a dict), added to ``s`` and flushed."""
    items = [m if isinstance(m, dict) else {"to": m} for m in messages]
    job = Job(session_id=session_id, kind=kind or ("single" if len(items) == 1 else "bulk"), total=len(items),
              **fields)
    s.add(job)
    rows = []
    for position, item in enumerate(items):
        to = item.pop("to", "919876543210")
        rows.append(Message(job=job, session_id=session_id, position=position, to=to,
                            to_input=item.pop("to_input", to), text=item.pop("text", f"message {position}"),
                            **item))
    s.add_all(rows)
    s.flush()
    return job, rows
