"""Signed links to one session's linking page (``/link/<token>``).

A token names one session row (its primary key as well as its session id, so a session
deleted and made again under the same id does not inherit an old link) and the moment
it expires. It is signed with HMAC (itsdangerous) under its own salt: it is a credential
for that page and its own endpoints only, never an API key.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import redis
from itsdangerous import BadSignature, URLSafeSerializer

SALT = "wa.link-page.v1"
SECRET_KEY = "wa:link-page:secret"  # where a generated secret is kept when LINK_PAGE_SECRET is unset


class LinkInvalid(Exception):
    """The token was not made here (tampered, truncated, signed with another secret)."""


class LinkExpired(Exception):
    """The token was made here, but its time is over."""


@dataclass(frozen=True)
class LinkGrant:
    """What a valid token allows: the linking page of one session row until ``expires_at``."""

    session_id: str
    row_id: str
    expires_at: datetime


def link_secret(configured: str | None, client: redis.Redis) -> str:
    """The signing secret: ``configured`` (LINK_PAGE_SECRET) when set, else one generated
    once and kept in Redis, so that every API process and host signs alike (a Redis that
    starts again empty makes a new one: earlier links then stop working)."""
    if configured:
        return configured
    value = client.get(SECRET_KEY)  # every request of a linking page asks: one round trip
    if value is None:
        client.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)  # the first process to ask makes it
        value = client.get(SECRET_KEY)
    return value.decode() if isinstance(value, bytes) else value


def make_token(secret: str, *, session_id: str, row_id: str, expires_at: datetime) -> str:
    """A URL-safe token for the session row's linking page until ``expires_at``."""
    return URLSafeSerializer(secret, salt=SALT).dumps(
        {"s": session_id, "r": row_id, "e": int(expires_at.timestamp())})


def read_token(secret: str, token: str, now: datetime | None = None) -> LinkGrant:
    """The grant a token carries; LinkInvalid when it was not signed with ``secret``,
    LinkExpired when its time is over."""
    try:
        data = URLSafeSerializer(secret, salt=SALT).loads(token)
        grant = LinkGrant(session_id=str(data["s"]), row_id=str(data["r"]),
                          expires_at=datetime.fromtimestamp(int(data["e"]), timezone.utc))
    except (BadSignature, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise LinkInvalid() from exc
    if (now or datetime.now(timezone.utc)) >= grant.expires_at:
        raise LinkExpired()
    return grant
