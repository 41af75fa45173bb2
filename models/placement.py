"""Placing a session on a browser slot, for every path that starts a browser: the
initialize and restart endpoints, failover of a dead slot's sessions, and recovery.

A placement is a lease with a fencing number: the session's ``epoch`` grows with every
placement, the worker's events carry it, and the recorder refuses events of an older
one, so at most one browser speaks for a session.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.recording import change_session_status
from models.states import SessionStatus
from models.tables import WhatsAppSession, placed_and_live


class NoSlot(Exception):
    """No live slot at all (``full`` False) or every live slot is full (``full`` True)."""

    def __init__(self, full: bool):
        super().__init__("every slot is full" if full else "no live slot")
        self.full = full


@dataclass(frozen=True)
class Placement:
    """Where ``place`` put a session: its ``slot`` and new fencing ``epoch``, and the
    (slot, epoch) of the browser it may still have elsewhere, to be stopped first."""

    session_id: str
    slot: str
    epoch: int
    previous: tuple[str, int] | None  # (slot, epoch) of a browser that may still run elsewhere


def place(s: Session, row: WhatsAppSession, live: list, *, reason: str, prefer: str | None = None) -> Placement:
    """Give ``row`` a slot (``prefer`` if it is live and has room, else the least loaded)
    and a new fencing number, and record INITIALIZING. The caller commits, then enqueues."""
    if not live:
        raise NoSlot(full=False)
    used = dict(s.execute(select(WhatsAppSession.slot, func.count()).where(placed_and_live())
                          .group_by(WhatsAppSession.slot)).all())
    holds_place = row.slot is not None and s.execute(
        select(func.count()).where(placed_and_live(), WhatsAppSession.id == row.id)).scalar_one()
    if holds_place:  # its own place is free for itself
        used[row.slot] = used.get(row.slot, 1) - 1
    preferred = next((x for x in live if x.name == prefer and used.get(x.name, 0) < x.capacity), None)
    chosen = preferred or choose_slot(live, used)
    if chosen is None:
        raise NoSlot(full=True)
    previous = (row.slot, row.epoch) if row.slot and row.slot != chosen.name else None
    row.slot = chosen.name
    # A fencing number that only grows, also across a re-created session.
    row.epoch = max(row.epoch + 1, time.time_ns() // 1_000_000)
    change_session_status(s, row, SessionStatus.INITIALIZING, reason=reason)
    return Placement(row.session_id, chosen.name, row.epoch, previous)


def choose_slot(slots: list, used: dict[str, int]):
    """The least loaded live slot with room (``slots``: the registry's live slots, each with
    ``name`` and ``capacity``; ``used``: sessions placed per slot name), or None when every
    slot is full."""
    with_room = [s for s in slots if used.get(s.name, 0) < s.capacity]
    if not with_room:
        return None
    return min(with_room, key=lambda s: (used.get(s.name, 0) / s.capacity, used.get(s.name, 0), s.name))
