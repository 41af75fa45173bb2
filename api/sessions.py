"""/webjs/sessions: create, initialize, QR, status, send, delete, active."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import redis
from flask import after_this_request, current_app, g, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import (
    ActiveSessionsSchema, BulkResultSchema, BulkSendSchema, CreateSessionSchema, DeletedSchema, LinkPageSchema,
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
from services.link_tokens import link_secret, make_token

log = logging.getLogger("api.sessions")
blp = Blueprint("sessions", __name__, url_prefix="/webjs/sessions", description="WhatsApp sessions")

NOT_FOUND = "Session not found"
OUT_OF_SCOPE = "This user_id is outside the scope of this API key."
QR_NOT_AVAILABLE = "QR code not available. Please initialize the client first."
CAPACITY_FULL = "Maximum concurrent sessions reached. Please try again later."
NO_SLOTS = "No browser worker is available. Please try again later."
ALREADY_LINKED = "Session is already authenticated."
NOT_INITIALIZED = "Session is not initialized. Please initialize the client first."
QUEUE_UNAVAILABLE = "Queue unavailable. Please try again later."


def services():
    """The app's Services (``create_app``)."""
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
    """The QR answer (QrSchema) from the session's row: its QR image, "" when none is shown."""
    return {"session_id": row.session_id, "qr_code": row.qr_code or "", "status": row.status}


@blp.route("")
class Sessions(MethodView):
    """POST /webjs/sessions."""

    @blp.arguments(CreateSessionSchema())
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
    """GET /webjs/sessions/active."""

    @blp.response(200, ActiveSessionsSchema)
    def get(self):
        """Sessions with a browser running or starting."""
        with services().db() as s:
            ids = s.execute(select(WhatsAppSession.session_id).where(placed_and_live(), current_scope().sessions())
                            .order_by(WhatsAppSession.created_at)).scalars().all()
        return {"active_sessions": ids, "count": len(ids)}


def place_or_abort(s, row: WhatsAppSession, *, reason: str, prefer: str | None = None) -> Placement:
    """Place the session on a live slot (``models.placement.place``); 503 when Redis does
    not answer, no slot is live or every slot is full. ``s``: the request's transaction."""
    try:
        live = slots.live_slots(services().redis)
    except redis.RedisError as exc:
        log.warning("slots unavailable: %s", exc)
        abort(503, message=NO_SLOTS)
    try:
        return place(s, row, live, reason=reason, prefer=prefer)
    except NoSlot as exc:
        abort(503, message=CAPACITY_FULL if exc.full else NO_SLOTS)


def start_placed(placement: Placement, *, stop: tuple[str, int] | None = None) -> None:
    """Enqueue the browser start of a committed placement (and the stop of a browser that
    may still run on the old place, or on ``stop``). The worker's first events carry the
    new epoch, which the recorder would refuse as stale had the row not committed it yet.
    A broker that is away: the place is given back (DISCONNECTED, QUEUE_UNAVAILABLE) and
    the answer is 503."""
    svc = services()
    try:
        dispatch.start_placement(svc.celery, placement, stop=stop)
    except ENQUEUE_ERRORS as exc:
        log.warning("session=%s start could not be enqueued: %s", placement.session_id, exc)
        with svc.db.begin() as s:
            row = get_session(s, placement.session_id, lock=True)
            if row.epoch == placement.epoch:  # give the place back, so that a retry places it again
                change_session_status(s, row, SessionStatus.DISCONNECTED, reason="QUEUE_UNAVAILABLE")
        abort(503, message=QUEUE_UNAVAILABLE)


def start_session(session_id: str) -> tuple[dict, int]:
    """Place the session on a browser slot and start it, unless it is already starting or
    running; the answer as it stands now and the placement's epoch."""
    with services().db.begin() as s:
        row = get_session(s, session_id, lock=True)
        if row.slot and row.status in LIVE_SESSION_STATES:
            return qr_response(row), row.epoch  # already starting or running
        placement = place_or_abort(s, row, reason="INITIALIZE")
        answer = qr_response(row)
    start_placed(placement)
    return answer, placement.epoch


