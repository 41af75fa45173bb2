"""Response shapes and the session requests, as in the seed's README; what any request may
hold and the shape of a send are in ``services.requests`` (shared with the Celery entry
points) and imported here.
"""
from __future__ import annotations

import base64

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from services.requests import (  # noqa: F401 - the API's request vocabulary, in one import
    CALLBACK_URL, IDEMPOTENCY_KEY_MAX, LINE_PATTERN, MAX_MEDIA_ITEMS, PHONE_INPUT_MAX, RESERVED_IDS, SESSION_NAME_MAX,
    TIMESTAMP_PATTERN, USER_ID_MAX, USER_ID_PATTERN, BulkItemSchema, BulkSendSchema, InlineMediaSchema, Line,
    RequestSchema, SendMessageSchema, Text, Timestamp, Url, UserId, _e164, bind_settings, forbidden_character,
    idempotency_key_problem, seed_timestamp, valid_phone, validating_with,
)


class ErrorSchema(Schema):
    """Every error the API answers, the WSGI server's own included: the seed's shape."""

    statusCode = fields.Integer(required=True, metadata={"example": 404})  # noqa: N815 - the seed's name
    message = fields.String(required=True, metadata={"example": "Session not found"})
    error = fields.String(required=True, metadata={"description": "The status' reason phrase.",
                                                   "example": "Not Found"})
    errors = fields.List(fields.String(), metadata={
        "description": "Validation errors (422), one per problem: \"<field>: <why>\"."})


class PacingSchema(RequestSchema):
    """A session's pacing in a request: the gap between sends (seconds, 0 to 3600) and the
    hourly and daily caps (0: none)."""

    min_gap_seconds = fields.Float(validate=validate.Range(min=0, max=3600))
    max_gap_seconds = fields.Float(validate=validate.Range(min=0, max=3600))
    hourly_cap = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000),
                                metadata={"description": "0: no cap"})
    daily_cap = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000),
                               metadata={"description": "0: no cap"})

    @validates_schema
    def gaps_in_order(self, data, **_):
        """ValidationError when ``max_gap_seconds`` is below ``min_gap_seconds``."""
        if data.get("max_gap_seconds", float("inf")) < data.get("min_gap_seconds", 0):
            raise ValidationError("max_gap_seconds must not be below min_gap_seconds", "max_gap_seconds")


class CreateSessionSchema(RequestSchema):
    """The body of POST /webjs/sessions."""

    user_id = UserId(required=True, validate=validate.Length(min=1, max=USER_ID_MAX), metadata={
        "example": "user_123456789", "description": "Also the session's id in URLs: no \"/\", not only spaces."})
    session_name = Line(validate=validate.Length(max=SESSION_NAME_MAX), metadata={
        "description": "Default: \"WhatsApp for <user_id>\" (cut to 200 characters)."})
    callback_url = Url(**CALLBACK_URL)
    pacing = fields.Nested(PacingSchema, metadata={"description": "This session's pace; defaults: 1-2 s gap, "
                                                                  "100 per hour, 1000 per day."})

    @post_load
    def default_name(self, data, **_):
        """A session without a name is called "WhatsApp for <user_id>" (cut to SESSION_NAME_MAX)."""
        if not data.get("session_name"):
            data["session_name"] = f"WhatsApp for {data['user_id']}"[:SESSION_NAME_MAX]
        return data


class UpdateSessionSchema(RequestSchema):
    """The body of PATCH /webjs/sessions/{session_id} (null: back to the defaults)."""

    callback_url = Url(allow_none=True, **CALLBACK_URL)
    pacing = fields.Nested(PacingSchema, allow_none=True)


class SessionSchema(Schema):
    """A session as POST /webjs/sessions answers it."""

    id = fields.String()
    user_id = fields.String()
    session_id = fields.String()
    session_name = fields.String(allow_none=True)
    status = fields.String()
    is_authenticated = fields.Boolean()
    is_ready = fields.Boolean()
    created_at = Timestamp()


