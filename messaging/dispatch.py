"""Task signatures, in one place, for whoever enqueues (the API and the sweeper)."""
from __future__ import annotations

import redis
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from models.placement import Placement
from settings import slot_queue

INITIALIZE = "wa.slot.initialize"
SEND_MESSAGE = "wa.slot.send_message"
REQUEST_PAIRING_CODE = "wa.slot.request_pairing_code"
STOP_SESSION = "wa.slot.stop_session"
CHECK_NUMBERS = "wa.slot.check_numbers"
MARK_CHAT_READ = "wa.slot.mark_chat_read"

# What an enqueue raises when the broker is away: the caller leaves the work to the sweeper
# (or answers 503) instead of failing.
ENQUEUE_ERRORS = (redis.RedisError, KombuOperationalError, ConnectionError, OSError)

# Enqueueing must fail fast when Redis is away: the row is already durable and the
# sweeper dispatches it later, so the API must not hang on retries.
_NO_RETRY = {"retry": False}


def initialize_session(celery: Celery, *, slot: str, session_id: str, epoch: int) -> None:
    """Ask ``slot`` to start the session's browser for placement ``epoch`` (not retried
    by Celery: the sweeper places it again if it is lost)."""
    celery.send_task(INITIALIZE, kwargs={"session_id": session_id, "epoch": epoch},
                     queue=slot_queue(slot), **_NO_RETRY)


def send_message(celery: Celery, *, slot: str, message_id: str, job_id: str, session_id: str,
                 epoch: int, to: str, text: str, media: list[dict] | None = None,
                 pacing: dict | None = None, attempt: int = 1, earlier: dict | None = None,
                 mark_chat_read: bool = False, first_dispatch: float | None = None) -> None:
    """``earlier``: what PostgreSQL knows of earlier dispatches that were never confirmed
    (``{"since": epoch seconds, "after_id": wa id or None}``); the slot then looks for the
    message in the chat before sending it. ``first_dispatch``: the message's first
    dispatch (``messages.dispatched_at``, epoch seconds), carried so that a redelivered or
    retried task knows from when to look. ``mark_chat_read``: the slot marks the chat read
    once the message is out."""
    celery.send_task(SEND_MESSAGE, kwargs={
        "message_id": message_id, "job_id": job_id, "session_id": session_id,
        "epoch": epoch, "to": to, "text": text, "media": media or None, "pacing": pacing or None,
        "attempt": attempt, "earlier": earlier, **({"mark_chat_read": True} if mark_chat_read else {}),
        **({"first_dispatch": first_dispatch} if first_dispatch is not None else {}),
    }, queue=slot_queue(slot), **_NO_RETRY)


def start_placement(celery: Celery, placement: Placement, *, stop: tuple[str, int] | None = None) -> None:
    """Start a committed placement's browser, after stopping the one it replaces: ``stop``
    (slot, epoch), by default the placement's previous place. The stop goes first, so a
    browser on the same slot (whose queue runs in order) is closed before the new one starts.
    Raises one of ``ENQUEUE_ERRORS`` when the broker is away."""
    old = stop or placement.previous
    if old:
        stop_session(celery, slot=old[0], session_id=placement.session_id, epoch=old[1], forget=False)
    initialize_session(celery, slot=placement.slot, session_id=placement.session_id, epoch=placement.epoch)


def request_pairing_code(celery: Celery, *, slot: str, session_id: str, epoch: int, phone: str) -> None:
    """Ask ``slot`` for a pairing code to link ``phone`` (E.164 digits) instead of a QR."""
    celery.send_task(REQUEST_PAIRING_CODE, kwargs={"session_id": session_id, "epoch": epoch, "phone": phone},
                     queue=slot_queue(slot), **_NO_RETRY)


def stop_session(celery: Celery, *, slot: str, session_id: str, epoch: int, forget: bool) -> None:
    """Ask ``slot`` to stop the session's browser of placement ``epoch``; ``forget`` also
    deletes its saved login."""
    celery.send_task(STOP_SESSION, kwargs={"session_id": session_id, "epoch": epoch, "forget": forget},
                     queue=slot_queue(slot), **_NO_RETRY)


def check_numbers(celery: Celery, *, slot: str, session_id: str, epoch: int, request_id: str,
                  numbers: list[str]) -> None:
    """Ask the session's page whether each number (digits) is on WhatsApp; the answers go
    to the contact cache and, at the end, out as a ``contacts_checked`` notice carrying
    ``request_id`` on the session's live channel."""
    celery.send_task(CHECK_NUMBERS, kwargs={"session_id": session_id, "epoch": epoch, "request_id": request_id,
                                            "numbers": numbers}, queue=slot_queue(slot), **_NO_RETRY)


def mark_chat_read(celery: Celery, *, slot: str, session_id: str, epoch: int, request_id: str, phone: str) -> None:
    """Mark the session's chat with ``phone`` read; the outcome goes out as a ``chat_read``
    notice carrying ``request_id`` on the session's live channel."""
    celery.send_task(MARK_CHAT_READ, kwargs={"session_id": session_id, "epoch": epoch, "request_id": request_id,
                                             "phone": phone}, queue=slot_queue(slot), **_NO_RETRY)
