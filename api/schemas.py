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
    min_gap_seconds = fields.Float(validate=validate.Range(min=0, max=3600))
    max_gap_seconds = fields.Float(validate=validate.Range(min=0, max=3600))
    hourly_cap = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000),
                                metadata={"description": "0: no cap"})
    daily_cap = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000),
                               metadata={"description": "0: no cap"})

    @validates_schema
    def gaps_in_order(self, data, **_):
        if data.get("max_gap_seconds", float("inf")) < data.get("min_gap_seconds", 0):
            raise ValidationError("max_gap_seconds must not be below min_gap_seconds", "max_gap_seconds")


class CreateSessionSchema(RequestSchema):
    user_id = UserId(required=True, validate=validate.Length(min=1, max=USER_ID_MAX), metadata={
        "example": "user_123456789", "description": "Also the session's id in URLs: no \"/\", not only spaces."})
    session_name = Line(validate=validate.Length(max=SESSION_NAME_MAX), metadata={
        "description": "Default: \"WhatsApp for <user_id>\" (cut to 200 characters)."})
    callback_url = Url(**CALLBACK_URL)
    pacing = fields.Nested(PacingSchema, metadata={"description": "This session's pace; defaults: 1-2 s gap, "
                                                                  "100 per hour, 1000 per day."})

    @post_load
    def default_name(self, data, **_):
        if not data.get("session_name"):
            data["session_name"] = f"WhatsApp for {data['user_id']}"[:SESSION_NAME_MAX]
        return data


class UpdateSessionSchema(RequestSchema):
    callback_url = Url(allow_none=True, **CALLBACK_URL)
    pacing = fields.Nested(PacingSchema, allow_none=True)


class SessionSchema(Schema):
    id = fields.String()
    user_id = fields.String()
    session_id = fields.String()
    session_name = fields.String(allow_none=True)
    status = fields.String()
    is_authenticated = fields.Boolean()
    is_ready = fields.Boolean()
    created_at = Timestamp()


class SessionStatusSchema(Schema):
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
    session_id = fields.String()
    qr_code = fields.String(metadata={"description": "PNG data URL, empty when no QR is on screen."})
    status = fields.String()


class PairingCodeRequestSchema(RequestSchema):
    phone_number = Line(required=True, validate=[validate.Length(max=PHONE_INPUT_MAX), valid_phone], metadata={
        "example": "919876543210", "description": "The number of the phone that will enter the code."})

    @post_load
    def add_e164(self, data, **_):
        data["phone_e164"] = _e164(data["phone_number"])
        return data


class PairingCodeSchema(Schema):
    session_id = fields.String()
    pairing_code = fields.String(metadata={"example": "ABCD-EFGH",
                                           "description": "Type it on the phone: Linked devices > Link with phone number."})
    phone_number = fields.String()
    status = fields.String()


class SendQuerySchema(RequestSchema):
    wait = fields.Float(load_default=0, validate=validate.Range(min=0, max=60),
                        metadata={"description": "Seconds (up to 60) to wait for the outcome."})


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
    kind = fields.String(allow_none=True, metadata={"description": "image, video, audio, document or sticker"})
    mimetype = fields.String(allow_none=True)
    filename = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True, metadata={"description": "Bytes, as WhatsApp tells it."})


class InReplyToSchema(Schema):
    message_id = fields.String(metadata={"description": "Our message the sender quoted."})
    job_id = fields.String()


class IncomingMessageSchema(Schema):
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
    messages = fields.List(fields.Nested(IncomingMessageSchema), metadata={"description": "Oldest first."})
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Pass as `after` for the messages after these (the same as `after` when none came)."})


class SendResultSchema(Schema):
    success = fields.Boolean()
    job_id = fields.String()
    session_id = fields.String()
    message_id = fields.String(metadata={"description": "This service's id of the message; poll the job."})
    status = fields.String(metadata={"description": "queued, sending, sent, delivered, read or failed"})
    whatsapp_message_id = fields.String(allow_none=True)
    wa_id = fields.String(allow_none=True, metadata={
        "description": "The recipient as WhatsApp knows it (<digits>@c.us), from its existence query."})
    error = fields.String(allow_none=True)


class MessageResultSchema(Schema):
    message_id = fields.String()
    to = fields.String()
    status = fields.String(metadata={"description": "success, failed or pending (the seed's values)"})
    message_status = fields.String()
    whatsapp_message_id = fields.String(allow_none=True)
    wa_id = fields.String(allow_none=True, metadata={
        "description": "The recipient as WhatsApp knows it (<digits>@c.us): what its existence query answered, "
                       "which can differ from `to` (Brazil's ninth digit, Mexico's 52 1)."})
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    timestamp = Timestamp()
    next_attempt_at = Timestamp(allow_none=True, metadata={"description": "While scheduled: when it goes."})
    wait_reason = fields.String(allow_none=True, metadata={
        "description": "While scheduled: why it waits (pacing, a cap, an open circuit, a retry)."})


class JobSchema(Schema):
    job_id = fields.String()
    session_id = fields.String()
    kind = fields.String()
    status = fields.String(metadata={"description": "queued, processing, completed, failed or cancelled"})
    success = fields.Boolean()
    total_messages = fields.Integer()
    successful_sends = fields.Integer()
    failed_sends = fields.Integer()
    pending = fields.Integer()
    results = fields.List(fields.Nested(MessageResultSchema))
    created_at = Timestamp()
    finished_at = Timestamp(allow_none=True)
    duration = fields.String()


class ActiveSessionsSchema(Schema):
    active_sessions = fields.List(fields.String())
    count = fields.Integer()


class DeletedSchema(Schema):
    success = fields.Boolean()
    message = fields.String()
    deleted_count = fields.Integer()


class BulkItemResultSchema(Schema):
    message_id = fields.String()
    to = fields.String()
    status = fields.String(metadata={"description": "pending, or failed (a number that is not valid)"})
    message_status = fields.String()
    error = fields.String(allow_none=True)
    timestamp = Timestamp()


class BulkResultSchema(Schema):
    success = fields.Boolean()
    job_id = fields.String()
    session_id = fields.String()
    status = fields.String()
    total_messages = fields.Integer()
    successful_sends = fields.Integer()
    failed_sends = fields.Integer()
    results = fields.List(fields.Nested(BulkItemResultSchema))
    duration = fields.String()


class CancelResultSchema(Schema):
    job_id = fields.String()
    cancelled = fields.Integer(metadata={"description": "Messages cancelled now."})
    not_cancelled = fields.Integer(metadata={"description": "Messages already sent, failed or being sent."})
    status = fields.String()
