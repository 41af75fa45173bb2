"""Accepting a send, the same way for the REST endpoints and for the Celery task that
Python services call: check the session, honour the Idempotency-Key, write the job and
its messages in one transaction, and only then enqueue the messages that may go now.

Nothing accepted is lost: the rows are committed before the answer, and a message whose
enqueue fails (Redis away) is dispatched by the sweeper when it is due.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from messaging import dispatch
from messaging.dispatch import ENQUEUE_ERRORS
from models import IdempotencyKey, SessionStatus, WhatsAppSession, utcnow
from models.access import Scope
from models.optouts import OPTED_OUT, opted_out_numbers
from models.sends import Accepted, Recipient, accept_messages
from models.states import NOT_READY_MESSAGE
from services.requests import idempotency_key_problem
from settings import Settings

log = logging.getLogger("services.accepting")

SESSION_NOT_FOUND = "Session not found"
KEY_REUSED = "Idempotency-Key was already used with a different request"


class AcceptError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Idempotency:
    scope: str  # whose key: a digest of the API key, or the caller of the Celery task
    key: str
    request_hash: str

    @classmethod
    def of(cls, scope: str, key: str | None, what: str, body: dict) -> "Idempotency | None":
        if not key:
            return None
        if why := idempotency_key_problem(key):  # the API refuses it before; a Celery caller is told here
            raise ValueError(f"Idempotency-Key: {why}")
        canonical = json.dumps({"what": what, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
        return cls(scope, key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass
class Acceptance:
    status_code: int
    body: dict
    replayed: bool = False
    accepted: Accepted | None = None
    _target: tuple | None = field(default=None, repr=False)  # (slot, epoch, pacing)

    def dispatch(self, celery: Celery) -> int:
        """Enqueue the messages that may go now; an enqueue that fails is left to the sweeper."""
        if self.accepted is None or self._target is None:
            return 0
        slot, epoch, pacing = self._target
        sent = 0
        for m in self.accepted.messages:
            if not m.dispatch_now:
                continue
            try:
                dispatch.send_message(celery, slot=slot, message_id=m.id, job_id=self.accepted.job_id,
                                      session_id=self.body["session_id"], epoch=epoch, to=m.to, text=m.text,
                                      media=m.media, pacing=pacing, mark_chat_read=m.mark_chat_read)
                sent += 1
            except ENQUEUE_ERRORS as exc:
                log.warning("message=%s not enqueued now (%s); the sweeper dispatches it", m.id, exc)
                break  # Redis is away: the rest would fail the same way
        return sent


def accept_send(db: sessionmaker, settings: Settings, session_id: str, kind: str, recipients: list[Recipient],
                *, scope: Scope, callback_url: str | None = None,
                idempotency: Idempotency | None = None) -> Acceptance:
    """Persist a send (single or bulk) for a caller of ``scope``; raises AcceptError for the
    client's mistakes (404 for a session outside its scope, as for one that does not exist)."""
    try:
        return _accept(db, settings, session_id, kind, recipients, scope, callback_url, idempotency)
    except IntegrityError:
        if idempotency is None:
            raise
        # The same key arrived twice at once; the other request has committed by now.
        return _accept(db, settings, session_id, kind, recipients, scope, callback_url, idempotency)


def _accept(db, settings, session_id, kind, recipients, scope, callback_url, idempotency) -> Acceptance:
    now = utcnow()
    with db.begin() as s:
        if idempotency is not None:
            seen = s.get(IdempotencyKey, (idempotency.scope, idempotency.key), with_for_update=True)
            if seen is not None and seen.expires_at > now:
                if seen.request_hash != idempotency.request_hash:
                    raise AcceptError(409, KEY_REUSED)
                return Acceptance(seen.status_code, seen.response, replayed=True)
            if seen is not None:  # expired: the key may be used afresh
                s.delete(seen)
                s.flush()
        session = s.execute(select(WhatsAppSession.status, WhatsAppSession.slot, WhatsAppSession.epoch,
                                   WhatsAppSession.pacing)
                            .where(WhatsAppSession.session_id == session_id, scope.sessions())).first()
        if session is None:
            raise AcceptError(404, SESSION_NOT_FOUND)
        if session.status != SessionStatus.READY or not session.slot:
            raise AcceptError(400, NOT_READY_MESSAGE)
        # A number on the session's opt-out list fails at once and never reaches a slot.
        opted_out = opted_out_numbers(s, session_id, [r.to for r in recipients if not r.error])
        recipients = [replace(r, error=OPTED_OUT) if not r.error and r.to in opted_out else r for r in recipients]
        accepted = accept_messages(s, session_id, kind, recipients,
                                   now + timedelta(seconds=settings.dispatch_grace_seconds), callback_url,
                                   api_key_id=scope.key_id)
        body = response_body(kind, session_id, accepted)
        if idempotency is not None:
            s.add(IdempotencyKey(scope=idempotency.scope, key=idempotency.key,
                                 request_hash=idempotency.request_hash, status_code=202, response=body,
                                 job_id=accepted.job_id, created_at=now,
                                 expires_at=now + timedelta(hours=settings.idempotency_hours)))
            s.flush()
    return Acceptance(202, body, accepted=accepted, _target=(session.slot, session.epoch, session.pacing))


def response_body(kind: str, session_id: str, accepted: Accepted) -> dict:
    if kind == "single":
        m = accepted.messages[0]
        body = {"success": m.error is None, "job_id": accepted.job_id, "message_id": m.id, "session_id": session_id,
                "status": m.status.value}
        if m.error:  # refused at acceptance (an opted-out recipient)
            body["error"] = m.error
        return body
    results = [{
        "message_id": m.id, "to": m.to_input, "status": "failed" if m.error else "pending",
        "message_status": m.status.value, "error": m.error, "timestamp": accepted.created_at.isoformat(),
    } for m in accepted.messages]
    failed = sum(1 for m in accepted.messages if m.error)
    return {
        "success": failed < len(results), "job_id": accepted.job_id, "session_id": session_id,
        "status": "failed" if failed == len(results) else "queued", "total_messages": len(results),
        "successful_sends": 0, "failed_sends": failed, "results": results, "duration": "0.0 seconds",
    }
