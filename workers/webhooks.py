"""Webhook delivery, on the control worker: beat runs ``wa.control.deliver_webhooks`` every
2 s, which POSTs the due rows of the outbox (models/webhooks.py) through the network guard.

Each row is claimed on its own (``SELECT ... FOR UPDATE SKIP LOCKED``, its next attempt
pushed a lease ahead) and the claim is committed before the POST: no transaction stays open
during HTTP, two workers never POST the same row at once, and a row whose worker died is
taken again when its lease ends.  Delivery is therefore at least once; a receiver drops
repeats by ``X-Webhook-Id``, the same on every attempt, as is the body.

An answer 2xx is delivered.  408, 429, 5xx, timeouts and connection errors are retried
after an exponentially growing, fully jittered wait (``backoff``), until the event is
``webhook_max_age_hours`` old.  Any other answer (3xx too: redirects are not followed) and a
URL the guard refuses fail for good.  Logs and ``last_error`` never show a URL's query.

With a secret, ``X-Webhook-Signature`` is ``sha256=`` + hex HMAC-SHA256 of
``f"{X-Webhook-Timestamp}."`` + the body; a receiver checks it with ``verify``.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from urllib3 import Timeout
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError as Urllib3Timeout

from models import DeliveryStatus, WebhookDelivery, utcnow
from settings import Settings
from workers import netguard
from workers.app import celery
from workers.control_tasks import resources
from workers.media import loggable
from workers.netguard import AllowList, BlockedAddress
from workers.send_rules import backoff_seconds

log = logging.getLogger("webhooks")

USER_AGENT = "wa-backend-webhooks/1"
RETRY_BASE = 5.0  # the longest wait before the first retry; it doubles with every attempt
RETRY_CAP = 3600.0  # and never exceeds an hour
LEASE_SLACK = 30.0  # a claimed row is held webhook_timeout + this, then another worker may take it
_RETRY_AFTER_STATUSES = (429, 503)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """X-Webhook-Signature: ``sha256=`` and the hex HMAC-SHA256, keyed by ``secret``, of
    ``<timestamp>.<body>`` (``timestamp``: X-Webhook-Timestamp, epoch seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300,
           now: float | None = None) -> bool:
    """Whether ``signature`` (X-Webhook-Signature) signs ``body`` sent at ``timestamp``
    (X-Webhook-Timestamp), and that time is within ``tolerance`` seconds of ``now``, so an
    old request replayed is refused."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), (signature or "").encode())


class Result(StrEnum):
    """What came of one delivery attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # for good


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, with the HTTP status when there was one."""

    result: Result
    status_code: int | None = None
    error: str | None = None  # why it was not delivered, without the URL
    retry_after: float | None = None  # seconds, from a 429 or 503


def deliver_once(row: WebhookDelivery, settings: Settings, allow: AllowList) -> Outcome:
    """POST ``row`` once and say what came of it; network trouble is an outcome, not an error."""
    body = row.body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": row.id,
        "X-Webhook-Event": row.event_type,
        "X-Webhook-Timestamp": timestamp,
    }
    if settings.webhook_secret:
        headers["X-Webhook-Signature"] = sign(settings.webhook_secret, timestamp, body)
    try:
        response = netguard.request("POST", row.url, allow, timeout=Timeout(total=settings.webhook_timeout),
                                    headers=headers, body=body)
    except BlockedAddress as exc:
        return Outcome(Result.FAILED, error=f"refused: {exc}")
    except socket.gaierror:
        return Outcome(Result.RETRY, error="cannot resolve the host")
    except NewConnectionError as exc:  # before timeouts: urllib3 makes it a subclass
        return Outcome(Result.RETRY, error=f"connection failed: {_reason(exc)}")
    except (Urllib3Timeout, TimeoutError):
        return Outcome(Result.RETRY, error=f"timed out after {settings.webhook_timeout:g} s")
    except (HTTPError, OSError) as exc:
        return Outcome(Result.RETRY, error=f"connection failed: {_reason(exc)}")
    try:
        return outcome_of(response.status, response.headers.get("Retry-After"))
    finally:
        response.close()  # the receiver's answer body says nothing we keep


def outcome_of(status: int, retry_after: str | None = None) -> Outcome:
    """The outcome of an HTTP answer: 2xx delivered; 408, 429 and 5xx retried (after
    ``Retry-After`` seconds for 429 and 503 when given); the rest, redirects too, failed."""
    if 200 <= status < 300:
        return Outcome(Result.DELIVERED, status)
    if status in (408, 429) or status >= 500:
        seconds = retry_after.strip() if retry_after else ""
        wait = float(seconds) if status in _RETRY_AFTER_STATUSES and seconds.isdigit() else None
        return Outcome(Result.RETRY, status, f"HTTP {status}", wait)
    if 300 <= status < 400:
        return Outcome(Result.FAILED, status, f"HTTP {status}: redirects are not followed")
    return Outcome(Result.FAILED, status, f"HTTP {status}")


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``attempts``-th attempt failed: full jitter, a random wait up
    to 5 s, 10 s, 20 s, ... (an hour at most), but no less than the receiver's Retry-After
    (itself capped at an hour)."""
    wait = backoff_seconds(attempts - 1, base=RETRY_BASE, cap=RETRY_CAP, low=0.0)
    if retry_after is not None:
        wait = max(wait, min(retry_after, RETRY_CAP))
    return wait


