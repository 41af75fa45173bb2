"""The webhook outbox.  ``enqueue_webhook`` adds an event in the caller's transaction, so
the event exists exactly when the change it reports is committed (and not at all when it is
rolled back); the control worker then POSTs it (workers/webhooks.py).

Event types, the body's ``"type"``; the caller decides when each is sent and what ``"data"``
holds:

- ``message.sent``, ``message.delivered``, ``message.read``, ``message.failed``: a message
  reached that status.
- ``job.finished``: every message of a job reached a final status.
- ``session.status``: a session changed status.
- ``contact.opted_out``: a number was put on a session's opt-out list (models/optouts.py).
- ``message.received``: a session received a message (once per WhatsApp message id).

The body is ``{"id": "evt_...", "type": ..., "created_at": "<ISO-8601 UTC>", "data": {...}}``;
the same bytes are sent on every attempt, so a receiver can drop repeated ids.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy.orm import Session

from models.tables import WebhookDelivery, new_id, seed_timestamp, utcnow

EVENT_TYPES = frozenset({
    "message.sent", "message.delivered", "message.read", "message.failed", "job.finished", "session.status",
    "session.notice", "session.restricted", "session.unrestricted", "contact.opted_out", "message.received",
})


class DeliveryStatus(StrEnum):
    """A webhook delivery's state (``webhook_deliveries.status``)."""

    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # refused for good, or still undelivered at the maximum age


def enqueue_webhook(s: Session, url: str, event_type: str, data: dict, *, at: datetime | None = None) -> str:
    """Add a pending delivery of a new event to ``url`` and return the event's id.  ``at``,
    when the event happened, is its ``created_at``: the maximum age counts from it."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {event_type!r}")
    at = (at or utcnow()).astimezone(timezone.utc)
    event_id = new_id("evt")
    body = json.dumps({"id": event_id, "type": event_type, "created_at": seed_timestamp(at), "data": data},
                      separators=(",", ":"))
    s.add(WebhookDelivery(id=event_id, url=url, event_type=event_type, body=body,
                          status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=at, created_at=at))
    return event_id