class SessionStatusSchema(Schema):
    """A session's state as /status and the user routes answer it."""

    id = fields.String()
    user_id = fields.String()
    session_id = fields.String()
    session_name = fields.String(allow_none=True)
    phone_number = fields.String(allow_none=True)
    is_authenticated = fields.Boolean()
    is_ready = fields.Boolean()
    status = fields.String()
    reason = fields.String(attribute="status_reason", allow_none=True, metadata={
        "description": "Why the session is in its state: LOGOUT, QR_TIMEOUT, CONNECTION_LOST, CONFLICT, "
                       "TEMP_BANNED, TOS_BLOCKED, NEEDS_UPDATE, UNSUPPORTED_BROWSER, APP_LOCKED, UNKNOWN_PAGE, "
                       "BROWSER_CRASHED, WORKER_LOST, ...; with READY: NOT_SENDING when a message has waited "
                       "unsent for STUCK_TIMEOUT_SECONDS with nothing sent meanwhile."})
    not_sending_since = Timestamp(allow_none=True, metadata={
        "description": "With NOT_SENDING: when the oldest message still waiting was first dispatched."})
    pairing_code = fields.String(allow_none=True, metadata={
        "description": "While linking with a phone number: the code on screen (ABCD-EFGH)."})
    callback_url = fields.String(allow_none=True)
    pacing = fields.Dict(allow_none=True)
    slot = fields.String(allow_none=True, metadata={"description": "The browser slot it is placed on."})
    s3_session_key = fields.String(allow_none=True, metadata={"description": "Its newest saved login."})
    browser_memory_bytes = fields.Integer(allow_none=True, metadata={
        "description": "Memory of its browser's whole process tree (PSS), as its slot last measured it."})
    web_version = fields.String(allow_none=True, metadata={
        "description": "The WhatsApp Web build its page runs (the page's window.Debug.VERSION), when known."})
    last_activity = Timestamp(allow_none=True)
    created_at = Timestamp()


class QrSchema(Schema):
    """The QR (a PNG data URL) and the session's status."""

    session_id = fields.String()
    qr_code = fields.String(metadata={"description": "PNG data URL, empty when no QR is on screen."})
    status = fields.String()


class PairingCodeRequestSchema(RequestSchema):
    """The body of POST /webjs/sessions/{session_id}/pairing-code."""

    phone_number = Line(required=True, validate=[validate.Length(max=PHONE_INPUT_MAX), valid_phone], metadata={
        "example": "919876543210", "description": "The number of the phone that will enter the code."})

    @post_load
    def add_e164(self, data, **_):
        """Add ``phone_e164``: the number as E.164 digits (no "+")."""
        data["phone_e164"] = _e164(data["phone_number"])
        return data


class PairingCodeSchema(Schema):
    """The pairing code to type on the phone, and the session's status."""

    session_id = fields.String()
    pairing_code = fields.String(metadata={"example": "ABCD-EFGH",
                                           "description": "Type it on the phone: Linked devices > Link with phone number."})
    phone_number = fields.String()
    status = fields.String()


class LinkPageSchema(Schema):
    """The answer to POST /webjs/sessions/{session_id}/link-page."""

    url = fields.String(metadata={
        "example": "http://127.0.0.1:3000/link/eyJzIjoidXNlcl8xMjM0NTY3ODkifQ.abc",
        "description": "The session's linking page, for the end user: no API key needed; the link is the "
                       "credential, for this session's linking only."})
    expires_at = Timestamp(metadata={"description": "When the link stops working (LINK_PAGE_TTL after now)."})


class SendQuerySchema(RequestSchema):
    """The query of send-message: ``wait``, seconds (0 to 60) to wait for the outcome."""

    wait = fields.Float(load_default=0, validate=validate.Range(min=0, max=60),
                        metadata={"description": "Seconds (up to 60) to wait for the outcome."})


WA_ID = fields.String(allow_none=True, metadata={
    "description": "The recipient as WhatsApp knows it (<digits>@c.us): what its existence query answered, "
                   "which can differ from `to` (Brazil's ninth digit, Mexico's 52 1)."})


class JobRefSchema(Schema):
    """What every answer about a send starts with: whether it went through, and its job."""

    success = fields.Boolean()
    job_id = fields.String()
    session_id = fields.String()


class SendResultSchema(JobRefSchema):
    """The answer to send-message (202 queued, or 200 with the outcome after ``?wait``)."""

    message_id = fields.String(metadata={"description": "This service's id of the message; poll the job."})
    status = fields.String(metadata={"description": "queued, sending, sent, delivered, read or failed"})
    whatsapp_message_id = fields.String(allow_none=True)
    wa_id = WA_ID
    error = fields.String(allow_none=True)


