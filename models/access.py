"""Who may act on what: the scope of an API key.

A key is either ``admin`` (every session, and key management) or scoped to a tenant: it
sees and acts only on sessions whose user id matches one of its prefixes or is in its
list of user ids, and on sessions and jobs it created itself. Everything else answers
404, exactly as if it did not exist.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, false, or_, true

from models.tables import Job, WhatsAppSession


@dataclass(frozen=True)
class Scope:
    """What one caller may see. ``key_id``: the ApiKey's id (None for a trusted internal
    caller); ``idempotency``: the namespace of its Idempotency-Keys."""

    admin: bool
    key_id: str | None = None
    prefixes: tuple[str, ...] = ()
    user_ids: frozenset[str] = field(default_factory=frozenset)
    idempotency: str = "-"

    def covers(self, user_id: str) -> bool:
        """Whether a session of ``user_id`` is inside this scope (creating one included)."""
        return self.admin or user_id in self.user_ids or any(user_id.startswith(p) for p in self.prefixes)

    def _user_id_clause(self, column) -> ColumnElement[bool]:
        clauses = [column.startswith(p, autoescape=True) for p in self.prefixes]
        if self.user_ids:
            clauses.append(column.in_(sorted(self.user_ids)))
        return or_(*clauses) if clauses else false()

    def sessions(self) -> ColumnElement[bool]:
        """A WHERE clause over ``whatsapp_sessions``: the rows this scope may see."""
        if self.admin:
            return true()
        own = [WhatsAppSession.api_key_id == self.key_id] if self.key_id else []
        return or_(self._user_id_clause(WhatsAppSession.user_id), *own)

    def jobs(self) -> ColumnElement[bool]:
        """A WHERE clause over ``jobs``: jobs of its sessions (a session's id is its user
        id), and jobs it created."""
        if self.admin:
            return true()
        own = [Job.api_key_id == self.key_id] if self.key_id else []
        return or_(self._user_id_clause(Job.session_id), *own)


# Internal callers that are trusted by deployment (the recorder, beat, a service calling
# the Celery tasks without a key where API_TASKS_REQUIRE_KEY is off).
TRUSTED = Scope(admin=True, idempotency="celery")
