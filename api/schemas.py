"""Request and response shapes, as in the seed's README."""
from __future__ import annotations

from flask import current_app
from marshmallow import Schema, ValidationError, fields, post_load, validate

from models.phones import InvalidPhoneNumber, normalize_phone


def _e164(raw: str) -> str:
    return normalize_phone(raw, current_app.extensions["wa"].settings.default_region)


def valid_phone(raw: str) -> None:
    try:
        _e164(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationError(str(exc)) from exc


class CreateSessionSchema(Schema):
    user_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    session_name = fields.String(validate=validate.Length(max=200))


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
    reason = fields.String(attribute="status_reason", allow_none=True,
                           metadata={"description": "Why the session is in its state (e.g. LOGOUT, QR_TIMEOUT)."})
    last_activity = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class QrSchema(Schema):
    session_id = fields.String()
    qr_code = fields.String(metadata={"description": "PNG data URL, empty when no QR is on screen."})
    status = fields.String()


class SendMessageSchema(Schema):
    to = fields.String(required=True, validate=valid_phone, metadata={
        "example": "919876543210",
        "description": "International number; 10 bare digits take the default region (India)."})
    message = fields.String(required=True, validate=validate.Length(min=1, max=65536))
    media_urls = fields.List(fields.Url(schemes={"http", "https"}), load_default=list)

    @post_load
    def add_e164(self, data, **_):
        data["to_e164"] = _e164(data["to"])
        return data


class SendQuerySchema(Schema):
    wait = fields.Float(load_default=0, validate=validate.Range(min=0, max=60),
                        metadata={"description": "Seconds (up to 60) to wait for the outcome."})


class SendResultSchema(Schema):
    success = fields.Boolean()
    job_id = fields.String()
    message_id = fields.String(metadata={"description": "This service's id of the message; poll the job."})
    status = fields.String(metadata={"description": "queued, sending, sent, delivered, read or failed"})
    whatsapp_message_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class MessageResultSchema(Schema):
    message_id = fields.String()
    to = fields.String()
    status = fields.String(metadata={"description": "success, failed or pending (the seed's values)"})
    message_status = fields.String()
    whatsapp_message_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    timestamp = fields.DateTime()


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
