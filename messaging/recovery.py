"""Bringing sessions back: failover of a dead slot's sessions, recovery after a redeploy,
and the seed's POST /webjs/recovery/auth. Each places the session anew (a new fencing
number) and starts its browser, which restores the saved login before Chrome starts.
"""
from __future__ import annotations

import logging

import redis
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from messaging import dispatch, slots
from models import SessionStatus, WhatsAppSession
from models.placement import NoSlot, Placement, place

log = logging.getLogger("recovery")

# Sessions that lost their browser through no fault of their own come back by themselves.
AUTO_RECOVER_REASONS = ("WORKER_LOST", "WORKER_RESTARTED", "WORKER_STOPPED")


def recoverable(*, reasons: tuple[str, ...] | None = AUTO_RECOVER_REASONS):
    """Sessions once linked (a phone number is known) whose browser is gone."""
    query = select(WhatsAppSession).where(WhatsAppSession.phone_number.is_not(None),
                                          WhatsAppSession.status == SessionStatus.DISCONNECTED.value)
    if reasons is not None:
        query = query.where(WhatsAppSession.status_reason.in_(reasons))
    return query


def recover(db: sessionmaker, client: redis.Redis, celery: Celery, query, *, reason: str,
            limit: int = 200) -> tuple[list[Placement], list[tuple[str, str]]]:
    """Place and start every session ``query`` selects; returns (placed, [(session, why not)])."""
    live = slots.live_slots(client)
    placed, failed = [], []
    with db.begin() as s:
        rows = s.execute(query.order_by(WhatsAppSession.updated_at).limit(limit)
                         .with_for_update(skip_locked=True)).scalars().all()
        for row in rows:
            try:
                placed.append(place(s, row, live, reason=reason))
            except NoSlot as exc:
                failed.append((row.session_id, str(exc)))
    for p in placed:
        try:
            dispatch.start_placement(celery, p)
            log.info("session=%s placed on %s (%s)", p.session_id, p.slot, reason)
        except dispatch.ENQUEUE_ERRORS as exc:  # its INITIALIZING goes stale; the stuck cleanup retires it
            failed.append((p.session_id, f"could not be enqueued: {exc}"))
    return placed, failed