class BulkItemResultSchema(Schema):
    """One message in the answer to a bulk send."""

    message_id = fields.String()
    to = fields.String()
    status = fields.String(metadata={"description": "pending, or failed (a number that is not valid)"})
    message_status = fields.String()
    error = fields.String(allow_none=True)
    timestamp = Timestamp()


class MessageResultSchema(BulkItemResultSchema):
    """One message of a job (GET /webjs/jobs/{job_id}): a bulk item's fields and what
    happened to it since."""

    status = fields.String(metadata={"description": "success, failed or pending (the seed's values)"})
    whatsapp_message_id = fields.String(allow_none=True)
    wa_id = WA_ID
    attempts = fields.Integer()
    next_attempt_at = Timestamp(allow_none=True, metadata={"description": "While scheduled: when it goes."})
    wait_reason = fields.String(allow_none=True, metadata={
        "description": "While scheduled: why it waits (pacing, a cap, an open circuit, a retry)."})


class JobCountsSchema(JobRefSchema):
    """What a job and a bulk send's answer both say: the seed's counts."""

    total_messages = fields.Integer()
    successful_sends = fields.Integer()
    failed_sends = fields.Integer()
    duration = fields.String()


class JobSchema(JobCountsSchema):
    """The body of GET /webjs/jobs/{job_id}: the job, its counts and its messages."""

    kind = fields.String()
    status = fields.String(metadata={"description": "queued, processing, completed, failed or cancelled"})
    pending = fields.Integer()
    results = fields.List(fields.Nested(MessageResultSchema))
    created_at = Timestamp()
    finished_at = Timestamp(allow_none=True)


class CancelResultSchema(Schema):
    """The body of POST /webjs/jobs/{job_id}/cancel."""

    job_id = fields.String()
    cancelled = fields.Integer(metadata={"description": "Messages cancelled now."})
    not_cancelled = fields.Integer(metadata={"description": "Messages already sent, failed or being sent."})
    status = fields.String()


CONTACT_CHECK_MAX = 50  # numbers per check request


class BulkResultSchema(JobCountsSchema):
    """The answer to send-bulk-messages (the seed's shape; duration is always "0.0 seconds")."""

    status = fields.String()
    results = fields.List(fields.Nested(BulkItemResultSchema))


class ActiveSessionsSchema(Schema):
    """The body of GET /webjs/sessions/active."""

    active_sessions = fields.List(fields.String())
    count = fields.Integer()


class DeletedSchema(Schema):
    """The answer to deleting sessions."""

    success = fields.Boolean()
    message = fields.String()
    deleted_count = fields.Integer()


class ContactCheckSchema(RequestSchema):
    """The body of a number check: up to 50 numbers."""

    numbers = fields.List(Line(validate=validate.Length(max=PHONE_INPUT_MAX)), required=True,
                          validate=validate.Length(min=1, max=CONTACT_CHECK_MAX), metadata={
                              "description": f"1 to {CONTACT_CHECK_MAX} numbers; one that is not valid is "
                                             "answered on its own.",
                              "example": ["919876543210", "+52 1 55 3437 2942"]})


class ContactResultSchema(Schema):
    """One number's answer in a number check."""

    input = fields.String(metadata={"description": "The number as given."})
    number = fields.String(allow_none=True, metadata={"description": "Normalised (E.164 digits); null when "
                                                                     "not valid."})
    valid = fields.Boolean()
    exists = fields.Boolean(allow_none=True, metadata={
        "description": "Whether it is on WhatsApp; null when it could not be checked (see error)."})
    wa_id = fields.String(allow_none=True, metadata={
        "description": "The id WhatsApp answered with (<digits>@c.us), which can differ from the number "
                       "(Brazil's ninth digit, Mexico's 52 1)."})
    checked_at = Timestamp(allow_none=True)
    cached = fields.Boolean(metadata={"description": "Answered from an earlier check "
                                                    "(CONTACT_CHECK_CACHE_SECONDS)."})
    error = fields.String(allow_none=True)


class ContactCheckResultSchema(Schema):
    """The answer to a number check, in the order asked."""

    session_id = fields.String()
    results = fields.List(fields.Nested(ContactResultSchema))


class OptOutSchema(Schema):
    """A number on a session's opt-out list."""

    number = fields.String()
    source = fields.String(metadata={"description": "keyword (the number sent an opt-out keyword) or api"})
    created_at = Timestamp()


