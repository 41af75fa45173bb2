"""/webjs/sessions/{id}: number checks, the opt-out list, marking a chat read.

Number checks and chat reads need the session's page: the API enqueues a task on its
slot and waits (Redis pub/sub, as for the pairing code) for the slot's answer.
"""
from __future__ import annotations

import logging
import secrets

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from api.schemas import (
    ChatReadSchema, ContactCheckResultSchema, ContactCheckSchema, OptOutListSchema, OptOutRemovedSchema,
    OptOutResultSchema,
)
from api.sessions import QUEUE_UNAVAILABLE, get_session, services
from api.waits import Waiter
from messaging import dispatch
from messaging.contacts import ContactAnswer, ContactCache
from messaging.dispatch import ENQUEUE_ERRORS
from messaging.events import session_channel
from messaging.optouts import OptOutMirror
from models import SessionStatus, WhatsAppSession
from models.optouts import add_opt_out, find_opt_out, list_opt_outs, remove_opt_out
from models.phones import INVALID_PHONE, InvalidPhoneNumber, normalize_phone
from models.states import NOT_READY_MESSAGE

log = logging.getLogger("api.contacts")
blp = Blueprint("contacts", __name__, url_prefix="/webjs/sessions",
                description="Contacts: number checks, opt-outs, marking chats read")

NOT_CHECKED = "Not checked in time; ask again (answers are kept for CONTACT_CHECK_CACHE_SECONDS)."
NO_ANSWER = "The session's browser did not answer in time. Please try again."


def number_or_abort(raw: str) -> str:
    """A number from the path as E.164 digits; 422 when it is not a valid one."""
    try:
        return normalize_phone(raw, services().settings.default_region)
    except InvalidPhoneNumber:
        abort(422, messages={"number": [INVALID_PHONE]})


def ready_or_abort(row: WhatsAppSession) -> None:
    """400 with the seed's not-ready message unless the session is READY on a slot."""
    if row.status != SessionStatus.READY.value or not row.slot:
        abort(400, message=NOT_READY_MESSAGE)


def ask_slot(row: WhatsAppSession, kind: str, enqueue) -> dict | None:
    """Enqueue a task on the session's slot (``enqueue(request_id)``) and wait for its
    ``kind`` notice; None after SLOT_ANSWER_WAIT_SECONDS."""
    svc = services()
    request_id = secrets.token_hex(8)
    with Waiter(svc.redis, session_channel(row.session_id)) as waiter:
        try:
            enqueue(request_id)
        except ENQUEUE_ERRORS as exc:
            log.warning("session=%s %s could not be enqueued: %s", row.session_id, kind, exc)
            abort(503, message=QUEUE_UNAVAILABLE)
        event = waiter.until(lambda e: e.get("type") == kind and e.get("request_id") == request_id,
                             svc.settings.slot_answer_wait_seconds)
    if event is not None and event.get("not_ready"):
        abort(400, message=NOT_READY_MESSAGE)
    return event


