"""/link/<token>: the linking page for end users, and its own endpoints.

The token (services/link_tokens.py) is the only credential: it opens one session row's
page until it expires, and through it only what linking needs (the state, its live
stream, a pairing code, starting again). It is never an API key: /webjs refuses it.

The page is server-rendered HTML with one script and one style sheet of its own (no CDN,
no inline script), under a strict Content-Security-Policy. The state reaches it as
server-sent events made from the recorder's copies of the session's events (the same
Redis channel the API's waits use), or by polling /state where those do not get through.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import phonenumbers
from flask import Blueprint, Response, current_app, g, render_template, request
from flask_smorest import abort
from marshmallow import ValidationError

from api.link_texts import TEXTS
from api.schemas import PairingCodeRequestSchema, seed_timestamp
from api.sessions import request_pairing_code, services, start_session
from api.waits import Waiter
from messaging.events import session_channel
from models import SessionStatus, WhatsAppSession
from models.access import Scope
from models.states import BROWSER_KEPT_REASONS, LIVE_SESSION_STATES
from services.link_tokens import LinkExpired, LinkGrant, LinkInvalid, link_secret, read_token

blp = Blueprint("link_page", __name__, url_prefix="/link", static_folder="link_assets", static_url_path="/assets",
                template_folder="templates")

LINK_NOT_FOUND = "Link not found or expired."
STREAM_SECONDS = 30  # one event stream's length; the browser connects again by itself (retry)
KEEP_ALIVE_SECONDS = 10
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "Cache-Control": "no-store",
}


@blp.after_request
def page_headers(response):
    """Every answer under /link: no caching, no framing, only the page's own script and style."""
    response.headers.update(PAGE_HEADERS)
    return response


def grant_for(token: str) -> tuple[LinkGrant, WhatsAppSession] | str:
    """The token's grant and its session row, or why there is none: "expired" or "invalid"
    (also for a session deleted, or made again under the same id, since)."""
    svc = services()
    try:
        grant = read_token(link_secret(svc.settings.link_page_secret, svc.redis), token)
    except LinkExpired:
        return "expired"
    except LinkInvalid:
        return "invalid"
    row = read_row(grant)
    if row is None:
        return "invalid"
    # What the shared session functions (api/sessions.py) may act on: this session only.
    g.scope = Scope(admin=False, user_ids=frozenset({grant.session_id}), idempotency="link")
    return grant, row


def read_row(grant: LinkGrant, db=None) -> WhatsAppSession | None:
    """The grant's session row, if it still is the one the link was made for."""
    with (db or services().db)() as s:
        row = s.get(WhatsAppSession, grant.row_id)
        return row if row is not None and row.session_id == grant.session_id else None


def grant_or_404(token: str) -> tuple[LinkGrant, WhatsAppSession]:
    """For the page's JSON endpoints: 404 for an expired or invalid token."""
    found = grant_for(token)
    if isinstance(found, str):
        abort(404, message=LINK_NOT_FOUND)
    return found


def display_phone(digits: str | None) -> str:
    """+91 98123 45678 from E.164 digits (as given when they do not parse)."""
    if not digits:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse("+" + digits), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return "+" + digits


def page_view(status: str, reason: str | None, *, placed: bool, pairing_code: str | None, qr_code: str | None) -> str:
    """What the page shows for a session state: idle (not started), starting, qr, pairing,
    scanned, linked or ended."""
    status = SessionStatus(status)
    if status == SessionStatus.READY or (status == SessionStatus.DISCONNECTED and reason in BROWSER_KEPT_REASONS):
        return "linked"  # a kept browser comes back to READY by itself
    if status == SessionStatus.AUTHENTICATED:
        return "scanned"
    if not placed or status not in LIVE_SESSION_STATES:
        return "ended" if status == SessionStatus.DISCONNECTED else "idle"
    if status == SessionStatus.QR_READY and pairing_code:
        return "pairing"
    if status == SessionStatus.QR_READY and qr_code:
        return "qr"
    return "starting"


