"""Tables. Ids are short prefixed random strings so they read well in logs and URLs."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from sqlalchemy import (
    JSON, BigInteger, Boolean, ColumnElement, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from models.states import BROWSER_KEPT_REASONS, LIVE_SESSION_STATES, JobStatus, MessageStatus, SessionStatus


SEED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """Now as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


def seed_timestamp(value: datetime | str) -> str:
    """2024-01-15T10:30:00Z: UTC, whole seconds (the seed's examples). The one format of
    every time a client reads: HTTP answers, webhook bodies, Celery entry point results."""
    if isinstance(value, str):  # a stored answer, replayed
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(SEED_TIME_FORMAT)


def new_id(prefix: str) -> str:
    """A new row id: ``prefix`` and 20 random hex digits ("job_3f2a...")."""
    return f"{prefix}_{secrets.token_hex(10)}"


class UTCDateTime(TypeDecorator):
    """Timestamps are always timezone-aware UTC, also on SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        """A value read back without a zone (SQLite) is UTC."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    """The declarative base of every table (``Base.metadata`` is what Alembic migrates)."""


class WhatsAppSession(Base):
    """The seed's WhatsAppSession, plus where it runs (slot, epoch) and the last applied event."""

    __tablename__ = "whatsapp_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("session"))
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    session_id: Mapped[str] = mapped_column(String(200), unique=True)
    session_name: Mapped[str | None] = mapped_column(String(200))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    is_authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    is_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    qr_code: Mapped[str | None] = mapped_column(Text)
    pairing_code: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), default=SessionStatus.INITIALIZING.value, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(64))
    s3_session_key: Mapped[str | None] = mapped_column(String(500))
    last_activity: Mapped[datetime | None] = mapped_column(UTCDateTime())
    api_key_id: Mapped[str | None] = mapped_column(String(40))  # the key that created it
    # Placement: the slot that owns the browser, and a fencing number bumped on every
    # placement so that events from an older browser are refused.
    slot: Mapped[str | None] = mapped_column(String(100))
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    last_event_id: Mapped[str | None] = mapped_column(String(40))
    callback_url: Mapped[str | None] = mapped_column(Text)  # where its webhooks go
    # Its own pacing ({min_gap_seconds, max_gap_seconds, hourly_cap, daily_cap}); None: defaults.
    pacing: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def placed_and_live() -> ColumnElement[bool]:
    """Sessions that hold a place on a slot: a browser is running or starting for them
    (also while its page is offline, banned for a while or locked: DISCONNECTED for one of
    BROWSER_KEPT_REASONS keeps the browser)."""
    offline = ((WhatsAppSession.status == SessionStatus.DISCONNECTED.value)
               & WhatsAppSession.status_reason.in_([r.value for r in BROWSER_KEPT_REASONS]))
    return WhatsAppSession.slot.is_not(None) & (
        WhatsAppSession.status.in_([s.value for s in LIVE_SESSION_STATES]) | offline)


class SessionTransition(Base):
    """Append-only log of every session state change that was applied."""

    __tablename__ = "session_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(200), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20))  # "api" or "worker"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Job(Base):
    """A send request: one message (``kind`` "single") or several ("bulk"); its status
    follows from its messages'."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    # No foreign key: a job's history outlives its session.
    session_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "single" or "bulk"
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED.value)
    total: Mapped[int] = mapped_column(Integer, default=0)
    callback_url: Mapped[str | None] = mapped_column(Text)  # where its webhooks go
    api_key_id: Mapped[str | None] = mapped_column(String(40))  # the key that sent it (None: a trusted caller)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    messages: Mapped[list["Message"]] = relationship(
        back_populates="job", order_by="Message.position", cascade="all, delete-orphan"
    )


class Message(Base):
    """One row per recipient."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_dispatch", "status", "dispatch_due_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    to: Mapped[str] = mapped_column(String(32))  # E.164 digits without "+"
    to_input: Mapped[str] = mapped_column(String(64))  # as the client wrote it
    text: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    wa_message_id: Mapped[str | None] = mapped_column(String(120))
    # The recipient as WhatsApp knows it (<digits>@c.us): its existence query's answer,
    # which can differ from the number given (Brazil's ninth digit, Mexico's "52 1").
    wa_id: Mapped[str | None] = mapped_column(String(64))
    # When a queued message that the recorder has not heard of should be dispatched again.
    dispatch_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The message before it to the same recipient, unsent when this one was accepted:
    # this one is dispatched only after it (messages to one recipient keep their order).
    after_message_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # When a send task for it was first enqueued: a later dispatch looks in the chat first
    # (an earlier one may have sent it without the news reaching PostgreSQL).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # while scheduled
    # Mark the chat read once the message is out (what a person replying would do).
    mark_chat_read: Mapped[bool] = mapped_column(Boolean, default=False)
    wait_reason: Mapped[str | None] = mapped_column(String(200))  # while scheduled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    job: Mapped[Job] = relationship(back_populates="messages")