class OptOutResultSchema(OptOutSchema):
    """The answer to putting a number on the opt-out list."""

    session_id = fields.String()
    created = fields.Boolean(metadata={"description": "False when the number was on the list already."})


class OptOutListSchema(Schema):
    """A session's opt-out list."""

    session_id = fields.String()
    opt_outs = fields.List(fields.Nested(OptOutSchema))
    count = fields.Integer()


class OptOutRemovedSchema(Schema):
    """The answer to taking a number off the opt-out list."""

    session_id = fields.String()
    number = fields.String()
    removed = fields.Boolean(metadata={"description": "False when the number was not on the list."})


class ChatReadSchema(Schema):
    """The answer to marking a chat read."""

    session_id = fields.String()
    number = fields.String()
    marked_read = fields.Boolean()
    route = fields.String(metadata={"description": "How the page did it: modules (its own sendSeen) or dom "
                                                   "(the chat was opened, which marks it read)."})


# --- messages received (GET /webjs/sessions/{session_id}/messages) ---

CURSOR_PATTERN = r"^c[A-Za-z0-9_-]*$"


def encode_cursor(seq: int) -> str:
    """The opaque cursor after the incoming message recorded as ``seq``."""
    return "c" + base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The ``seq`` a cursor from ``encode_cursor`` names; ValidationError for anything else."""
    try:
        if not cursor.startswith("c") or len(cursor) > 40:
            raise ValueError(cursor)
        body = cursor[1:]
        seq = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
        if not seq.isdigit() or encode_cursor(int(seq)) != cursor:
            raise ValueError(cursor)
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("Not a cursor this API gave (next_cursor of an earlier page).") from None


class MessagesQuerySchema(RequestSchema):
    """The query of GET /webjs/sessions/{session_id}/messages."""

    direction = Line(load_default="in", validate=[validate.Length(max=3), validate.OneOf(["in"])], metadata={
        "description": "`in`: messages the session received (the only direction listed so far)."})
    after = Line(load_default=None, validate=[validate.Length(max=40), validate.Regexp(CURSOR_PATTERN)],
                          metadata={"pattern": CURSOR_PATTERN, "description":
                                    "The `next_cursor` of the page before; left out: from the first message."})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200),
                           metadata={"description": "At most this many messages (1-200, default 50)."})

    @post_load
    def _cursor(self, data, **_kwargs):
        data["after_seq"] = decode_cursor(data["after"]) if data.get("after") else 0
        return data


class IncomingMediaSchema(Schema):
    """What a message received carried as media, as WhatsApp told it."""

    kind = fields.String(allow_none=True, metadata={"description": "image, video, audio, document or sticker"})
    mimetype = fields.String(allow_none=True)
    filename = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True, metadata={"description": "Bytes, as WhatsApp tells it."})


class InReplyToSchema(Schema):
    """Our message that a message received quotes."""

    message_id = fields.String(metadata={"description": "Our message the sender quoted."})
    job_id = fields.String()


class IncomingMessageSchema(Schema):
    """One message a session received."""

    message_id = fields.String(metadata={"description": "This service's id of the message received."})
    session_id = fields.String()
    direction = fields.String(metadata={"description": "`in`"})
    whatsapp_message_id = fields.String(metadata={
        "description": "WhatsApp's own id of the message (`dom-<digits>-<n>` when only the chat list told of it)."})
    # "from" is a Python keyword: the attribute is sender_number.
    sender_number = fields.String(data_key="from", allow_none=True,
                                  metadata={"description": "The sender's number, E.164 digits (null: only a LID known)."})
    from_wa_id = fields.String(allow_none=True, metadata={"description": "`<digits>@c.us` or `<lid>@lid`"})
    type = fields.String(metadata={"description": "WhatsApp's type: chat, image, video, audio, document, sticker, ..."})
    text = fields.String(allow_none=True, metadata={"description": "The text, or a media message's caption."})
    media = fields.Nested(IncomingMediaSchema, allow_none=True)
    in_reply_to = fields.Nested(InReplyToSchema, allow_none=True)
    received_at = Timestamp(metadata={"description": "When WhatsApp says it was sent."})
    recorded_at = Timestamp(metadata={"description": "When this service recorded it."})


class MessagesPageSchema(Schema):
    """A page of the messages a session received, oldest first, and the cursor after it."""

    messages = fields.List(fields.Nested(IncomingMessageSchema), metadata={"description": "Oldest first."})
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Pass as `after` for the messages after these (the same as `after` when none came)."})
