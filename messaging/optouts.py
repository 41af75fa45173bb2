"""The slots' copy of the sessions' opt-out lists (the rows are in PostgreSQL, see
``models.optouts``): one Redis set per session, written once a change commits, read by
the slot just before a send touches the page."""
from __future__ import annotations

import redis

from models.phones import number_forms


class OptOutMirror:
    """Per session, the numbers its messages must not reach (every form of each)."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    @staticmethod
    def key(session_id: str) -> str:
        """The Redis set of the session's opted-out numbers (every form of each)."""
        return f"wa:optouts:{session_id}"

    def add(self, session_id: str, number: str) -> None:
        """``number`` (digits) is opted out of the session."""
        self.redis.sadd(self.key(session_id), number)

    def remove(self, session_id: str, number: str) -> None:
        """``number`` may be written to again."""
        self.redis.srem(self.key(session_id), number)

    def contains(self, session_id: str, number: str) -> bool:
        """Whether ``number``, in any of its forms, is opted out of the session."""
        forms = sorted(number_forms(number))
        return any(self.redis.smismember(self.key(session_id), forms))
