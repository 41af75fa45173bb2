"""/webjs/sessions: create, initialize, QR, status, send, delete, active."""
from __future__ import annotations

import logging
from datetime import timedelta

import redis
from flask import after_this_request, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import (
    ActiveSessionsSchema, BulkResultSchema, BulkSendSchema, CreateSessionSchema, DeletedSchema,
    MessagesPageSchema, MessagesQuerySchema, PairingCodeRequestSchema, PairingCodeSchema, QrSchema,
    SendMessageSchema, SendQuerySchema, SendResultSchema, SessionSchema, SessionStatusSchema, UpdateSessionSchema,
    encode_cursor,
)
from api.waits import Waiter
from messaging import dispatch, slots
from messaging.dispatch import ENQUEUE_ERRORS
from messaging.events import message_channel, session_channel
from models import MessageStatus, SessionStatus, WhatsAppSession
from models.access import Scope
from models.placement import NoSlot, Placement, place
from models.recording import change_session_status
from models.sends import NOT_SENDING, Recipient, stuck_sessions
from models.states import BROWSER_KEPT_REASONS, LIVE_SESSION_STATES, MESSAGE_DONE
from models.tables import IncomingMessage, placed_and_live
from services.accepting import Acceptance, AcceptError, Idempotency, accept_send

log = logging.getLogger("api.sessions")
blp = Blueprint("sessions", __name__, url_prefix="/webjs/sessions", description="WhatsApp sessions")

NOT_FOUND = "Session not found"
OUT_OF_SCOPE = "This user_id is outside the scope of this API key."
QR_NOT_AVAILABLE = "QR code not available. Please initialize the client first."
CAPACITY_FULL = "Maximum concurrent sessions reached. Please try again later."
NO_SLOTS = "No browser worker is available. Please try again later."
ALREADY_LINKED = "Session is already authenticated."
NOT_INITIALIZED = "Session is not initialized. Please initialize the client first."


def services():
    return current_app.extensions["wa"]


def current_scope() -> Scope:
    """The caller's scope (set from its API key before the request ran)."""
    return g.scope


def get_session(s: Session, session_id: str, *, lock: bool = False) -> WhatsAppSession:
    """The session, if the caller's scope covers it; else 404, as if it did not exist."""
    query = select(WhatsAppSession).where(WhatsAppSession.session_id == session_id, current_scope().sessions())
    row = s.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        abort(404, message=NOT_FOUND)
    return row


def destroy_session(s: Session, row: WhatsAppSession) -> None:
    """Stop its browser (if placed), record DESTROYED, remove the row."""
    if row.slot:
        try:
            dispatch.stop_session(services().celery, slot=row.slot, session_id=row.session_id,
                                  epoch=row.epoch, forget=True)
        except ENQUEUE_ERRORS as exc:  # the slot's orphan cleanup stops it later
            log.warning("session=%s stop could not be enqueued: %s", row.session_id, exc)
    change_session_status(s, row, SessionStatus.DESTROYED, reason="DELETED")
    s.delete(row)
    session_id = row.session_id

    @after_this_request
    def forget_saved_login(response):
        """Once the deletion is committed, its archives go too (also when no slot is alive)."""
        if response.status_code < 400:
            from api.health import probes

            store = probes().profile_store()
            try:
                if store is not None:
                    store.delete(session_id)
            except Exception as exc:  # the slot deletes them too when it stops the browser
                log.warning("session=%s archives not deleted: %s", session_id, exc)
        return response


def qr_response(row: WhatsAppSession) -> dict:
    return {"session_id": row.session_id, "qr_code": row.qr_code or "", "status": row.status}


@blp.route("")
class Sessions(MethodView):
    @blp.arguments(CreateSessionSchema)
    @blp.response(201, SessionSchema)
    def post(self, body):
        """Create a session for a user; an existing session of that user is replaced."""
        scope = current_scope()
        if not scope.covers(body["user_id"]):
            abort(403, message=OUT_OF_SCOPE)
        with services().db.begin() as s:
            user_id = body["user_id"]
            old = s.execute(select(WhatsAppSession).where(
                (WhatsAppSession.user_id == user_id) | (WhatsAppSession.session_id == user_id)
            ).with_for_update()).scalars().all()
            for row in old:
                log.info("session=%s replaced by a new session for user %s", row.session_id, user_id)
                destroy_session(s, row)
            s.flush()
            row = WhatsAppSession(user_id=user_id, session_id=user_id,
                                  session_name=body.get("session_name") or f"WhatsApp for {user_id}",
                                  status=SessionStatus.INITIALIZING.value,
                                  callback_url=body.get("callback_url"), pacing=body.get("pacing") or None,
                                  api_key_id=scope.key_id)
            s.add(row)
        return row


