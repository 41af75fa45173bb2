"""API keys: made by a CLI command (``python -m api.keys``) or by an admin key, stored as
SHA-256 digests, checked on every request and every Celery entry point call.

A revocation takes effect at once in every API worker: checked keys are remembered with
the revocation generation (a Redis counter that every revocation increments) they were
checked at, and checked again when it moved; without Redis nothing is remembered. Each
process follows the generation through Redis pub/sub (``RevocationFollower``: no Redis
round trip per request), and a revocation returns only once every follower has applied
it; a process whose subscription is down asks Redis on every request instead.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterable

import redis
from sqlalchemy import or_, select
from sqlalchemy.orm import sessionmaker

from models import ApiKey, utcnow
from models.access import Scope

log = logging.getLogger("services.keys")

KEY_PREFIX = "wak_"
GENERATION_KEY = "wa:keys:generation"  # incremented by every revocation
REVOCATIONS_CHANNEL = "wa:keys:revocations:{}"  # each new generation, published (per Redis database:
# channels are server-wide, and two deployments may share a server)
APPLIED_KEY = "wa:keys:applied:{}"  # one entry per follower that applied that generation
APPLY_WAIT_SECONDS = 2.0  # how long a revocation waits for the followers to apply it
FAILURES_KEY = "wa:keys:failed:{}"  # failed attempts of one client address, per minute
MAX_KEY_LENGTH = 200


def digest(key: str) -> str:
    """The SHA-256 (hex) of an API key: what is stored and looked up, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def scope_of(row: ApiKey) -> Scope:
    """The Scope an ApiKey row grants."""
    scope = row.scope or {}
    return Scope(admin=bool(row.admin), key_id=row.id, prefixes=tuple(scope.get("prefixes") or ()),
                 user_ids=frozenset(scope.get("user_ids") or ()), idempotency=row.key_hash[:32])


def create_key(db: sessionmaker, name: str, *, admin: bool, prefixes: Iterable[str] = (),
               user_ids: Iterable[str] = ()) -> tuple[ApiKey, str]:
    """Make a key; returns its row and the key itself (shown once, never stored).

    Raises ValueError for a scoped key with neither prefixes nor user ids (it could see
    nothing) or an admin key that also names a scope."""
    prefixes, user_ids = [p for p in prefixes if p], [u for u in user_ids if u]
    if admin and (prefixes or user_ids):
        raise ValueError("an admin key has no scope")
    if not admin and not (prefixes or user_ids):
        raise ValueError("a scoped key needs at least one user-id prefix or user id")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[: len(KEY_PREFIX) + 6], key_hash=digest(key), admin=admin,
                 scope=None if admin else {"prefixes": prefixes, "user_ids": user_ids})
    with db.begin() as s:
        s.add(row)
    return row, key


def revoke_key(db: sessionmaker, prefix_or_id: str, client: redis.Redis | None = None, *,
               by_prefix: bool = True) -> int:
    """Revoke the active keys with this id, or (``by_prefix``, the CLI) this prefix
    (``wak_xxxxxx``); tell every API worker (the generation in Redis moves). Returns how
    many were revoked. The API matches ids only: what it revokes is what it answers about."""
    matches = or_(ApiKey.prefix == prefix_or_id, ApiKey.id == prefix_or_id) if by_prefix else ApiKey.id == prefix_or_id
    with db.begin() as s:
        rows = s.execute(select(ApiKey).where(matches, ApiKey.revoked_at.is_(None))).scalars().all()
        for row in rows:
            row.revoked_at = utcnow()
    if rows and client is not None:
        try:
            announce_revocation(client)
        except redis.RedisError as exc:  # the workers' memory of it lasts at most api_key_cache_seconds
            log.warning("revocation not announced (%s); cached checks expire within their lifetime", exc)
    return len(rows)


def revocations_channel(client: redis.Redis) -> str:
    """The pub/sub channel of revocations for the Redis database ``client`` uses."""
    return REVOCATIONS_CHANNEL.format(client.connection_pool.connection_kwargs.get("db", 0))


def announce_revocation(client: redis.Redis, wait: float = APPLY_WAIT_SECONDS) -> int:
    """Move the revocation generation and publish it; return once every process that
    follows it (``RevocationFollower``) has applied it, or after ``wait`` seconds (a
    follower that did not answer by then is logged). Returns the new generation. Raises
    redis.RedisError when Redis cannot be reached."""
    generation = client.incr(GENERATION_KEY)
    applied = APPLIED_KEY.format(generation)
    followers = client.publish(revocations_channel(client), generation)
    deadline = time.monotonic() + wait
    confirmed = 0
    while confirmed < followers and (left := deadline - time.monotonic()) > 0:
        if client.blpop([applied], timeout=max(0.01, left)) is None:
            break
        confirmed += 1
    client.delete(applied)
    if confirmed < followers:
        log.warning("revocation %d applied by %d of %d API processes within %.0f s", generation, confirmed,
                    followers, wait)
    return generation