def page_state(grant: LinkGrant, row: WhatsAppSession) -> dict:
    """The state the page renders (the same for the page, /state and the event stream)."""
    view = page_view(row.status, row.status_reason, placed=bool(row.slot), pairing_code=row.pairing_code,
                     qr_code=row.qr_code)
    return {
        "view": view,
        "status": row.status,
        "reason": row.status_reason,
        "qr_code": (row.qr_code or "") if view == "qr" else "",
        "pairing_code": (row.pairing_code or "") if view == "pairing" else "",
        "phone_number": display_phone(row.phone_number) if view == "linked" else "",
        "expires_at": seed_timestamp(grant.expires_at),
    }


@blp.get("/<token>")
def page(token: str):
    """The linking page; an error page (404, or 410 once expired) for a token that opens none."""
    found = grant_for(token)
    if isinstance(found, str):
        return render_template("link_error.html", texts=TEXTS, kind=found), 410 if found == "expired" else 404
    grant, row = found
    return render_template("link_page.html", texts=TEXTS, state=page_state(grant, row))


@blp.get("/<token>/state")
def state(token: str):
    """The page's state as JSON (the polling fallback)."""
    return page_state(*grant_or_404(token))


@blp.get("/<token>/events")
def events(token: str):
    """Server-sent events: the page's state now and after every recorded change, for
    STREAM_SECONDS (the browser connects again by itself, which checks the token again).
    At most LINK_PAGE_STREAMS at once in this process (each holds a thread); beyond, 503
    and the page polls /state."""
    grant, _row = grant_or_404(token)
    streams = current_app.extensions["wa_link_streams"]
    if streams is None or not streams.acquire(blocking=False):
        # Every stream this process allows is taken: the page polls /state instead (an
        # EventSource refused is closed, and the page's onerror starts polling).
        return {"statusCode": 503, "message": "Too many live linking pages; poll /state.",
                "error": "Service Unavailable"}, 503, {"Retry-After": str(STREAM_SECONDS)}
    db = services().db  # the stream runs outside the request's context
    try:
        waiter = Waiter(services().redis, session_channel(grant.session_id))  # before the first read: nothing missed
    except BaseException:
        streams.release()
        raise
    ends = time.monotonic() + min(STREAM_SECONDS, (grant.expires_at - datetime.now(timezone.utc)).total_seconds())

    def stream():
        try:
            yield "retry: 2000\n\n"
            last = None
            while True:
                row = read_row(grant, db)
                current = page_state(grant, row) if row is not None else None
                if current is None:
                    yield "event: gone\ndata: {}\n\n"
                    return
                if current != last:
                    yield f"event: state\ndata: {json.dumps(current)}\n\n"
                    last = current
                remaining = ends - time.monotonic()
                if remaining <= 0:
                    return
                if waiter.until(lambda e: bool(e.get("recorded")), min(remaining, KEEP_ALIVE_SECONDS)) is None:
                    yield ": keep-alive\n\n"
        finally:
            waiter.close()

    def done() -> None:  # called when the response closes, whether or not it was read
        waiter.close()
        streams.release()

    response = Response(stream(), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})
    response.call_on_close(done)
    return response


@blp.post("/<token>/pairing-code")
def pairing_code(token: str):
    """A pairing code for the phone number in the body (``{"phone_number": ...}``)."""
    grant, _row = grant_or_404(token)
    try:
        body = PairingCodeRequestSchema().load(request.get_json(silent=True) or {})
    except ValidationError as exc:
        messages = exc.messages.get("phone_number", exc.messages) if isinstance(exc.messages, dict) else exc.messages
        abort(422, message=" ".join(map(str, messages)) if isinstance(messages, list) else str(messages))
    answer = request_pairing_code(grant.session_id, body["phone_e164"])
    return {"pairing_code": answer["pairing_code"], "phone_number": display_phone(answer["phone_number"])}


@blp.post("/<token>/start")
def start(token: str):
    """Start the session's linking again (a new QR): while the link lives, unless it is linked."""
    grant, row = grant_or_404(token)
    if page_view(row.status, row.status_reason, placed=bool(row.slot), pairing_code=None, qr_code=None) in (
            "linked", "scanned"):
        abort(409, message="This WhatsApp account is already linked.")
    start_session(grant.session_id)
    return page_state(grant, read_row(grant) or row)
