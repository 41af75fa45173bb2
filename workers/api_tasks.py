"""Sending from Python services that share the broker: the stable Celery tasks.

    celery.send_task("wa.api.send_message", kwargs={
        "session_id": "user_123", "to": "+919876543210", "message": "Hello",
        "idempotency_key": "order-42",            # optional, recommended
        "api_key": "wak_...",                     # optional: the caller's key and its scope
        "callback_url": "https://svc.example/hooks",  # optional
    })
    celery.send_task("wa.api.send_bulk_messages", kwargs={
        "session_id": "user_123", "messages": [{"to": "...", "message": "..."}]})

They run on the control worker and do exactly what the REST endpoints do, with the same
schemas and the same code (``services``): validate, persist (durable once the task is done), honour the
Idempotency-Key (the key's namespace, or "celery" without one), dispatch in the session's
pace. With ``api_key`` the call has that key's scope: a session outside it fails with
"404: Session not found". Without one the caller is trusted (it can write to the broker),
unless API_TASKS_REQUIRE_KEY is set. The return value is
the endpoint's 202 body (job_id, message ids); with results ignored, find the job through
the callback or by sending again with the same idempotency_key. Invalid input fails the
task with a ValueError that says why (visible in Flower).
"""
from __future__ import annotations

import logging

from marshmallow import ValidationError

from models.access import TRUSTED, Scope
from models.sends import Recipient
from services.accepting import AcceptError, Idempotency, accept_send
from services.requests import BulkSendSchema, SendMessageSchema, validating_with
from workers.app import celery
from workers.control_tasks import resources
from workers.wiring import ControlWiring

log = logging.getLogger("api.tasks")


def _scope(w: ControlWiring, api_key: str | None) -> Scope:
    """The caller's scope: its API key's, as over HTTP; without a key, a trusted caller
    (anyone who can write to the broker) unless API_TASKS_REQUIRE_KEY."""
    if api_key is None and not w.settings.api_tasks_require_key:
        return TRUSTED
    scope = w.keys.check(api_key)
    if scope is None:
        raise ValueError("401: Missing or invalid API key (api_key).")
    return scope


def _accept(kind: str, session_id: str, payload: dict, recipients_of, schema, idempotency_key: str | None,
            api_key: str | None) -> dict:
    """Validate, scope, persist and dispatch one send, as the REST endpoint does; returns
    the endpoint's 202 body. Raises ValueError ("<status>: <message>") when it is refused."""
    w = resources()
    scope = _scope(w, api_key)
    try:
        with validating_with(w.settings):
            body = schema().load(payload)
    except ValidationError as exc:
        raise ValueError(f"invalid send: {exc.messages}") from None
    what = "send-message" if kind == "single" else "send-bulk-messages"
    idempotency = Idempotency.of(scope.idempotency, idempotency_key, f"{what}:{session_id}", payload)
    try:
        acceptance = accept_send(w.db, w.settings, session_id, kind, recipients_of(body), scope=scope,
                                 callback_url=body.get("callback_url"), idempotency=idempotency,
                                 media_store=w.media_store)
    except AcceptError as exc:
        raise ValueError(f"{exc.status}: {exc.message}") from None
    if not acceptance.replayed:
        acceptance.dispatch(w.celery)
    log.info("session=%s %s accepted as job %s", session_id, kind, acceptance.body["job_id"])
    return acceptance.body


@celery.task(name="wa.api.send_message")
def send_message(session_id: str, to: str, message: str = "", media_urls: list[str] | None = None,
                 media: list[dict] | None = None, callback_url: str | None = None,
                 idempotency_key: str | None = None, api_key: str | None = None,
                 mark_chat_read: bool = False) -> dict:
    """One message, as ``POST /webjs/sessions/{session_id}/send-message``; returns its 202 body."""
    payload = {"to": to, "message": message, "media_urls": media_urls or [], "media": media or []}
    if mark_chat_read:
        payload["mark_chat_read"] = True
    if callback_url:
        payload["callback_url"] = callback_url
    return _accept("single", session_id, payload, lambda b: [Recipient(
        to=b["to_e164"], to_input=b["to"], text=b["message"], media=b["attachments"],
        mark_chat_read=b["mark_chat_read"])],
        SendMessageSchema, idempotency_key, api_key)


@celery.task(name="wa.api.send_bulk_messages")
def send_bulk_messages(session_id: str, messages: list[dict], callback_url: str | None = None,
                       idempotency_key: str | None = None, api_key: str | None = None) -> dict:
    """Up to BULK_MAX_MESSAGES messages, as ``POST /webjs/sessions/{session_id}/send-bulk-messages``."""
    payload = {"messages": messages}
    if callback_url:
        payload["callback_url"] = callback_url
    return _accept("bulk", session_id, payload, lambda b: [Recipient(
        to=m["to_e164"], to_input=m["to"], text=m["message"], media=m["attachments"], error=m["error"],
        mark_chat_read=m["mark_chat_read"]) for m in b["messages"]], BulkSendSchema, idempotency_key, api_key)
