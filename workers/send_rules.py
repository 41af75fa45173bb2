"""The decisions of a send, as plain functions of the facts.

The Celery task (``workers.slot_tasks.send_message``) gathers facts (is the session here
and sendable, is its breaker open, what did the pacer reserve, who holds the send claim,
how did the attempt end) and carries out what these functions decide. Nothing here talks
to Celery, Redis, PostgreSQL or Chrome, so every rule is tested with plain values
(tests/test_send_rules.py).

A decision is one of:

- ``Go(sleep)``: go on (after sleeping ``sleep`` seconds to keep the gap between sends);
- ``Wait(at, reason, attempt)``: the message is ``scheduled`` and comes back at ``at``
  (epoch seconds), with ``reason`` as its ``wait_reason``;
- ``Leave(why)``: end the task without a word; the message stays in PostgreSQL and the
  sweeper dispatches it again to wherever its session is READY;
- ``Cancelled()``: the message was cancelled; its pacing reservation is given back;
- ``Fail(error)``: the message failed for good.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

SHORT_WAIT = 0.5  # seconds: a pacing wait up to this long is slept through, not scheduled

PACING_REASONS = {"gap": "pacing: gap between sends", "hourly": "pacing: hourly cap reached",
                  "daily": "pacing: daily cap reached", "held": "pacing", "now": "pacing"}
OFFLINE_REASON = "offline"


def is_pacing(reason: str) -> bool:
    """Whether a ``wait_reason`` is pacing's: the normal course of a bulk send, no failure."""
    return reason in PACING_REASONS.values()

BREAKER_REASON = "circuit open: too many failures in a row"
BUSY_REASON = "another attempt is in progress"
# A restriction's wait_reason starts with this, then names it: "restricted: temporary ban".
RESTRICTED_PREFIX = "restricted: "


@dataclass(frozen=True)
class Go:
    """Send now, after ``sleep`` seconds."""

    sleep: float = 0.0


@dataclass(frozen=True)
class Wait:
    """Not now: come back at ``at`` (epoch seconds); ``reason`` is the message's ``wait_reason``."""

    at: float
    reason: str
    attempt: int | None = None  # the attempt number to come back with; None: the same


@dataclass(frozen=True)
class Leave:
    """This slot cannot send it (``why``); the sweeper dispatches it again where the session is."""

    why: str


@dataclass(frozen=True)
class Cancelled:
    """The message was cancelled: do nothing."""


@dataclass(frozen=True)
class Fail:
    """Fail the message for good with ``error``."""

    error: str


Decision = Go | Wait | Leave | Cancelled | Fail


class Availability(StrEnum):
    """What the slot can say about a session when a send for it arrives."""

    READY = "ready"
    GONE = "gone"  # not on this slot, another placement, or not logged in: the sweeper's
    OFFLINE = "offline"  # logged in, but the phone or the network is away
    RESTRICTED = "restricted"  # WhatsApp restricts the account for now (see ``Restriction``)


@dataclass(frozen=True)
class Restriction:
    """A pause WhatsApp imposes on a session: ``kind`` names it (``reachout_timelock``,
    ``new_chat_cap``, ``new_chat_link_limit``, ``temporary_ban``); ``until`` (epoch seconds)
    is when the slot looks again whether the page allows sending."""

    kind: str
    until: float


RESTRICTION_NAMES = {
    "reachout_timelock": "new chats are time-locked (reach-out timelock)",
    "new_chat_cap": "new chats are capped",
    "new_chat_link_limit": "new chats by link are limited",
    "temporary_ban": "temporary ban",
    "compose_locked": "the compose bar is locked",
}


def restriction_reason(kind: str) -> str:
    """The ``wait_reason`` of messages held by a restriction, e.g. 'restricted: temporary ban'."""
    return RESTRICTED_PREFIX + RESTRICTION_NAMES.get(kind, kind)