def first_qr(event: dict, epoch: int) -> bool:
    """Whether a recorded event of this placement ends initialize's wait: its first QR, or
    a state past the QR (a saved login), or the end of the attempt. Recorded copies only,
    so that a /status read right after the answer says the same."""
    if not event.get("recorded") or event.get("epoch") != epoch or event.get("type", "session") != "session":
        return False
    status = event.get("status")
    if status == SessionStatus.QR_READY:
        return bool(event.get("qr_code"))
    return status in (SessionStatus.AUTHENTICATED, SessionStatus.READY, SessionStatus.DISCONNECTED)


@blp.route("/<session_id>/initialize")
class Initialize(MethodView):
    """POST /webjs/sessions/{session_id}/initialize."""

    @blp.response(200, QrSchema)
    def post(self, session_id):
        """Start the WhatsApp client on a browser slot; answers with its first QR (QR_READY).

        Waits up to INITIALIZE_QR_WAIT (10 s) for the first QR, or for READY when a saved
        login needs none; INITIALIZING when neither came in time. Later QRs are on /qr.
        """
        svc = services()
        wait = svc.settings.initialize_qr_wait
        waiter = None
        try:
            if wait > 0:  # subscribe before the start, so that the first QR cannot be missed
                try:
                    waiter = Waiter(svc.redis, session_channel(session_id))
                except redis.RedisError as exc:  # the start itself says whether the queue answers
                    log.warning("session=%s initialize does not wait for the QR: %s", session_id, exc)
            answer, epoch = start_session(session_id)
            if waiter is None or answer["status"] != SessionStatus.INITIALIZING:
                return answer
            event = waiter.until(lambda e: first_qr(e, epoch), wait)
        finally:
            if waiter is not None:
                waiter.close()
        if event is None:
            return answer
        return {"session_id": session_id, "qr_code": event.get("qr_code") or "", "status": event["status"]}


@blp.route("/<session_id>/restart")
class Restart(MethodView):
    """POST /webjs/sessions/{session_id}/restart."""

    @blp.response(200, QrSchema)
    def post(self, session_id):
        """Stop the browser (its login is saved), then start it again from the saved login,
        on the same slot when it is alive and has room (the seed: for a stuck session)."""
        with services().db.begin() as s:
            row = get_session(s, session_id, lock=True)
            old = (row.slot, row.epoch) if row.slot else None
            placement = place_or_abort(s, row, reason="RESTART", prefer=row.slot)
            answer = qr_response(row)
        start_placed(placement, stop=placement.previous or old)  # same slot: its queue runs the stop first
        return answer


@blp.route("/<session_id>/qr")
class Qr(MethodView):
    """GET /webjs/sessions/{session_id}/qr."""

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
    """POST /webjs/sessions/{session_id}/pairing-code."""

    @blp.arguments(PairingCodeRequestSchema())
    @blp.response(200, PairingCodeSchema)
    def post(self, body, session_id):
        """Link with a phone number instead of a QR: the page's 8-character code, to type on that phone.

        The page re-issues the code every few minutes; the current one is in /status (pairing_code).
        """
        return request_pairing_code(session_id, body["phone_e164"])


def request_pairing_code(session_id: str, phone_e164: str) -> dict:
    """Ask the session's page for a pairing code for ``phone_e164`` and wait for it
    (QR_WAIT_SECONDS); the answer, or an abort saying why there is none."""
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
                                          epoch=row.epoch, phone=phone_e164)
        except ENQUEUE_ERRORS as exc:
            log.warning("session=%s pairing code could not be requested: %s", session_id, exc)
            abort(503, message=QUEUE_UNAVAILABLE)

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
            "phone_number": phone_e164, "status": SessionStatus.QR_READY.value}


