"""Request and response shapes, as in the seed's README.

Every text a request carries is refused (422, naming the field) when it holds what no
column, log line or WhatsApp chat should: NUL (PostgreSQL cannot store it), a lone
surrogate (it cannot be encoded as UTF-8) or another control character (it forges log
lines and hides in listings); message text keeps tab, newline and carriage return.
Every string has a length limit that fits its column (tests/test_api_inputs.py checks
them against the tables), and a list longer than its limit is refused before its items
are read. Timestamps have one format, the seed's: ``2024-01-15T10:30:00Z``.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone

from flask import current_app
from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from models.media import kind_of, limit_bytes
from models.phones import InvalidPhoneNumber, normalize_phone

# What a line of text may not hold: the C0 and C1 control characters (NUL included) and
# lone surrogates. JSON Schema patterns (ECMA-262) cannot name surrogates, so the spec's
# patterns say the rest and the fields check all of it.
_CONTROLS = r"\u0000-\u001f\u007f-\u009f"
_CONTROLS_BUT_TAB_NL_CR = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
LINE_PATTERN = f"^[^{_CONTROLS}]*$"
TEXT_PATTERN = f"^[^{_CONTROLS_BUT_TAB_NL_CR}]*$"
_NOT_IN_LINE = re.compile(rf"[{_CONTROLS}\ud800-\udfff]")
_NOT_IN_TEXT = re.compile(rf"[{_CONTROLS_BUT_TAB_NL_CR}\ud800-\udfff]")
# Spaces by name (not \s, which differs between Python and ECMA-262): a user_id of
# nothing else is refused.
_SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ID_CHAR = f"[^{_CONTROLS}/]"
USER_ID_PATTERN = f"^{_ID_CHAR}*[^{_CONTROLS}/{_SPACES}]{_ID_CHAR}*$"

SEED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"

IDEMPOTENCY_KEY_MAX = 255  # idempotency_keys.key
SESSION_NAME_MAX = 200  # whatsapp_sessions.session_name
USER_ID_MAX = 200  # whatsapp_sessions.user_id and .session_id (a session's id is its user's)
PHONE_INPUT_MAX = 64  # messages.to_input
URL_MAX = 2048
# Names the API itself uses where an id could stand: GET /webjs/sessions/active lists the
# active sessions, so no session (whose id is its user's) may be called "active".
RESERVED_IDS = frozenset({"active"})


def forbidden_character(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be taken ("U+0000 at position 3"), or None."""
    found = (_NOT_IN_TEXT if multiline else _NOT_IN_LINE).search(value)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"


def idempotency_key_problem(key: str) -> str | None:
    """What is wrong with an Idempotency-Key, or None. A key is never cut: two keys alike in
    their first 255 characters would be taken for one, and the second send never made."""
    if not key:
        return "must not be empty"
    if len(key) > IDEMPOTENCY_KEY_MAX:
        return f"longer than {IDEMPOTENCY_KEY_MAX} characters (keys are never cut)"
    where = forbidden_character(key)
    return f"must not contain control characters ({where})" if where else None


def seed_timestamp(value: datetime | str) -> str:
    """2024-01-15T10:30:00Z: UTC, whole seconds (the seed's examples)."""
    if isinstance(value, str):  # a stored answer, replayed
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(SEED_TIME_FORMAT)


def _with_metadata(kwargs: dict, **extra) -> dict:
    kwargs["metadata"] = {**extra, **(kwargs.get("metadata") or {})}
    return kwargs


class Line(fields.String):
    """A one-line string: no control characters, no lone surrogates."""

    multiline = False
    default_error_messages = {"forbidden": "must not contain control characters or lone surrogates ({where})"}

    def __init__(self, **kwargs):
        super().__init__(**_with_metadata(kwargs, pattern=TEXT_PATTERN if self.multiline else LINE_PATTERN))

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        where = forbidden_character(value, multiline=self.multiline)
        if where:
            raise self.make_error("forbidden", where=where)
        return value


class Text(Line):
    """Message text: as a line, but tab, newline and carriage return are kept."""

    multiline = True