def backoff_seconds(attempt: int, base: float = 2.0, cap: float = 60.0,
                    uniform: Callable[[float, float], float] = random.uniform, low: float | None = None) -> float:
    """Exponential backoff with full jitter after attempt ``attempt`` (1, 2, ...): a
    number of seconds between ``low`` (default ``base / 2``) and ``min(cap, base * 2 ** attempt)``.
    The one backoff of the project: sends, and webhooks (``workers.webhooks.backoff``)."""
    return uniform(base / 2 if low is None else low, min(cap, base * (2 ** min(attempt, 30))))


def offline_wait(now: float, attempt: int, uniform=random.uniform) -> Wait:
    """A session whose phone or network is away: try again in 4.5 to 32 seconds."""
    return Wait(now + backoff_seconds(attempt, base=5.0, cap=30.0, uniform=uniform) + 2.0, OFFLINE_REASON)


def _held(state: str, *, now: float, attempt: int, restriction: Restriction | None, uniform,
          why: str) -> Decision | None:
    """The decision for a session that cannot send now, before or during a send
    (``state``: an Availability or an Outcome, which share "gone", "offline" and
    "restricted"); None when the state is none of them."""
    if state == "gone":
        return Leave(why)
    if state == "offline":
        return offline_wait(now, attempt, uniform)
    if state == "restricted" and restriction is not None:
        return Wait(restriction.until, restriction_reason(restriction.kind))
    return None


def before_send(*, now: float, attempt: int, availability: Availability, restriction: Restriction | None,
                breaker_open_until: float | None, reserved_at: float, reserved_reason: str,
                last_sent: float, min_gap: float, max_gap: float, uniform=random.uniform) -> Decision:
    """Whether a send may start now.

    ``reserved_at``/``reserved_reason``: the pacer's reservation for this message (epoch
    seconds, and why then: 'now', 'gap', 'hourly', 'daily', 'held'). ``last_sent``: when
    the session's last send was confirmed (epoch seconds). The gap counts from that
    confirmation, not from the reservation; it is slept through (at most ``max_gap``).
    """
    held = _held(availability, now=now, attempt=attempt, restriction=restriction, uniform=uniform,
                 why="the session is not ready on this slot")
    if held is not None:
        return held
    if breaker_open_until:
        return Wait(breaker_open_until, BREAKER_REASON)
    if reserved_at - now > SHORT_WAIT:
        return Wait(reserved_at, PACING_REASONS.get(reserved_reason, reserved_reason))
    gap_left = last_sent + min_gap - now
    return Go(sleep=min(gap_left, max_gap) if gap_left > 0 else 0.0)


def claim_decision(*, now: float, claim: str | None, cancelled_mark: str, send_timeout: float) -> Decision:
    """The send claim after taking it: ``claim`` is None when this task holds it, the
    ``cancelled_mark`` when the message was cancelled, else the holder of a live claim
    (another copy of this task is sending it right now)."""
    if claim is None:
        return Go()
    if claim == cancelled_mark:
        return Cancelled()
    return Wait(now + send_timeout, BUSY_REASON)


class Outcome(StrEnum):
    """How an attempt that did not send ended."""

    GONE = "gone"  # the session went away meanwhile
    OFFLINE = "offline"
    RESTRICTED = "restricted"  # the page refused for a restriction (SendRestricted)
    PERMANENT = "permanent"  # trying again cannot help (not on WhatsApp, media refused)
    UNCONFIRMED = "unconfirmed"  # committed but not confirmed: the message may be out
    TRANSIENT = "transient"  # anything else: a browser error, a chat that did not open


def counts_for_breaker(outcome: Outcome) -> bool:
    """Failures that open the session's circuit breaker when they come in a row. A
    restriction or an offline phone is the account's state, not a failing browser."""
    return outcome in (Outcome.UNCONFIRMED, Outcome.TRANSIENT)


