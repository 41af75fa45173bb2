"""Answers of WhatsApp's existence query, kept per session in Redis for
``CONTACT_CHECK_CACHE_SECONDS``: the slot writes each answer as it gets it, the API reads
them (``POST /webjs/sessions/{id}/contacts/check``)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis


@dataclass(frozen=True)
class ContactAnswer:
    """Whether a number (digits) is on WhatsApp, and the id WhatsApp answered with
    (``<digits>@c.us``; it can differ from the number: Mexico's "52 1", Brazil's ninth digit)."""

    exists: bool
    wa_id: str | None
    checked_at: str  # ISO-8601 UTC


class ContactCache:
    """Number-check answers per session and number, kept ``ttl`` seconds in Redis."""

    def __init__(self, client: redis.Redis, ttl: float):
        self.redis = client
        self.ttl = ttl

    @staticmethod
    def key(session_id: str, number: str) -> str:
        """The Redis key of one answer."""
        return f"wa:contact:{session_id}:{number}"

    def put(self, session_id: str, number: str, answer: ContactAnswer) -> None:
        """Keep ``answer`` for ``ttl`` seconds (not at all with a ttl of 0)."""
        if self.ttl > 0:
            self.redis.set(self.key(session_id, number), json.dumps(asdict(answer)), px=int(self.ttl * 1000))

    def get_many(self, session_id: str, numbers: list[str]) -> dict[str, ContactAnswer]:
        """The kept answers of those of ``numbers`` that have one."""
        if not numbers:
            return {}
        found = {}
        for number, raw in zip(numbers, self.redis.mget([self.key(session_id, n) for n in numbers])):
            if raw:
                try:
                    found[number] = ContactAnswer(**json.loads(raw))
                except (TypeError, ValueError):
                    continue
        return found
