"""State rules for sessions, messages and jobs, applied in one place.

The recorder and the API both go through these functions, so an illegal or stale
transition is refused (and logged by the caller) instead of silently written.
"""
from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    """A session's state, the seed's names (``whatsapp_sessions.status``)."""

    INITIALIZING = "INITIALIZING"
    QR_READY = "QR_READY"
    AUTHENTICATED = "AUTHENTICATED"
    READY = "READY"
    DISCONNECTED = "DISCONNECTED"
    DESTROYED = "DESTROYED"


S = SessionStatus
SESSION_TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    # A new QR replaces the old one, so QR_READY -> QR_READY is a real transition.
    S.INITIALIZING: frozenset({S.INITIALIZING, S.QR_READY, S.AUTHENTICATED, S.READY, S.DISCONNECTED, S.DESTROYED}),
    S.QR_READY: frozenset({S.INITIALIZING, S.QR_READY, S.AUTHENTICATED, S.READY, S.DISCONNECTED, S.DESTROYED}),
    S.AUTHENTICATED: frozenset({S.INITIALIZING, S.READY, S.DISCONNECTED, S.DESTROYED}),
    S.READY: frozenset({S.INITIALIZING, S.DISCONNECTED, S.DESTROYED}),
    S.DISCONNECTED: frozenset({S.INITIALIZING, S.DISCONNECTED, S.DESTROYED}),
    S.DESTROYED: frozenset(),
}

# The seed's answer when a session cannot send (said by the API and by a slot worker).
NOT_READY_MESSAGE = "Client is not ready. Please ensure the session is authenticated and ready."

# The reason of a DISCONNECTED session whose browser is still running, offline for now.
CONNECTION_LOST = "CONNECTION_LOST"


class DisconnectReason(StrEnum):
    """Why a session is DISCONNECTED (``status_reason``), as the slot's driver reports it."""

    CONNECTION_LOST = CONNECTION_LOST  # the phone or the computer is offline; READY again by itself
    TEMP_BANNED = "TEMP_BANNED"  # WhatsApp's temporary-ban screen; READY again when it lifts
    APP_LOCKED = "APP_LOCKED"  # the app-lock passcode screen; READY again once unlocked
    UNKNOWN_PAGE = "UNKNOWN_PAGE"  # a page the driver cannot classify; recycled after STUCK_TIMEOUT_SECONDS
    TOS_BLOCKED = "TOS_BLOCKED"  # the terms-of-service block screen (needs a person)
    NEEDS_UPDATE = "NEEDS_UPDATE"  # the page refuses this build even after a reload
    UNSUPPORTED_BROWSER = "UNSUPPORTED_BROWSER"  # "WhatsApp works with Google Chrome ..." (user agent)
    CONFLICT = "CONFLICT"  # open elsewhere, and not taken over (CONFLICT_POLICY)
    LOGOUT = "LOGOUT"  # logged out from the phone
    QR_TIMEOUT = "QR_TIMEOUT"
    BROWSER_CRASHED = "BROWSER_CRASHED"  # crashed more than MAX_CRASH_RESTARTS times in an hour (or never linked)
    BROWSER_RESTARTING = "BROWSER_RESTARTING"  # crashed; a new browser is starting from the saved login
    BROWSER_FAILED = "BROWSER_FAILED"  # Chrome did not start
    WORKER_STOPPED = "WORKER_STOPPED"  # the slot worker stopped cleanly; recovery places the session again


# DISCONNECTED for these reasons keeps the browser running: the page may come back to
# READY by itself, and the session keeps its place on the slot meanwhile.
BROWSER_KEPT_REASONS = frozenset({DisconnectReason.CONNECTION_LOST, DisconnectReason.TEMP_BANNED,
                                  DisconnectReason.APP_LOCKED, DisconnectReason.UNKNOWN_PAGE,
                                  DisconnectReason.BROWSER_RESTARTING})

# States in which a browser is (or is about to be) running for the session.
LIVE_SESSION_STATES = frozenset({S.INITIALIZING, S.QR_READY, S.AUTHENTICATED, S.READY})