@blp.route("/<session_id>/contacts/check")
class ContactCheck(MethodView):
    """POST /webjs/sessions/{session_id}/contacts/check."""

    @blp.arguments(ContactCheckSchema())
    @blp.response(200, ContactCheckResultSchema)
    def post(self, body, session_id):
        """Whether each number (up to 50) is on WhatsApp, and the id WhatsApp knows it by.

        Asked through the page's existence query on the session's slot, paced apart from
        sends (CONTACT_CHECK_MIN_GAP/MAX_GAP, hourly and daily caps); answers are kept per
        session for CONTACT_CHECK_CACHE_SECONDS. A number that is not valid, or that could
        not be checked in time, is answered on its own (``error``)."""
        svc = services()
        with svc.db() as s:
            row = get_session(s, session_id)
        ready_or_abort(row)
        items = []
        for raw in body["numbers"]:
            try:
                items.append((raw, normalize_phone(raw, svc.settings.default_region)))
            except InvalidPhoneNumber:
                items.append((raw, None))
        numbers = list(dict.fromkeys(n for _, n in items if n))
        cache = ContactCache(svc.redis, svc.settings.contact_check_cache_seconds)
        known = cache.get_many(session_id, numbers)
        cached = set(known)
        errors: dict[str, str] = {}
        missing = [n for n in numbers if n not in known]
        if missing:
            event = ask_slot(row, "contacts_checked", lambda rid: dispatch.check_numbers(
                svc.celery, slot=row.slot, session_id=session_id, epoch=row.epoch, request_id=rid, numbers=missing))
            answers = (event or {}).get("results") or {}
            known.update(cache.get_many(session_id, missing))  # what the slot kept, also when it answered late
            for n, a in answers.items():  # the answers themselves (kept for no time with a cache of 0 s)
                if n in missing and isinstance(a, dict) and isinstance(a.get("exists"), bool):
                    known.setdefault(n, ContactAnswer(a["exists"], a.get("wa_id"), a.get("checked_at")))
            errors = {n: a["error"] for n, a in answers.items() if isinstance(a, dict) and a.get("error")}
        results = []
        for raw, number in items:
            answer = known.get(number) if number else None
            results.append({
                "input": raw, "number": number, "valid": number is not None,
                "exists": answer.exists if answer else None, "wa_id": answer.wa_id if answer else None,
                "checked_at": answer.checked_at if answer else None, "cached": number in cached,
                "error": None if answer else (INVALID_PHONE if number is None else errors.get(number, NOT_CHECKED)),
            })
        return {"session_id": session_id, "results": results}


@blp.route("/<session_id>/opt-outs")
class OptOuts(MethodView):
    """GET /webjs/sessions/{session_id}/opt-outs."""

    @blp.response(200, OptOutListSchema)
    def get(self, session_id):
        """The session's opt-out list: numbers its messages no longer reach, oldest first."""
        with services().db() as s:
            get_session(s, session_id)
            rows = list_opt_outs(s, session_id)
        return {"session_id": session_id, "opt_outs": rows, "count": len(rows)}


@blp.route("/<session_id>/opt-outs/<number>")
class OptOutItem(MethodView):
    """POST and DELETE /webjs/sessions/{session_id}/opt-outs/{number}."""

    @blp.response(200, OptOutResultSchema)
    def post(self, session_id, number):
        """Put a number on the session's opt-out list: sends to it fail at once with
        "recipient opted out" (also those accepted before, when their turn comes). A
        ``contact.opted_out`` webhook goes to the session's callback_url."""
        svc = services()
        digits = number_or_abort(number)
        with svc.db.begin() as s:
            get_session(s, session_id)
            row = add_opt_out(s, session_id, digits, source="api", mirror=OptOutMirror(svc.redis))
            created = row is not None
            row = row or find_opt_out(s, session_id, digits)  # on the list already, maybe in another form
            answer = {"session_id": session_id, "number": row.number, "source": row.source,
                      "created_at": row.created_at, "created": created}
        return answer

    @blp.response(200, OptOutRemovedSchema)
    def delete(self, session_id, number):
        """Take a number (in every form of it) off the session's opt-out list: the next send to it goes."""
        svc = services()
        digits = number_or_abort(number)
        with svc.db.begin() as s:
            get_session(s, session_id)
            removed = remove_opt_out(s, session_id, digits, mirror=OptOutMirror(svc.redis))
        return {"session_id": session_id, "number": digits, "removed": removed}


@blp.route("/<session_id>/chats/<number>/read")
class ChatRead(MethodView):
    """POST /webjs/sessions/{session_id}/chats/{number}/read."""

    @blp.response(200, ChatReadSchema)
    def post(self, session_id, number):
        """Mark the chat with a number read, as a person reading the replies would: through
        the page's own sendSeen where it answers, else by opening the chat."""
        svc = services()
        digits = number_or_abort(number)
        with svc.db() as s:
            row = get_session(s, session_id)
        ready_or_abort(row)
        event = ask_slot(row, "chat_read", lambda rid: dispatch.mark_chat_read(
            svc.celery, slot=row.slot, session_id=session_id, epoch=row.epoch, request_id=rid, phone=digits))
        if event is None:
            abort(504, message=NO_ANSWER)
        if not event.get("ok"):
            abort(409, message=event.get("error") or "The page could not mark the chat read.")
        return {"session_id": session_id, "number": digits, "marked_read": True, "route": event.get("route")}
