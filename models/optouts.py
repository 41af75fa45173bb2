"""Opt-outs: the numbers a session must not write to any more.

A number gets on a session's list when its owner sends an opt-out keyword (STOP,
UNSUBSCRIBE, ...; ``OPT_OUT_KEYWORDS``) or when the service puts it there through the
API. Sends to it then fail at once with ``recipient opted out``: at acceptance (the rows
here are the truth) and again on the slot just before the page is touched, which reads a
Redis copy of the list (``messaging.optouts.OptOutMirror``) since slots hold no database
connection.

One account has several numbers (Mexico's "52 1", Brazil's ninth digit: ``number_forms``):
a number is on the list when any of its forms is.
"""
from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, delete, event, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.phones import number_forms
from models.tables import OptOut, WhatsAppSession, seed_timestamp, utcnow
from models.webhooks import enqueue_webhook

log = logging.getLogger("models.optouts")

OPTED_OUT = "recipient opted out"
WEBHOOK = "contact.opted_out"


class Mirror(Protocol):
    """Where a committed change of the list is copied for the slots (``messaging.optouts``)."""

    def add(self, session_id: str, number: str) -> None:
        """``number`` (E.164 digits) was put on ``session_id``'s list."""

    def remove(self, session_id: str, number: str) -> None:
        """``number`` (E.164 digits) was taken off ``session_id``'s list."""


def normalized_text(text: str) -> str:
    """A text as compared with the keywords: Unicode NFKC, case folded, inner whitespace
    collapsed, and punctuation, symbols (emoji) and invisible format characters trimmed
    from both ends ("Stop!", " STOP 🛑", "stop." all give "stop"). Marks inside words
    (Devanagari vowel signs) stay."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    words = " ".join(folded.split())

    def trimmed(ch: str) -> bool:
        return unicodedata.category(ch)[0] in "PSZC"

    start, end = 0, len(words)
    while start < end and trimmed(words[start]):
        start += 1
    while end > start and trimmed(words[end - 1]):
        end -= 1
    return " ".join(words[start:end].split())


def is_opt_out(text: str, keywords: Iterable[str]) -> bool:
    """Whether ``text``, as a whole, is one of ``keywords`` (compared normalized: see
    ``normalized_text``). "stop" is; "please don't stop" is not."""
    said = normalized_text(text)
    return bool(said) and said in {normalized_text(k) for k in keywords}


# Whether any form of some numbers is on a session's list: a column for the caller's own
# statement on whatsapp_sessions (correlated on its session_id), so that a send's acceptance
# reads its session and learns whether to look further in one round trip (``listed_numbers``
# then says which). Built once; the forms go in as the expanding parameter ``opt_out_forms``
# (``listed_forms``). Portable SQL: the demo runs on SQLite.
_LISTED = select(OptOut.number).where(OptOut.number.in_(bindparam("opt_out_forms", expanding=True)))
ANY_LISTED = _LISTED.where(OptOut.session_id == WhatsAppSession.session_id).exists().label("any_opted_out")


def listed_numbers(s: Session, session_id: str, forms: dict[str, str]) -> set[str]:
    """Which numbers of ``forms`` (``listed_forms``) are on the session's list."""
    listed = s.execute(_LISTED.where(OptOut.session_id == session_id), {"opt_out_forms": list(forms)}).scalars()
    return {forms[form] for form in listed}


def listed_forms(numbers: Iterable[str]) -> dict[str, str]:
    """Each form of each of ``numbers`` (digits), mapped to the number it is a form of: the
    ``opt_out_forms`` of ANY_LISTED, and what ``listed_numbers`` reads back."""
    return {form: n for n in {n for n in numbers if n} for form in number_forms(n)}


def find_opt_out(s: Session, session_id: str, number: str) -> OptOut | None:
    """The session's row for ``number`` (digits), in whichever of its forms it was listed."""
    return s.execute(select(OptOut).where(OptOut.session_id == session_id,
                                          OptOut.number.in_(number_forms(number)))).scalars().first()