def expires_at(row: WebhookDelivery, settings: Settings) -> datetime:
    """When a delivery is given up: ``webhook_max_age_hours`` after its event happened."""
    return row.created_at + timedelta(hours=settings.webhook_max_age_hours)


def record(row: WebhookDelivery, outcome: Outcome, settings: Settings, now: datetime) -> None:
    """Write the outcome of the attempt ``row.attempts`` counts last."""
    row.last_status_code, row.last_error = outcome.status_code, outcome.error
    if outcome.result is Result.DELIVERED:
        row.status, row.delivered_at = DeliveryStatus.DELIVERED.value, now
    elif outcome.result is Result.FAILED:
        row.status = DeliveryStatus.FAILED.value
    else:
        at = now + timedelta(seconds=backoff(row.attempts, outcome.retry_after))
        if at > expires_at(row, settings):
            row.status = DeliveryStatus.FAILED.value
            row.last_error = f"{outcome.error}; gave up after {row.attempts} attempts"
        else:
            row.next_attempt_at = at


def deliver_due(settings: Settings, db: sessionmaker, limit: int = 100, *, budget: float = 30.0) -> int:
    """Attempt the rows due now, one claim at a time, until none is left, ``limit`` rows were
    taken or ``budget`` seconds passed (one slow receiver must not hold the control worker);
    return how many rows were taken."""
    allow = AllowList.parse(settings.webhook_allow_networks)
    # Only rows due when the run began: a row retried moments later waits for the next run.
    due_by, deadline = utcnow(), time.monotonic() + budget
    taken = 0
    while taken < limit and time.monotonic() < deadline:
        row = _claim(db, settings, due_by)
        if row is None:
            break
        taken += 1
        if row.status == DeliveryStatus.PENDING:
            _record(db, row, deliver_once(row, settings, allow), settings)
    return taken


def _claim(db: sessionmaker, settings: Settings, due_by: datetime) -> WebhookDelivery | None:
    """The next due row, held for a lease and counted as an attempt, or failed when it is too old."""
    with db.begin() as s:
        row = s.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING.value, WebhookDelivery.next_attempt_at <= due_by)
            .order_by(WebhookDelivery.next_attempt_at).limit(1).with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if row is None:
            return None
        now = utcnow()
        if now >= expires_at(row, settings):
            last = f"; last: {row.last_error}" if row.last_error else ""
            row.status = DeliveryStatus.FAILED.value
            row.last_error = f"not delivered within {settings.webhook_max_age_hours:g} h{last}"
            log.warning("webhook expired id=%s type=%s url=%s attempts=%d", row.id, row.event_type,
                        loggable(row.url), row.attempts)
        else:
            row.attempts += 1
            row.next_attempt_at = now + timedelta(seconds=settings.webhook_timeout + LEASE_SLACK)
    return row


def _record(db: sessionmaker, claimed: WebhookDelivery, outcome: Outcome, settings: Settings) -> None:
    with db.begin() as s:
        row = s.get(WebhookDelivery, claimed.id, with_for_update=True)
        if row is None or row.status != DeliveryStatus.PENDING or row.attempts != claimed.attempts:
            # Our lease ran out and another worker took the row: its attempt speaks now.
            log.warning("webhook outcome dropped id=%s attempt=%d result=%s", claimed.id, claimed.attempts,
                        outcome.result)
            return
        record(row, outcome, settings, utcnow())
    level = logging.WARNING if row.status == DeliveryStatus.FAILED else logging.INFO
    log.log(level, "webhook attempt id=%s type=%s url=%s attempt=%d status=%s code=%s error=%s",
            row.id, row.event_type, loggable(row.url), row.attempts, row.status, row.last_status_code,
            row.last_error)


def _reason(exc: BaseException) -> str:
    """What went wrong on the socket ("Connection refused"), without urllib3's wrapping."""
    cause = exc.__cause__ or exc.__context__ or exc
    return getattr(cause, "strerror", None) or type(cause).__name__


@celery.task(name="wa.control.deliver_webhooks")
def deliver_webhooks(limit: int = 100) -> int:
    """Post the webhooks that are due (at most ``limit``); returns how many were delivered."""
    w = resources()
    return deliver_due(w.settings, w.db, limit=limit)