class UserId(Line):
    """A user's id, which is also its session's id in URL paths: no "/", not only spaces."""

    default_error_messages = {"slash": 'must not contain "/"', "blank": "must not be only spaces",
                              "reserved": "is reserved (GET /webjs/sessions/{user_id} is one of the API's paths)"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata["pattern"] = USER_ID_PATTERN

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if "/" in value:
            raise self.make_error("slash")
        if value and not re.sub(f"[{_SPACES}]", "", value):
            raise self.make_error("blank")
        if value in RESERVED_IDS:
            raise self.make_error("reserved", user_id=value)
        return value


class Url(fields.Url):
    """An http(s) URL on one line."""

    default_error_messages = Line.default_error_messages

    def __init__(self, **kwargs):
        kwargs.setdefault("schemes", {"http", "https"})
        kwargs.setdefault("validate", validate.Length(max=URL_MAX))
        super().__init__(**_with_metadata(kwargs, format="uri", pattern=LINE_PATTERN))

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        where = forbidden_character(value)
        if where:
            raise self.make_error("forbidden", where=where)
        return value


class Timestamp(fields.DateTime):
    """A moment in the seed's format, 2024-01-15T10:30:00Z."""

    def __init__(self, **kwargs):
        super().__init__(**_with_metadata(kwargs, pattern=TIMESTAMP_PATTERN, example="2024-01-15T10:30:00Z"))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else seed_timestamp(value)


class RequestSchema(Schema):
    """A request's body: a list longer than its limit is refused before its items are read
    (200,000 bulk items must not cost seconds of validation to be told "at most 50")."""

    def list_limit_errors(self, data: dict) -> dict:
        errors = {}
        for name, field in self.load_fields.items():
            raw = data.get(field.data_key or name)
            if not isinstance(field, fields.List) or not isinstance(raw, list):
                continue
            for check in field.validators:
                if isinstance(check, validate.Length):
                    try:
                        check(raw)
                    except ValidationError as exc:
                        errors[name] = exc.messages
        return errors

    @pre_load
    def lists_within_limits(self, data, **_):
        if isinstance(data, dict) and (errors := self.list_limit_errors(data)):
            raise ValidationError(errors)
        return data


def _e164(raw: str) -> str:
    return normalize_phone(raw, current_app.extensions["wa"].settings.default_region)


def _settings():
    return current_app.extensions["wa"].settings


def valid_phone(raw: str) -> None:
    try:
        _e164(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationError(str(exc)) from exc


CALLBACK_URL = dict(metadata={
    "description": "Where webhooks for this go (http/https; private addresses are refused)."})


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


MAX_MEDIA_ITEMS = 10


def media_limit_bytes(mimetype: str) -> int:
    """Photos and videos have the smaller limit; everything else goes as a document."""
    settings = _settings()
    return limit_bytes(kind_of(mimetype), media_max_mb=settings.media_max_mb,
                       document_max_mb=settings.document_max_mb)


class InlineMediaSchema(RequestSchema):
    filename = Line(required=True, validate=validate.Length(min=1, max=255))
    mimetype = Line(required=True, validate=[validate.Length(max=255), validate.Regexp(r"^[\w.+-]+/[\w.+-]+\Z")])
    data = Line(required=True, metadata={"description": "The file, base64-encoded (within REQUEST_MAX_MB and "
                                                        "the media limits)."})

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


class SendMessageSchema(RequestSchema):
    to = Line(required=True, validate=[validate.Length(max=PHONE_INPUT_MAX), valid_phone], metadata={
        "example": "919876543210",
        "description": "International number; 10 bare digits take the default region (India)."})
    message = Text(required=True, validate=validate.Length(max=65536), metadata={
        "description": "The text; with media, the caption of the first file (may then be empty)."})
    media_urls = fields.List(Url(), load_default=list, validate=validate.Length(max=MAX_MEDIA_ITEMS), metadata={
        "description": "http(s) files the worker downloads and attaches (images and videos as media, "
                       "others as documents)."})
    media = fields.List(fields.Nested(InlineMediaSchema), load_default=list,
                        validate=validate.Length(max=MAX_MEDIA_ITEMS),
                        metadata={"description": "Files sent inline, base64-encoded."})
    callback_url = Url(**CALLBACK_URL)

    @validates_schema
    def text_or_media(self, data, **_):
        if not (data.get("message") or "").strip() and not data.get("media_urls") and not data.get("media"):
            raise ValidationError("message must not be empty", "message")

    @post_load
    def add_e164(self, data, **_):
        data["to_e164"] = _e164(data["to"])
        data["attachments"] = [{"url": url} for url in data["media_urls"]] + list(data["media"])
        return data


class SendQuerySchema(RequestSchema):
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


class BulkItemSchema(SendMessageSchema):
    """One message of a bulk send: a number that is not valid fails on its own."""

    class Meta:
        exclude = ("callback_url",)

    to = Line(required=True, validate=validate.Length(min=1, max=PHONE_INPUT_MAX), metadata={"example": "+919876543210"})

    @post_load
    def add_e164(self, data, **_):
        try:
            data["to_e164"], data["error"] = _e164(data["to"]), None
        except InvalidPhoneNumber as exc:
            data["to_e164"], data["error"] = "", str(exc)
        data["attachments"] = [{"url": url} for url in data["media_urls"]] + list(data["media"])
        return data


class BulkSendSchema(RequestSchema):
    messages = fields.List(fields.Nested(BulkItemSchema), required=True, metadata={
        "description": "1 to BULK_MAX_MESSAGES (50) messages."})
    callback_url = Url(**CALLBACK_URL)

    def list_limit_errors(self, data: dict) -> dict:
        errors = super().list_limit_errors(data)
        limit = _settings().bulk_max_messages
        if isinstance(data.get("messages"), list) and not 1 <= len(data["messages"]) <= limit:
            errors["messages"] = [f"send 1 to {limit} messages per request"]
        return errors


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