@blp.route("/active")
class ActiveSessions(MethodView):
    @blp.response(200, ActiveSessionsSchema)
    def get(self):
        """Sessions with a browser running or starting."""
        with services().db() as s:
            ids = s.execute(select(WhatsAppSession.session_id).where(placed_and_live(), current_scope().sessions())
                            .order_by(WhatsAppSession.created_at)).scalars().all()
        return {"active_sessions": ids, "count": len(ids)}


def place_or_abort(s, row: WhatsAppSession, *, reason: str, prefer: str | None = None) -> Placement:
    try:
        live = slots.live_slots(services().redis)
    except redis.RedisError as exc:
        log.warning("slots unavailable: %s", exc)
        abort(503, message=NO_SLOTS)
    try:
        return place(s, row, live, reason=reason, prefer=prefer)
    except NoSlot as exc:
        abort(503, message=CAPACITY_FULL if exc.full else NO_SLOTS)


def start_placed(placement: Placement) -> None:
    """Enqueue the browser start of a committed placement (and the stop of a browser that
    may still run on the old place). The worker's first events carry the new epoch, which
    the recorder would refuse as stale had the row not committed it yet."""
    svc = services()
    try:
        if placement.previous:
            dispatch.stop_session(svc.celery, slot=placement.previous[0], session_id=placement.session_id,
                                  epoch=placement.previous[1], forget=False)
        dispatch.initialize_session(svc.celery, slot=placement.slot, session_id=placement.session_id,
                                    epoch=placement.epoch)
    except ENQUEUE_ERRORS as exc:
        log.warning("session=%s start could not be enqueued: %s", placement.session_id, exc)
        with svc.db.begin() as s:
            row = get_session(s, placement.session_id, lock=True)
            if row.epoch == placement.epoch:  # give the place back, so that a retry places it again
                change_session_status(s, row, SessionStatus.DISCONNECTED, reason="QUEUE_UNAVAILABLE")
        abort(503, message="Queue unavailable. Please try again later.")


@blp.route("/<session_id>/initialize")
class Initialize(MethodView):
    @blp.response(200, QrSchema)
    def post(self, session_id):
        """Start the WhatsApp client on a browser slot; the QR follows on /qr."""
        with services().db.begin() as s:
            row = get_session(s, session_id, lock=True)
            if row.slot and row.status in LIVE_SESSION_STATES:
                return qr_response(row)  # already starting or running
            placement = place_or_abort(s, row, reason="INITIALIZE")
            answer = qr_response(row)
        start_placed(placement)
        return answer


@blp.route("/<session_id>/restart")
class Restart(MethodView):
    @blp.response(200, QrSchema)
    def post(self, session_id):
        """Stop the browser (its login is saved), then start it again from the saved login,
        on the same slot when it is alive and has room (the seed: for a stuck session)."""
        with services().db.begin() as s:
            row = get_session(s, session_id, lock=True)
            old = (row.slot, row.epoch) if row.slot else None
            placement = place_or_abort(s, row, reason="RESTART", prefer=row.slot)
            answer = qr_response(row)
        if old and placement.previous is None:  # same slot: its queue runs the stop first
            try:
                dispatch.stop_session(services().celery, slot=old[0], session_id=session_id, epoch=old[1],
                                      forget=False)
            except ENQUEUE_ERRORS as exc:
                log.warning("session=%s stop could not be enqueued: %s", session_id, exc)
        start_placed(placement)
        return answer


@blp.route("/<session_id>/qr")
class Qr(MethodView):
    @blp.response(200, QrSchema)
    def get(self, session_id):
        """The QR on screen; waits up to 30 s for one to appear."""
        svc = services()
        with Waiter(svc.redis, session_channel(session_id)) as waiter:
            with svc.db() as s:
                row = get_session(s, session_id)
            status = SessionStatus(row.status)
            if (status == SessionStatus.QR_READY and row.qr_code) or status in (
                    SessionStatus.AUTHENTICATED, SessionStatus.READY):
                return qr_response(row)
            if not row.slot or status not in LIVE_SESSION_STATES:
                abort(400, message=QR_NOT_AVAILABLE)
            event = waiter.until(lambda e: e.get("epoch") == row.epoch and "status" in e
                                 and e.get("status") != "INITIALIZING",
                                 svc.settings.qr_wait_seconds)
        if event is None:
            return qr_response(row)
        if event["status"] == SessionStatus.QR_READY and event.get("qr_code"):
            return {"session_id": session_id, "qr_code": event["qr_code"], "status": "QR_READY"}
        if event["status"] == SessionStatus.DISCONNECTED:
            abort(400, message=QR_NOT_AVAILABLE)
        return {"session_id": session_id, "qr_code": "", "status": event["status"]}


