"""Request and response shapes, as in the seed's README."""
from __future__ import annotations

import base64
import binascii

from flask import current_app
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from models.phones import InvalidPhoneNumber, normalize_phone


def _e164(raw: str) -> str:
    return normalize_phone(raw, current_app.extensions["wa"].settings.default_region)


def _settings():
    return current_app.extensions["wa"].settings


def valid_phone(raw: str) -> None:
    try:
        _e164(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationError(str(exc)) from exc


CALLBACK_URL = dict(validate=validate.Length(max=2048), metadata={
    "description": "Where webhooks for this go (http/https; private addresses are refused)."})


class PacingSchema(Schema):
    min_gap_seconds = fields.Float(validate=validate.Range(min=0, max=3600))
    max_gap_seconds = fields.Float(validate=validate.Range(min=0, max=3600))
    hourly_cap = fields.Integer(validate=validate.Range(min=0), metadata={"description": "0: no cap"})
    daily_cap = fields.Integer(validate=validate.Range(min=0), metadata={"description": "0: no cap"})

    @validates_schema
    def gaps_in_order(self, data, **_):
        if data.get("max_gap_seconds", float("inf")) < data.get("min_gap_seconds", 0):
            raise ValidationError("max_gap_seconds must not be below min_gap_seconds", "max_gap_seconds")


class CreateSessionSchema(Schema):
    user_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    session_name = fields.String(validate=validate.Length(max=200))
    callback_url = fields.Url(schemes={"http", "https"}, **CALLBACK_URL)
    pacing = fields.Nested(PacingSchema, metadata={"description": "This session's pace; defaults: 1-2 s gap, "
                                                                  "100 per hour, 1000 per day."})


class UpdateSessionSchema(Schema):
    callback_url = fields.Url(schemes={"http", "https"}, allow_none=True, **CALLBACK_URL)
    pacing = fields.Nested(PacingSchema, allow_none=True)


class SessionSchema(Schema):
    id = fields.String()
    user_id = fields.String()
    session_id = fields.String()
    session_name = fields.String(allow_none=True)
    status = fields.String()
    is_authenticated = fields.Boolean()
    is_ready = fields.Boolean()
    created_at = fields.DateTime()


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
    not_sending_since = fields.DateTime(allow_none=True, metadata={
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
    last_activity = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class QrSchema(Schema):
    session_id = fields.String()
    qr_code = fields.String(metadata={"description": "PNG data URL, empty when no QR is on screen."})
    status = fields.String()


class PairingCodeRequestSchema(Schema):
    phone_number = fields.String(required=True, validate=valid_phone, metadata={
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


MEDIA_TYPES = ("image/", "video/mp4", "video/3gpp", "video/quicktime")
MAX_MEDIA_ITEMS = 10


def media_limit_bytes(mimetype: str) -> int:
    """Photos and videos have the smaller limit; everything else goes as a document."""
    settings = _settings()
    is_media = any(mimetype.startswith(t) if t.endswith("/") else mimetype == t for t in MEDIA_TYPES)
    return (settings.media_max_mb if is_media else settings.document_max_mb) * 1024 * 1024


class InlineMediaSchema(Schema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=255))
    mimetype = fields.String(required=True, validate=validate.Regexp(r"^[\w.+-]+/[\w.+-]+$"))
    data = fields.String(required=True, metadata={"description": "The file, base64-encoded."})

    @validates_schema
    def check_data(self, item, **_):
        try:
            raw = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("data is not valid base64", "data") from exc
        if not raw:
            raise ValidationError("data is empty", "data")
        limit = media_limit_bytes(item["mimetype"])
        if len(raw) > limit:
            raise ValidationError(f"{item['filename']} is {len(raw) / 1048576:.1f} MB, over the "
                                  f"{limit // 1048576} MB limit", "data")


class SendMessageSchema(Schema):
    to = fields.String(required=True, validate=valid_phone, metadata={
        "example": "919876543210",
        "description": "International number; 10 bare digits take the default region (India)."})
    message = fields.String(required=True, validate=validate.Length(max=65536), metadata={
        "description": "The text; with media, the caption of the first file (may then be empty)."})
    media_urls = fields.List(fields.Url(schemes={"http", "https"}, validate=validate.Length(max=2048)),
                             load_default=list, validate=validate.Length(max=MAX_MEDIA_ITEMS), metadata={
        "description": "http(s) files the worker downloads and attaches (images and videos as media, "
                       "others as documents)."})
    media = fields.List(fields.Nested(InlineMediaSchema), load_default=list,
                        validate=validate.Length(max=MAX_MEDIA_ITEMS),
                        metadata={"description": "Files sent inline, base64-encoded."})
    callback_url = fields.Url(schemes={"http", "https"}, **CALLBACK_URL)

    @validates_schema
    def text_or_media(self, data, **_):
        if not (data.get("message") or "").strip() and not data.get("media_urls") and not data.get("media"):
            raise ValidationError("message must not be empty", "message")

    @post_load
    def add_e164(self, data, **_):
        data["to_e164"] = _e164(data["to"])
        data["attachments"] = [{"url": url} for url in data["media_urls"]] + list(data["media"])
        return data


class SendQuerySchema(Schema):
    wait = fields.Float(load_default=0, validate=validate.Range(min=0, max=60),
                        metadata={"description": "Seconds (up to 60) to wait for the outcome."})


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
    timestamp = fields.DateTime()
    next_attempt_at = fields.DateTime(allow_none=True, metadata={"description": "While scheduled: when it goes."})
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
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    duration = fields.String()


class ActiveSessionsSchema(Schema):
    active_sessions = fields.List(fields.String())
    count = fields.Integer()


class DeletedSchema(Schema):
    success = fields.Boolean()
    message = fields.String()
    deleted_count = fields.Integer()


class BulkItemSchema(SendMessageSchema):
    """One message of a bulk send: a number that is not valid fails on its own."""

    class Meta:
        exclude = ("callback_url",)

    to = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={"example": "+919876543210"})

    @post_load
    def add_e164(self, data, **_):
        try:
            data["to_e164"], data["error"] = _e164(data["to"]), None
        except InvalidPhoneNumber as exc:
            data["to_e164"], data["error"] = "", str(exc)
        data["attachments"] = [{"url": url} for url in data["media_urls"]] + list(data["media"])
        return data


class BulkSendSchema(Schema):
    messages = fields.List(fields.Nested(BulkItemSchema), required=True)
    callback_url = fields.Url(schemes={"http", "https"}, **CALLBACK_URL)

    @validates_schema
    def within_limit(self, data, **_):
        limit = _settings().bulk_max_messages
        count = len(data.get("messages") or [])
        if not 1 <= count <= limit:
            raise ValidationError(f"send 1 to {limit} messages per request", "messages")


class BulkResultSchema(Schema):
    success = fields.Boolean()
    job_id = fields.String()
    session_id = fields.String()
    status = fields.String()
    total_messages = fields.Integer()
    successful_sends = fields.Integer()
    failed_sends = fields.Integer()
    results = fields.List(fields.Dict())
    duration = fields.String()


class CancelResultSchema(Schema):
    job_id = fields.String()
    cancelled = fields.Integer(metadata={"description": "Messages cancelled now."})
    not_cancelled = fields.Integer(metadata={"description": "Messages already sent, failed or being sent."})
    status = fields.String()