@blp.route("/<session_id>/link-page")
class LinkPage(MethodView):
    """POST /webjs/sessions/{session_id}/link-page."""

    @blp.response(200, LinkPageSchema)
    def post(self, session_id):
        """A signed link to the session's linking page, to hand to its end user.

        The page (no API key: the link is the credential, for this session's linking only)
        shows the live QR, a pairing-code path and the progress to READY. The link works for
        LINK_PAGE_TTL (15 min) and not for a session made again under the same id.
        """
        svc = services()
        with svc.db() as s:
            row = get_session(s, session_id)
        expires_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=svc.settings.link_page_ttl)
        secret = link_secret(svc.settings.link_page_secret, svc.redis)
        token = make_token(secret, session_id=row.session_id, row_id=row.id, expires_at=expires_at)
        base = services().settings.link_page_base_url
        url = base + url_for("link_page.page", token=token) if base else url_for("link_page.page", token=token,
                                                                                _external=True)
        return {"url": url, "expires_at": expires_at}


@blp.route("/<session_id>/status")
class Status(MethodView):
    """GET /webjs/sessions/{session_id}/status."""

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
    """GET /webjs/sessions/{session_id}/messages."""

    @blp.arguments(MessagesQuerySchema(), location="query")
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
    """POST /webjs/sessions/{session_id}/send-message."""

    @blp.arguments(SendMessageSchema())
    @blp.arguments(SendQuerySchema(), location="query")
    @blp.response(202, SendResultSchema)
    @blp.alt_response(200, schema=SendResultSchema, description="With ?wait=N: the outcome.")
    def post(self, body, query, session_id):
        """Queue a text or media message. Answers 202 with the job; ?wait=N (up to 60 s) waits for the outcome.

        With an Idempotency-Key header, the same key and body answer the first response
        again (for 24 h); the same key with another body is 409.
        """
        svc = services()
        recipient = Recipient(to=body["to_e164"], to_input=body["to"], text=body["message"],
                              media=body["attachments"], mark_chat_read=body["mark_chat_read"])
        acceptance = accepted_or_abort(session_id, "single", [recipient], body, "send-message")
        result = acceptance.body
        if acceptance.replayed:
            return result, acceptance.status_code, {"Idempotent-Replayed": "true"}
        message_id = result["message_id"]
        if result["status"] == MessageStatus.FAILED:  # refused at acceptance: nothing to wait for
            return result, 200 if query["wait"] > 0 else 202
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
    """POST /webjs/sessions/{session_id}/send-bulk-messages."""

    @blp.arguments(BulkSendSchema())
    @blp.response(202, BulkResultSchema)
    def post(self, body, session_id):
        """Queue up to 50 messages (BULK_MAX_MESSAGES), sent in the session's pace.

        A number that is not valid fails on its own ("Invalid phone number format"); the
        others go on. Answers 202 with the seed's result shape, as far as it is known;
        GET /webjs/jobs/{job_id} fills in as the messages go. Idempotency-Key as for
        send-message.
        """
        recipients = [Recipient(to=m["to_e164"], to_input=m["to"], text=m["message"], media=m["attachments"],
                                error=m["error"], mark_chat_read=m["mark_chat_read"]) for m in body["messages"]]
        acceptance = accepted_or_abort(session_id, "bulk", recipients, body, "send-bulk-messages")
        if acceptance.replayed:
            return acceptance.body, acceptance.status_code, {"Idempotent-Replayed": "true"}
        acceptance.dispatch(services().celery)
        return acceptance.body


def accepted_or_abort(session_id: str, kind: str, recipients: list[Recipient], body: dict, what: str) -> Acceptance:
    """Accept a send for the caller (``services.accepting.accept_send``), with its
    Idempotency-Key; an AcceptError becomes the HTTP error it names (400, 404, 409)."""
    svc = services()
    request_body = request.get_json(silent=True) or {}
    scope = current_scope()
    idempotency = Idempotency.of(scope.idempotency, request.headers.get("Idempotency-Key"),
                                 f"{what}:{session_id}", request_body)
    try:
        return accept_send(svc.db, svc.settings, session_id, kind, recipients, scope=scope,
                           callback_url=body.get("callback_url"), idempotency=idempotency,
                           media_store=svc.media_store)
    except AcceptError as exc:
        abort(exc.status, message=exc.message)


@blp.route("/<session_id>")
class SessionItem(MethodView):
    """PATCH and DELETE /webjs/sessions/{session_id}."""

    @blp.arguments(UpdateSessionSchema())
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