class IncomingMessage(Base):
    """A message a session received, recorded once per (session, WhatsApp message id).

    ``seq`` orders the rows as they were recorded (one recorder writes them, batch after
    batch), so it is what the API's cursor names; ``id`` is the public id.
    """

    __tablename__ = "incoming_messages"
    __table_args__ = (UniqueConstraint("session_id", "wa_message_id", name="uq_incoming_session_wa_message"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, default=lambda: new_id("in"))
    # No foreign key: like jobs, what a session received outlives the session row.
    session_id: Mapped[str] = mapped_column(String(200))
    # The message's own id, the last part of its serialized id (false_<chat>_<id>), the
    # same in every address form of the chat; "dom-<digits>-<n>" when only the chat list
    # told of it (the page's modules did not answer).
    wa_message_id: Mapped[str] = mapped_column(String(160))
    wa_serialized: Mapped[str | None] = mapped_column(String(240))
    sender_number: Mapped[str | None] = mapped_column(String(32))  # E.164 digits; None if only a LID is known
    sender_wa_id: Mapped[str | None] = mapped_column(String(64))  # <digits>@c.us or <lid>@lid
    type: Mapped[str] = mapped_column(String(20), default="chat")  # WhatsApp's type: chat, image, document, ...
    text: Mapped[str | None] = mapped_column(Text)  # the text, or a media message's caption
    media_kind: Mapped[str | None] = mapped_column(String(20))  # image, video, audio, document, sticker
    media_mimetype: Mapped[str | None] = mapped_column(String(120))
    media_filename: Mapped[str | None] = mapped_column(String(255))
    media_size: Mapped[int | None] = mapped_column(BigInteger)  # bytes
    quoted_wa_message_id: Mapped[str | None] = mapped_column(String(160))  # the id of the message it quotes
    # Our message it replies to, when it quotes one of ours.
    in_reply_to_message_id: Mapped[str | None] = mapped_column(String(40))
    in_reply_to_job_id: Mapped[str | None] = mapped_column(String(40))
    route: Mapped[str] = mapped_column(String(10), default="modules")  # how the page told of it: modules or dom
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when WhatsApp says it was sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # when it was recorded


class ApiKey(Base):
    """API keys are stored as SHA-256 digests; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # admin: every session and key management; else scoped (models/access.py) to user-id
    # prefixes and user ids ({"prefixes": [...], "user_ids": [...]}).
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """The webhook outbox: one event for one callback URL, written in the transaction of the
    change it reports (models/webhooks.py) and POSTed by the control worker (workers/webhooks.py)
    until it is delivered or too old.  ``body`` is the exact JSON sent on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the event id, "evt_..."
    url: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # pending, delivered or failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OptOut(Base):
    """A number a session must not write to any more: its owner asked to stop (an incoming
    opt-out keyword) or the service said so through the API. Kept when the session is
    deleted: a session made again for the same user keeps its list."""

    __tablename__ = "opt_outs"

    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), primary_key=True)  # E.164 digits without "+"
    source: Mapped[str] = mapped_column(String(16))  # "keyword" (an incoming text) or "api"
    text: Mapped[str | None] = mapped_column(Text)  # the incoming text that asked, cut to 500
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyKey(Base):
    """An Idempotency-Key seen on a send: the same key and body answer the first response."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # whose key (API key digest)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