class RevocationFollower:
    """The revocation generation, as this process learns it from Redis pub/sub.

    A daemon thread (started by the first ``generation()`` call in each process, so also
    after a fork) subscribes to ``revocations_channel``, reads the generation once subscribed,
    then applies each published one and confirms it (``announce_revocation`` waits for
    that). ``generation()`` is None while the subscription is not up (being made, or lost
    with Redis): callers then ask Redis themselves. The thread ends when its follower is
    garbage."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._generation: int | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def generation(self) -> int | None:
        """The generation followed, or None when it is not followed now."""
        if self._pid != os.getpid():
            self._start()
        return self._generation

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._generation = os.getpid(), None
            threading.Thread(target=_follow, args=(weakref.ref(self), self.client), name="key-revocations",
                             daemon=True).start()

    def _apply(self, generation: int | None) -> None:
        self._generation = generation


def _follow(ref: "weakref.ref[RevocationFollower]", client: redis.Redis) -> None:
    """The follower's thread: (re)subscribe with backoff, apply and confirm generations."""
    backoff = 0.5
    while ref() is not None:
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(revocations_channel(client))
            while (follower := ref()) is not None:
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    del follower
                    continue
                if message["type"] == "subscribe":  # also after redis-py reconnected: read it again
                    follower._apply(int(client.get(GENERATION_KEY) or 0))
                    backoff = 0.5
                elif message["type"] == "message":
                    generation = int(message["data"])
                    follower._apply(generation)
                    client.rpush(APPLIED_KEY.format(generation), os.getpid())
                    client.expire(APPLIED_KEY.format(generation), 60)
                del follower
        except (redis.RedisError, ValueError) as exc:
            if (follower := ref()) is not None:
                follower._apply(None)
                del follower
            log.debug("revocations not followed (%s); again in %.1f s", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            pubsub.close()


class TooManyFailures(Exception):
    """This client address failed too many key checks this minute; ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__("too many failed API key attempts")
        self.retry_after = retry_after


class KeyChecker:
    """Checks a presented key and answers its Scope (None when it is not a valid key).

    Valid keys are remembered for ``cache_seconds`` together with the revocation
    generation they were checked at; a revocation anywhere moves the generation, so the
    next request of every worker checks the database again. The generation is followed
    through pub/sub (``RevocationFollower``); while that is down, one Redis GET a request.
    Failed attempts are counted per client address (a request without a key is not an
    attempt); over ``failures_per_minute`` the address is refused for the rest of the
    minute (TooManyFailures) before any key it presents is looked up, unless that key was
    checked valid since the last revocation."""

    def __init__(self, db: sessionmaker, client: redis.Redis | None = None, cache_seconds: float = 30.0,
                 failures_per_minute: int = 30):
        self.db = db
        self.redis = client
        self.cache_seconds = cache_seconds
        self.failures_per_minute = failures_per_minute
        self._valid: dict[str, tuple[Scope, float, int]] = {}  # digest -> (scope, expiry, generation)
        self._follower = RevocationFollower(client) if client is not None else None
        self._lock = threading.Lock()

    def check(self, key: str | None, client_address: str | None = None) -> Scope | None:
        """The key's Scope, or None; raises TooManyFailures for an address over its limit."""
        if not key:  # nothing presented: not a guess, nothing to count
            return None
        if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_LENGTH:
            self._refuse_if_over_limit(client_address)
            self._count_failure(client_address)
            return None
        h = digest(key)
        generation = self._generation()
        scope = self._cached(h, generation)
        if scope is not None:  # checked valid since the last revocation: no guess to limit
            return scope
        self._refuse_if_over_limit(client_address)
        scope = self._lookup(h, generation)
        if scope is None:
            self._count_failure(client_address)
        return scope

    def _generation(self) -> int | None:
        if self.redis is None:
            return None
        followed = self._follower.generation()
        if followed is not None:
            return followed
        try:
            return int(self.redis.get(GENERATION_KEY) or 0)
        except (redis.RedisError, ValueError):
            return None

    def _cached(self, h: str, generation: int | None) -> Scope | None:
        """The scope remembered for a key digest, if it was checked at this generation."""
        if generation is None:
            return None
        with self._lock:
            cached = self._valid.get(h)
        if cached and cached[1] > time.monotonic() and cached[2] == generation:
            return cached[0]
        return None

    def _lookup(self, h: str, generation: int | None) -> Scope | None:
        """The scope of an active key with this digest, from the database (and remembered)."""
        with self.db() as s:
            row = s.execute(select(ApiKey).where(ApiKey.key_hash == h, ApiKey.revoked_at.is_(None))).scalar_one_or_none()
            scope = scope_of(row) if row is not None else None
        with self._lock:
            if scope is not None and generation is not None:  # without Redis nothing is remembered
                self._valid[h] = (scope, time.monotonic() + self.cache_seconds, generation)
            else:
                self._valid.pop(h, None)
        return scope

    def _refuse_if_over_limit(self, address: str | None) -> None:
        if not address or self.redis is None or self.failures_per_minute <= 0:
            return
        try:
            failures = int(self.redis.get(FAILURES_KEY.format(address)) or 0)
            if failures >= self.failures_per_minute:
                raise TooManyFailures(max(1, self.redis.ttl(FAILURES_KEY.format(address))))
        except (redis.RedisError, ValueError):
            return

    def _count_failure(self, address: str | None) -> None:
        if not address or self.redis is None or self.failures_per_minute <= 0:
            return
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(FAILURES_KEY.format(address))
            pipe.expire(FAILURES_KEY.format(address), 60, nx=True)
            pipe.execute()
        except redis.RedisError:
            return