@blp.route("/<session_id>/pairing-code")
class PairingCode(MethodView):
    @blp.arguments(PairingCodeRequestSchema)
    @blp.response(200, PairingCodeSchema)
    def post(self, body, session_id):
        """Link with a phone number instead of a QR: the page's 8-character code, to type on that phone.

        The page re-issues the code every few minutes; the current one is in /status (pairing_code).
        """
        svc = services()
        with Waiter(svc.redis, session_channel(session_id)) as waiter:
            with svc.db() as s:
                row = get_session(s, session_id)
            status = SessionStatus(row.status)
            if status in (SessionStatus.AUTHENTICATED, SessionStatus.READY) or row.status_reason in BROWSER_KEPT_REASONS:
                abort(400, message=ALREADY_LINKED)
            if not row.slot or status not in (SessionStatus.INITIALIZING, SessionStatus.QR_READY):
                abort(400, message=NOT_INITIALIZED)
            try:
                dispatch.request_pairing_code(svc.celery, slot=row.slot, session_id=session_id,
                                              epoch=row.epoch, phone=body["phone_e164"])
            except ENQUEUE_ERRORS as exc:
                log.warning("session=%s pairing code could not be requested: %s", session_id, exc)
                abort(503, message="Queue unavailable. Please try again later.")

            def answer(e: dict) -> bool:
                if e.get("epoch") != row.epoch:
                    return False
                return bool(e.get("pairing_code")) or e.get("type") == "pairing_error" or e.get("status") in (
                    SessionStatus.AUTHENTICATED, SessionStatus.READY, SessionStatus.DISCONNECTED)

            event = waiter.until(answer, svc.settings.qr_wait_seconds)
        if event is None:
            abort(504, message="No pairing code was shown in time. Please try again.")
        if event.get("type") == "pairing_error":
            abort(400, message=event.get("error") or "The page refused the phone number.")
        if not event.get("pairing_code"):
            abort(409, message=f"The session became {event['status']} meanwhile.")
        return {"session_id": session_id, "pairing_code": event["pairing_code"],
                "phone_number": body["phone_e164"], "status": SessionStatus.QR_READY.value}


@blp.route("/<session_id>/status")
class Status(MethodView):
    @blp.response(200, SessionStatusSchema)
    def get(self, session_id):
        """The session's state as the recorder last wrote it, its browser's memory and the
        WhatsApp Web build its page runs."""
        svc = services()
        with svc.db() as s:
            row = get_session(s, session_id)
            stuck = stuck_sessions(s, timedelta(seconds=svc.settings.stuck_timeout_seconds), session_id)
        row.not_sending_since = stuck.get(session_id)
        if row.not_sending_since is not None:  # READY, but nothing goes out: said, not hidden
            row.status_reason = NOT_SENDING
        row.browser_memory_bytes = None
        row.web_version = None
        if row.slot:
            try:
                running = next((x for x in slots.live_slots(svc.redis) if x.name == row.slot), None)
            except redis.RedisError:
                running = None
            if running is not None:
                row.browser_memory_bytes = running.sessions.get(session_id)
                row.web_version = running.web_versions.get(session_id)
        return row


@blp.route("/<session_id>/messages")
class Messages(MethodView):
    @blp.arguments(MessagesQuerySchema, location="query")
    @blp.response(200, MessagesPageSchema)
    def get(self, query, session_id):
        """Messages the session received, oldest first, a page at a time: pass the answer's
        `next_cursor` as `after` to get the ones recorded since (polling services)."""
        with services().db() as s:
            get_session(s, session_id)
            rows = s.execute(select(IncomingMessage).where(
                IncomingMessage.session_id == session_id, IncomingMessage.seq > query["after_seq"],
            ).order_by(IncomingMessage.seq).limit(query["limit"])).scalars().all()
        return {"messages": [incoming_view(r) for r in rows],
                "next_cursor": encode_cursor(rows[-1].seq) if rows else query.get("after")}


def incoming_view(row: IncomingMessage) -> dict:
    """An incoming row as the API shows it (the shape of the message.received webhook)."""
    media = None
    if row.media_kind or row.media_mimetype:
        media = {"kind": row.media_kind, "mimetype": row.media_mimetype, "filename": row.media_filename,
                 "size": row.media_size}
    reply = None
    if row.in_reply_to_message_id:
        reply = {"message_id": row.in_reply_to_message_id, "job_id": row.in_reply_to_job_id}
    return {"message_id": row.id, "session_id": row.session_id, "direction": "in",
            "whatsapp_message_id": row.wa_message_id, "sender_number": row.sender_number,
            "from_wa_id": row.sender_wa_id, "type": row.type, "text": row.text, "media": media,
            "in_reply_to": reply, "received_at": row.received_at, "recorded_at": row.created_at}