def session_transition_allowed(current: SessionStatus | str, new: SessionStatus | str,
                               current_reason: str | None = None) -> bool:
    """Whether a session may move from ``current`` to ``new`` (SESSION_TRANSITIONS); out of
    DISCONNECTED back to a live state only when ``current_reason`` kept the browser running."""
    current, new = SessionStatus(current), SessionStatus(new)
    if current == S.DISCONNECTED and new in (S.READY, S.QR_READY, S.AUTHENTICATED):
        # Only a page whose browser kept running (offline, banned for a while, locked,
        # unknown for a moment, restarted after a crash) comes back by itself: to READY,
        # or to a QR when its stored login turned out to be gone.
        return current_reason in BROWSER_KEPT_REASONS
    return new in SESSION_TRANSITIONS[current]


def parse_stream_id(event_id: str | None) -> tuple[int, int]:
    """Redis stream ids ("ms-seq") order events; compare them as integer pairs."""
    if not event_id:
        return (0, 0)
    ms, _, seq = event_id.partition("-")
    return (int(ms), int(seq or 0))


def session_event_is_fresh(
    row_epoch: int, row_last_event: str | None, event_epoch: int, event_id: str
) -> bool:
    """An event from an older placement (epoch) or older than the last applied one is stale."""
    if event_epoch != row_epoch:
        return False
    return parse_stream_id(event_id) > parse_stream_id(row_last_event)


class MessageStatus(StrEnum):
    """A message's state (``messages.status``)."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"  # waiting for its time: pacing, a cap, an open circuit, a retry
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    CANCELLED = "cancelled"


M = MessageStatus
# Progress order of a message; a transition must move forward.
_MESSAGE_RANK = {M.QUEUED: 0, M.SCHEDULED: 0, M.SENDING: 1, M.SENT: 2, M.DELIVERED: 3, M.READ: 4}
# Not sent yet: waiting to be dispatched, for its time, or being tried.
MESSAGE_WAITING = frozenset({M.QUEUED, M.SCHEDULED})
MESSAGE_UNSENT = frozenset({M.QUEUED, M.SCHEDULED, M.SENDING})
MESSAGE_FINAL = frozenset({M.FAILED, M.CANCELLED})
MESSAGE_SUCCESS = frozenset({M.SENT, M.DELIVERED, M.READ})
MESSAGE_DONE = MESSAGE_FINAL | MESSAGE_SUCCESS


def message_transition_allowed(current: MessageStatus | str, new: MessageStatus | str) -> bool:
    """Whether a message may move from ``current`` to ``new``: forward only, waits and
    attempts alternating until sent; CANCELLED only while waiting; nothing out of FAILED or CANCELLED."""
    current, new = MessageStatus(current), MessageStatus(new)
    if current in MESSAGE_FINAL:
        return False
    if new in MESSAGE_FINAL:
        # Cancelling only stops messages that have not been handed to the page yet.
        return current in MESSAGE_WAITING if new == M.CANCELLED else current not in MESSAGE_SUCCESS
    if current in MESSAGE_UNSENT and new in (M.SENDING, M.SCHEDULED):
        return True  # waits and attempts alternate until the message is out
    return _MESSAGE_RANK[new] > _MESSAGE_RANK[current]


class JobStatus(StrEnum):
    """A job's state, derived from its messages' by ``job_status``."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


def job_status(statuses: list[MessageStatus | str]) -> JobStatus:
    """A job's status follows from its messages' statuses."""
    statuses = [MessageStatus(s) for s in statuses]
    if not statuses or all(s in MESSAGE_WAITING for s in statuses):
        return JobStatus.QUEUED
    if not all(s in MESSAGE_DONE for s in statuses):
        return JobStatus.PROCESSING
    if any(s in MESSAGE_SUCCESS for s in statuses):
        return JobStatus.COMPLETED
    if all(s == M.CANCELLED for s in statuses):
        return JobStatus.CANCELLED
    return JobStatus.FAILED