def after_failure(*, now: float, attempt: int, max_retries: int, outcome: Outcome, error: str,
                  restriction: Restriction | None = None, uniform=random.uniform) -> Decision:
    """What follows an attempt that did not send.

    A restriction holds the message until it is looked at again, without using an
    attempt; an unconfirmed send gets one attempt more than ``max_retries`` (that one
    looks in the chat first, so it never sends twice); other failures are retried with
    backoff up to ``max_retries`` attempts, then fail.
    """
    held = _held(outcome, now=now, attempt=attempt, restriction=restriction, uniform=uniform,
                 why="the session went away during the send")
    if held is not None:
        return held
    if outcome == Outcome.PERMANENT:
        return Fail(error)
    last = max_retries + (1 if outcome == Outcome.UNCONFIRMED else 0)
    if attempt >= last:
        return Fail(error)
    return Wait(now + backoff_seconds(attempt, uniform=uniform), f"retrying after: {error}", attempt=attempt + 1)


@dataclass(frozen=True)
class Look:
    """Where to look for an earlier attempt's message in the chat before sending a part.

    ``after_row``: the chat's newest row when that attempt committed (from the slot's
    commit marker); ``since``: the epoch seconds from which a message of ours in the chat
    may be that attempt's (the message's first dispatch, from PostgreSQL);
    ``after_id``: the newest of our messages to the same number that PostgreSQL
    recorded as sent before it. Any of them may be None.
    """

    after_row: str | None = None
    since: float | None = None
    after_id: str | None = None


def earlier_attempts(*, earlier: dict | None, first_dispatch: float | None, redelivered: bool = False,
                     attempted: bool = False) -> dict | None:
    """What a send task knows of earlier attempts of its message, as ``earlier`` for
    ``look_before_send``; None only when this attempt is provably the first.

    ``earlier``: what the sweeper read from PostgreSQL (kept as it is). ``first_dispatch``:
    the message's first dispatch (epoch seconds, PostgreSQL's ``dispatched_at``), carried
    by the task from its first enqueue. ``redelivered``: the broker hands the task over
    again (Celery's ``delivery_info["redelivered"]``: a worker lost with the task
    unacknowledged, or the visibility timeout passed), so a copy of it may have sent the
    message. ``attempted``: this run went as far as the page (a retry it asks for carries
    what this returns). A task that was only paced, held by the breaker or scheduled by a
    restriction before it reached the page stays first: no run of it touched the chat.

    Without a first dispatch (a task enqueued by an older version) there is no time
    anchor, and None is returned: a look without one could take an older message with
    the same text for this one; the commit marker in Redis still decides then.
    """
    if earlier:
        return earlier
    if (redelivered or attempted) and first_dispatch is not None:
        return {"since": first_dispatch, "after_id": None}
    return None


def look_before_send(*, commit_marker: str | None, earlier: dict | None) -> Look | None:
    """Whether a part is looked for in the chat before it is sent, and where.

    ``commit_marker``: what Redis kept of an earlier attempt's commit ('' = the chat was
    empty then, None = nothing kept). ``earlier``: what PostgreSQL knows of earlier
    dispatches (``{"since": epoch seconds, "after_id": wa id or None}``), given by the
    sweeper when it dispatches a message that was dispatched before and never confirmed,
    and by the task itself when it was redelivered or retried after reaching the page
    (``earlier_attempts``).

    The look happens whenever an earlier attempt may have sent the message, not only
    when Redis still remembers it: a Redis that lost its last writes (or restarted
    empty) must not make a sent message look unsent. Without either fact no attempt can
    have committed (the marker is written before the send is committed, in the same
    Redis as the task's own retries), and no look is made: a look without an anchor could
    take an older message with the same text for this one.
    """
    since = after_id = None
    if earlier:
        since, after_id = earlier.get("since"), earlier.get("after_id")
    if commit_marker is not None:
        return Look(after_row=commit_marker or None, since=since, after_id=after_id)
    if earlier:
        return Look(since=since, after_id=after_id)
    return None