@blp.route("/<session_id>/send-message")
class SendMessage(MethodView):
    @blp.arguments(SendMessageSchema)
    @blp.arguments(SendQuerySchema, location="query")
    @blp.response(202, SendResultSchema)
    @blp.alt_response(200, schema=SendResultSchema, description="With ?wait=N: the outcome.")
    def post(self, body, query, session_id):
        """Queue a text or media message. Answers 202 with the job; ?wait=N (up to 60 s) waits for the outcome.

        With an Idempotency-Key header, the same key and body answer the first response
        again (for 24 h); the same key with another body is 409.
        """
        svc = services()
        recipient = Recipient(to=body["to_e164"], to_input=body["to"], text=body["message"],
                              media=body["attachments"])
        acceptance = accepted_or_abort(session_id, "single", [recipient], body, "send-message")
        result = acceptance.body
        if acceptance.replayed:
            return result, acceptance.status_code, {"Idempotent-Replayed": "true"}
        message_id = result["message_id"]
        # The rows are committed: from here on the message cannot be lost, only delayed.
        # Redis trouble from here on must not turn an accepted message into an error:
        # the client would send it again. It is answered 202 and the sweeper dispatches it.
        wait = min(query["wait"], svc.settings.send_wait_max)
        waiter = None
        try:
            if wait > 0:  # subscribe before enqueueing, so the outcome cannot be missed
                waiter = Waiter(svc.redis, message_channel(message_id))
            acceptance.dispatch(svc.celery)
            if waiter is None:
                return result
            done = {s.value for s in MESSAGE_DONE}
            # The recorder's copy arrives after the commit, so a poll right after sees it too.
            event = waiter.until(lambda e: e.get("recorded") and e.get("status") in done, wait)
        except ENQUEUE_ERRORS as exc:
            log.warning("message=%s not awaited now (%s); the sweeper dispatches it", message_id, exc)
            return result
        finally:
            if waiter is not None:
                waiter.close()
        if event is None:
            return result
        ok = event["status"] != MessageStatus.FAILED
        return {**result, "success": ok, "status": event["status"],
                "whatsapp_message_id": event.get("wa_message_id"), "wa_id": event.get("wa_id"),
                "error": event.get("error")}, 200


@blp.route("/<session_id>/send-bulk-messages")
class SendBulk(MethodView):
    @blp.arguments(BulkSendSchema)
    @blp.response(202, BulkResultSchema)
    def post(self, body, session_id):
        """Queue up to 50 messages (BULK_MAX_MESSAGES), sent in the session's pace.

        A number that is not valid fails on its own ("Invalid phone number format"); the
        others go on. Answers 202 with the seed's result shape, as far as it is known;
        GET /webjs/jobs/{job_id} fills in as the messages go. Idempotency-Key as for
        send-message.
        """
        recipients = [Recipient(to=m["to_e164"], to_input=m["to"], text=m["message"], media=m["attachments"],
                                error=m["error"]) for m in body["messages"]]
        acceptance = accepted_or_abort(session_id, "bulk", recipients, body, "send-bulk-messages")
        if acceptance.replayed:
            return acceptance.body, acceptance.status_code, {"Idempotent-Replayed": "true"}
        acceptance.dispatch(services().celery)
        return acceptance.body


def accepted_or_abort(session_id: str, kind: str, recipients: list[Recipient], body: dict, what: str) -> Acceptance:
    svc = services()
    request_body = request.get_json(silent=True) or {}
    scope = current_scope()
    idempotency = Idempotency.of(scope.idempotency, request.headers.get("Idempotency-Key"),
                                 f"{what}:{session_id}", request_body)
    try:
        return accept_send(svc.db, svc.settings, session_id, kind, recipients, scope=scope,
                           callback_url=body.get("callback_url"), idempotency=idempotency)
    except AcceptError as exc:
        abort(exc.status, message=exc.message)


@blp.route("/<session_id>")
class SessionItem(MethodView):
    @blp.arguments(UpdateSessionSchema)
    @blp.response(200, SessionStatusSchema)
    def patch(self, body, session_id):
        """Change the session's callback_url or pacing (null: back to the defaults).
        Messages dispatched from now on use the new pacing."""
        with services().db.begin() as s:
            row = get_session(s, session_id, lock=True)
            if "callback_url" in body:
                row.callback_url = body["callback_url"]
            if "pacing" in body:
                row.pacing = body["pacing"] or None
            s.flush()
            return row

    @blp.response(200, DeletedSchema)
    def delete(self, session_id):
        """Stop the browser, forget the login, delete the session."""
        with services().db.begin() as s:
            destroy_session(s, get_session(s, session_id, lock=True))
        return {"success": True, "message": "Session deleted successfully", "deleted_count": 1}
