"""What a request may hold, and the shape of a send (one message or a bulk), as in the
seed's README: shared by the REST API and the Celery entry points.

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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from models.media import kind_of, limit_bytes
from models.phones import NOT_A_PHONE, InvalidPhoneNumber, is_whatsapp_id, normalize_phone
from models.tables import seed_timestamp
from settings import Settings

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
        """The errors of the lists in ``data`` (the raw body) that break their Length limit,
        by field name; empty when none does."""
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
        """Refuse a body with an over-long list (ValidationError) before its items are loaded."""
        if isinstance(data, dict) and (errors := self.list_limit_errors(data)):
            raise ValidationError(errors)
        return data


# The settings a request is validated with (default region, media and bulk limits): set
# by the API for each request and by the Celery entry points for each call
# (marshmallow 4 has no schema context; its documentation recommends a context variable).
_SETTINGS: ContextVar[Settings] = ContextVar("request_settings")


@contextmanager
def validating_with(settings: Settings) -> Iterator[None]:
    """Validate requests inside this block with ``settings``."""
    token = _SETTINGS.set(settings)
    try:
        yield
    finally:
        _SETTINGS.reset(token)


def bind_settings(settings: Settings) -> None:
    """Validate this context's requests with ``settings`` (the API, before each request)."""
    _SETTINGS.set(settings)


def _settings() -> Settings:
    try:
        return _SETTINGS.get()
    except LookupError:
        raise RuntimeError("requests are validated inside validating_with(settings)") from None


def _e164(raw: str) -> str:
    return normalize_phone(raw, _settings().default_region)


def not_a_whatsapp_id(raw: str) -> None:
    """A marshmallow validator: ValidationError ("must be a phone number…") when ``raw`` is a
    group's or another WhatsApp id (``…@g.us``, ``…@broadcast``, ``…@newsletter``): this API
    sends to numbers only, and a mistyped number it is not."""
    if is_whatsapp_id(raw):
        raise ValidationError(NOT_A_PHONE)


def valid_phone(raw: str) -> None:
    """A marshmallow validator: ValidationError unless ``raw`` reads as a phone number in the
    request's default region: the seed's text, or ``not_a_whatsapp_id``'s for a WhatsApp id."""
    not_a_whatsapp_id(raw)
    try:
        _e164(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationError(str(exc)) from exc


CALLBACK_URL = dict(metadata={
    "description": "Where webhooks for this go (http/https; private addresses are refused)."})


MAX_MEDIA_ITEMS = 10


def media_limit_bytes(mimetype: str) -> int:
    """Photos and videos have the smaller limit; everything else goes as a document."""
    settings = _settings()
    return limit_bytes(kind_of(mimetype), media_max_mb=settings.media_max_mb,
                       document_max_mb=settings.document_max_mb)


class InlineMediaSchema(RequestSchema):
    """A file sent inline: its name, MIME type and base64 ``data``."""

    filename = Line(required=True, validate=validate.Length(min=1, max=255))
    mimetype = Line(required=True, validate=[validate.Length(max=255), validate.Regexp(r"^[\w.+-]+/[\w.+-]+\Z")])
    data = Line(required=True, metadata={"description": "The file, base64-encoded (within REQUEST_MAX_MB and "
                                                        "the media limits)."})

    @validates_schema
    def check_data(self, item, **_):
        """ValidationError when ``data`` is not base64, empty, or over the media limit of its
        MIME type (bytes after decoding)."""
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
    """The body of a single send (``POST .../send``): a number, a text, files by URL or inline."""

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
    mark_chat_read = fields.Boolean(load_default=False, metadata={
        "description": "Mark the chat read once the message is out (as a person who writes back would)."})

    @validates_schema
    def text_or_media(self, data, **_):
        """ValidationError when there is neither a text nor a file."""
        if not (data.get("message") or "").strip() and not data.get("media_urls") and not data.get("media"):
            raise ValidationError("message must not be empty", "message")

    @post_load
    def add_e164(self, data, **_):
        """Add ``to_e164`` (digits, no "+") and ``attachments`` (the URLs as ``{"url"}``, then
        the inline files)."""
        data["to_e164"] = _e164(data["to"])
        data["attachments"] = [{"url": url} for url in data["media_urls"]] + list(data["media"])
        return data


class BulkItemSchema(SendMessageSchema):
    """One message of a bulk send: a number that is not valid fails on its own."""

    class Meta:
        """A bulk item has no ``callback_url`` of its own (the request's is used)."""

        exclude = ("callback_url",)

    to = Line(required=True, validate=[validate.Length(min=1, max=PHONE_INPUT_MAX), not_a_whatsapp_id],
              metadata={"example": "+919876543210"})

    @post_load
    def add_e164(self, data, **_):
        """As SendMessageSchema's, but an invalid number sets ``error`` (and ``to_e164`` "")
        instead of refusing the whole request (a WhatsApp id, such as a group's, refuses it)."""
        try:
            data["to_e164"], data["error"] = _e164(data["to"]), None
        except InvalidPhoneNumber as exc:
            data["to_e164"], data["error"] = "", str(exc)
        data["attachments"] = [{"url": url} for url in data["media_urls"]] + list(data["media"])
        return data


class BulkSendSchema(RequestSchema):
    """The body of a bulk send: its messages and one ``callback_url``."""

    messages = fields.List(fields.Nested(BulkItemSchema), required=True, metadata={
        "description": "1 to BULK_MAX_MESSAGES (50) messages."})
    callback_url = Url(**CALLBACK_URL)

    def list_limit_errors(self, data: dict) -> dict:
        """Also: 1 to ``bulk_max_messages`` (settings) messages."""
        errors = super().list_limit_errors(data)
        limit = _settings().bulk_max_messages
        if isinstance(data.get("messages"), list) and not 1 <= len(data["messages"]) <= limit:
            errors["messages"] = [f"send 1 to {limit} messages per request"]
        return errors
