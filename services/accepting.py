"""Accepting a send, the same way for the REST endpoints and for the Celery task that
Python services call: check the session, honour the Idempotency-Key, write the job and
its messages in one transaction, and only then enqueue the messages that may go now.

Nothing accepted is lost: the rows are committed before the answer, and a message whose
enqueue fails (Redis away) is dispatched by the sweeper when it is due.

Inline media (base64 in the request) are stored in the media store (``storage.media``)
before the rows are written; the rows and the tasks carry their references. A store that
does not answer refuses the send (503) before anything is written.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

from celery import Celery
from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from messaging import dispatch
from messaging.dispatch import ENQUEUE_ERRORS
from models import IdempotencyKey, SessionStatus, WhatsAppSession, seed_timestamp, utcnow
from models.access import Scope
from models.optouts import ANY_LISTED, OPTED_OUT, listed_forms, listed_numbers
from models.sends import Accepted, Recipient, accept_messages
from models.states import NOT_READY_MESSAGE
from services.requests import idempotency_key_problem
from settings import Settings
from storage.media import MediaStore, MediaStoreError

log = logging.getLogger("services.accepting")

SESSION_NOT_FOUND = "Session not found"
KEY_REUSED = "Idempotency-Key was already used with a different request"
MEDIA_NOT_STORED = "The media store does not answer: the media were not stored. Please try again later."


class AcceptError(Exception):
    """A send refused before anything was written: ``status`` is the HTTP status to answer
    (400 not ready, 404 no such session, 409 an idempotency key reused for another request)
    and ``message`` the seed's error text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key as stored: whose (``scope``), the key, and the SHA-256 (hex) of
    the request it was first used for."""

    scope: str  # whose key: a digest of the API key, or the caller of the Celery task
    key: str
    request_hash: str

    @classmethod
    def of(cls, scope: str, key: str | None, what: str, body: dict) -> "Idempotency | None":
        """The idempotency of a request (``what``: which kind of send, ``body``: its JSON), or
        None without a key; ValueError when the key is not an acceptable one."""
        if not key:
            return None
        if why := idempotency_key_problem(key):  # the API refuses it before; a Celery caller is told here
            raise ValueError(f"Idempotency-Key: {why}")
        canonical = json.dumps({"what": what, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
        return cls(scope, key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass
class Acceptance:
    """The answer to a send: HTTP status and body, whether it replays an earlier answer
    for the same Idempotency-Key, and what was written (None on a replay)."""

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
                                      media=m.media, pacing=pacing, mark_chat_read=m.mark_chat_read,
                                      first_dispatch=self.accepted.created_at.timestamp())
                sent += 1
            except ENQUEUE_ERRORS as exc:
                log.warning("message=%s not enqueued now (%s); the sweeper dispatches it", m.id, exc)
                break  # Redis is away: the rest would fail the same way
        return sent


def accept_send(db: sessionmaker, settings: Settings, session_id: str, kind: str, recipients: list[Recipient],
                *, scope: Scope, callback_url: str | None = None, idempotency: Idempotency | None = None,
                media_store: MediaStore | None = None) -> Acceptance:
    """Persist a send (single or bulk) for a caller of ``scope``; raises AcceptError for the
    client's mistakes (404 for a session outside its scope, as for one that does not exist)
    and 503 when inline media cannot be stored.

    Inline media (``{"filename", "mimetype", "data": base64}`` items of ``Recipient.media``)
    go to ``media_store`` first (required when there are any); the rows hold their
    references. A replay of an Idempotency-Key stores nothing, and the objects of a send
    that is refused are deleted again; after any other error (it may have come after the
    commit) they are left to expire."""
    stored: list[str] = []
    if any("data" in item for r in recipients for item in r.media or []):
        if idempotency is not None:
            with db.begin() as s:  # a replay stores nothing
                if (replay := _replay(s, idempotency, utcnow(), lock=False)) is not None:
                    return replay
        recipients, stored = store_inline_media(media_store, recipients)
    try:
        try:
            acceptance = _accept(db, settings, session_id, kind, recipients, scope, callback_url, idempotency)
        except IntegrityError:
            if idempotency is None:
                raise
            # The same key arrived twice at once; the other request has committed by now.
            acceptance = _accept(db, settings, session_id, kind, recipients, scope, callback_url, idempotency)
    except (AcceptError, IntegrityError):  # refused: nothing was written
        forget_media(media_store, stored)
        raise
    # Any other error (the database lost during COMMIT) may come after the rows committed:
    # their media stay, and expire if the rows are not there.
    if acceptance.replayed:
        forget_media(media_store, stored)
    return acceptance


def _replay(s, idempotency: Idempotency, now, *, lock: bool) -> Acceptance | None:
    """The first answer to this key, or None when the key is new (or expired: with ``lock``
    it is then forgotten, so it may be used afresh). Raises AcceptError (409) for a key
    used with another request."""
    seen = s.get(IdempotencyKey, (idempotency.scope, idempotency.key), with_for_update=True if lock else None)
    if seen is None:
        return None
    if seen.expires_at <= now:
        if lock:
            s.delete(seen)
            s.flush()
        return None
    if seen.request_hash != idempotency.request_hash:
        raise AcceptError(409, KEY_REUSED)
    return Acceptance(seen.status_code, with_seed_timestamps(seen.response), replayed=True)


def with_seed_timestamps(body: dict) -> dict:
    """A stored answer with its results' times in the seed's format (answers stored before
    it was the one format carry ``+00:00`` and microseconds)."""
    results = body.get("results")
    if not isinstance(results, list):
        return body
    return {**body, "results": [{**r, "timestamp": seed_timestamp(r["timestamp"])} if r.get("timestamp") else r
                                for r in results]}


@functools.lru_cache(maxsize=1024)  # a few per API key: statements are built once
def _session_to_send_from(scope: Scope) -> Select:
    """The session ``session_id`` as a send needs it (status, slot, epoch, pacing) if
    ``scope`` may see it, and whether any of ``opt_out_forms`` is on its opt-out list
    (``any_opted_out``)."""
    return (select(WhatsAppSession.status, WhatsAppSession.slot, WhatsAppSession.epoch, WhatsAppSession.pacing,
                   ANY_LISTED)
            .where(WhatsAppSession.session_id == bindparam("session_id"), scope.sessions()))


def _accept(db, settings, session_id, kind, recipients, scope, callback_url, idempotency) -> Acceptance:
    now = utcnow()
    with db.begin() as s:
        if idempotency is not None and (replay := _replay(s, idempotency, now, lock=True)) is not None:
            return replay
        # A number on the session's opt-out list fails at once and never reaches a slot;
        # whether any is listed is read with the session (which ones, only then).
        forms = listed_forms(r.to for r in recipients if not r.error)
        session = s.execute(_session_to_send_from(scope),
                            {"session_id": session_id, "opt_out_forms": list(forms)}).first()
        if session is None:
            raise AcceptError(404, SESSION_NOT_FOUND)
        if session.status != SessionStatus.READY or not session.slot:
            raise AcceptError(400, NOT_READY_MESSAGE)
        opted_out = listed_numbers(s, session_id, forms) if session.any_opted_out else set()
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


def store_inline_media(store: MediaStore | None, recipients: list[Recipient]) -> tuple[list[Recipient], list[str]]:
    """The recipients with each inline item (``{"filename", "mimetype", "data": base64}``)
    replaced by its reference in ``store`` (``StoredMedia.as_item()``), and the references
    stored. The same bytes are stored once per call. Raises AcceptError (503), having
    deleted what it stored, when the store does not take them."""
    if store is None:
        raise RuntimeError("inline media need a media store")
    by_digest: dict[str, dict] = {}
    try:
        out = []
        for r in recipients:
            items = []
            for item in r.media or []:
                if "data" not in item:
                    items.append(item)
                    continue
                data = base64.b64decode(item["data"])
                digest = hashlib.sha256(data).hexdigest()
                if digest not in by_digest:
                    by_digest[digest] = store.put(data, item["mimetype"], item["filename"]).as_item()
                items.append({**by_digest[digest], "filename": item["filename"], "mimetype": item["mimetype"]})
            out.append(replace(r, media=items) if r.media else r)
    except MediaStoreError as exc:
        log.warning("send refused: %s", exc)
        forget_media(store, [item["ref"] for item in by_digest.values()])
        raise AcceptError(503, MEDIA_NOT_STORED) from None
    return out, [item["ref"] for item in by_digest.values()]


def forget_media(store: MediaStore | None, refs: list[str]) -> None:
    """Delete media stored for a send that was not written; one that stays expires."""
    if not refs or store is None:
        return
    try:
        store.delete(refs)
    except MediaStoreError as exc:
        log.warning("%d media objects of a send not written are left to expire: %s", len(refs), exc)


def response_body(kind: str, session_id: str, accepted: Accepted) -> dict:
    """The seed's response body for an accepted send: ``kind`` "single" (one message) or
    "bulk" (per-message results; numbers refused on their own count as failed sends)."""
    if kind == "single":
        m = accepted.messages[0]
        body = {"success": m.error is None, "job_id": accepted.job_id, "message_id": m.id, "session_id": session_id,
                "status": m.status.value}
        if m.error:  # refused at acceptance (an opted-out recipient)
            body["error"] = m.error
        return body
    results = [{
        "message_id": m.id, "to": m.to_input, "status": "failed" if m.error else "pending",
        "message_status": m.status.value, "error": m.error, "timestamp": seed_timestamp(accepted.created_at),
    } for m in accepted.messages]
    failed = sum(1 for m in accepted.messages if m.error)
    return {
        "success": failed < len(results), "job_id": accepted.job_id, "session_id": session_id,
        "status": "failed" if failed == len(results) else "queued", "total_messages": len(results),
        "successful_sends": 0, "failed_sends": failed, "results": results, "duration": "0.0 seconds",
    }