def list_opt_outs(s: Session, session_id: str) -> list[OptOut]:
    """The session's list, oldest first."""
    return list(s.execute(select(OptOut).where(OptOut.session_id == session_id)
                          .order_by(OptOut.created_at, OptOut.number)).scalars())


def add_opt_out(s: Session, session_id: str, number: str, *, source: str, text: str | None = None,
                mirror: Mirror | None = None, at: datetime | None = None) -> OptOut | None:
    """Put ``number`` (digits) on the session's list in the caller's transaction, with a
    ``contact.opted_out`` webhook to the session's callback URL; the ``mirror`` learns it
    once the transaction commits. Returns the new row, None when the number (in any of its
    forms) was already on the list."""
    if find_opt_out(s, session_id, number) is not None:
        return None
    at = at or utcnow()
    values = dict(session_id=session_id, number=number, source=source, text=(text or None) and text[:500],
                  created_at=at)
    if not _insert_once(s, values):
        return None  # listed meanwhile by a concurrent transaction
    callback = s.execute(select(WhatsAppSession.callback_url)
                         .where(WhatsAppSession.session_id == session_id)).scalar_one_or_none()
    if callback:
        enqueue_webhook(s, callback, WEBHOOK, {"session_id": session_id, "number": number, "source": source,
                                               "opted_out_at": seed_timestamp(at)}, at=at)
    if mirror is not None:
        after_commit(s, lambda: mirror.add(session_id, number))
    return s.get(OptOut, (session_id, number))


def _insert_once(s: Session, values: dict) -> bool:
    """INSERT the row unless (session_id, number) is there already; whether it was new.
    One statement, so two opt-outs of one number at once cannot abort either transaction."""
    table = OptOut.__table__
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["session_id", "number"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["session_id", "number"])
    else:  # pragma: no cover - the project runs on PostgreSQL (SQLite for the demo)
        stmt = insert(table)
    return s.execute(stmt.values(**values).returning(table.c.number)).scalar_one_or_none() is not None


def remove_opt_out(s: Session, session_id: str, number: str, *, mirror: Mirror | None = None) -> bool:
    """Take ``number`` (every form of it) off the session's list; whether it was on it.
    The ``mirror`` forgets it once the transaction commits."""
    forms = number_forms(number)
    removed = s.execute(delete(OptOut).where(OptOut.session_id == session_id, OptOut.number.in_(forms))).rowcount
    if mirror is not None:
        after_commit(s, lambda: [mirror.remove(session_id, form) for form in forms])
    return bool(removed)


@dataclass(frozen=True)
class OptOutRules:
    """What the recorder applies to each text received: the keywords (OPT_OUT_KEYWORDS)
    and where a new opt-out is copied for the slots (a ``Mirror``, or None)."""

    keywords: tuple[str, ...]
    mirror: Mirror | None = None


def record_incoming_text(s: Session, session_id: str, sender_number: str, text: str, keywords: Iterable[str],
                         *, mirror: Mirror | None = None) -> bool:
    """Called for each incoming text, in the transaction that records it: when the whole
    text is an opt-out keyword (``is_opt_out``), put its sender (digits) on the session's
    list (``add_opt_out``, source "keyword"; a ``contact.opted_out`` webhook when new).
    Pass the Redis ``mirror`` (``messaging.optouts.OptOutMirror``) so that messages already
    accepted stop on the slot too. Returns whether the text was an opt-out."""
    if not sender_number or not is_opt_out(text, keywords):
        return False
    add_opt_out(s, session_id, sender_number, source="keyword", text=text, mirror=mirror)
    return True


def after_commit(s: Session, action) -> None:
    """Run ``action`` once the transaction ``s`` is in commits; never when it rolls back.
    An error of ``action`` is logged, not raised: the commit stands, and acceptance reads
    the rows themselves."""
    done = []

    def committed(_session) -> None:
        if not done:
            done.append(True)
            try:
                action()
            except Exception:
                log.exception("an opt-out is committed but the slots' copy was not updated")

    def rolled_back(_session) -> None:
        done.append(False)

    event.listen(s, "after_commit", committed, once=True)
    event.listen(s, "after_rollback", rolled_back, once=True)
