"""Per-session pacing, circuit breaker and send claims, kept in Redis so that they hold
across worker restarts and across workers (a session may move to another slot).

Pacing: every send of a session gets a reserved time, at least a random gap (default
1-2 s, as the seed) after the previous reservation, and inside an hourly and a daily
cap. A message that would break a cap is given the first time that keeps it, so it
waits and is never dropped. Reservations count towards the caps, so the caps hold even
while sends are still pending; a message that fails before it is sent gives its place
back.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

HOUR, DAY = 3600.0, 86400.0

# KEYS: next, hour zset, day zset, reservations hash
# ARGV: now, message id, gap, hourly cap, daily cap
_RESERVE = """
local now, mid, gap = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local hourly, daily = tonumber(ARGV[4]), tonumber(ARGV[5])
local held = redis.call('HGET', KEYS[4], mid)
if held then return {held, 'held'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 3600)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 86400)
local t, reason = now, 'now'
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt > t then t, reason = nxt, 'gap' end
-- A cap of N per window: the N-th newest reservation before t must be a window old.
local function fit(key, cap, window, why)
  if cap <= 0 then return false end
  local inwin = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%.3f', t - window), '+inf', 'WITHSCORES')
  local count = #inwin / 2
  if count < cap then return false end
  local earliest = tonumber(inwin[(count - cap) * 2 + 2]) + window
  if earliest > t then t, reason = earliest, why; return true end
  return false
end
for _ = 1, 4 do
  local moved = fit(KEYS[2], hourly, 3600, 'hourly')
  moved = fit(KEYS[3], daily, 86400, 'daily') or moved
  if not moved then break end
end
local ts = string.format('%.3f', t)
redis.call('ZADD', KEYS[2], ts, mid)
redis.call('ZADD', KEYS[3], ts, mid)
redis.call('HSET', KEYS[4], mid, ts)
redis.call('SET', KEYS[1], string.format('%.3f', t + gap))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], 172800) end
return {ts, reason}
"""

# KEYS: hour zset, day zset, reservations hash; ARGV: message id
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[3], ARGV[1])
"""


@dataclass(frozen=True)
class PacingPolicy:
    """A session's pace: a random gap of ``min_gap`` to ``max_gap`` seconds between sends,
    and at most ``hourly_cap`` and ``daily_cap`` sends per rolling hour and day."""

    min_gap: float = 1.0
    max_gap: float = 2.0
    hourly_cap: int = 100  # the seed's RateLimitService
    daily_cap: int = 1000  # 0 = no cap

    @classmethod
    def from_dict(cls, value: dict | None, default: "PacingPolicy") -> "PacingPolicy":
        """The policy from a session's ``pacing`` JSON (``min_gap_seconds``, ``max_gap_seconds``,
        ``hourly_cap``, ``daily_cap``); what it leaves out comes from ``default``."""
        if not value:
            return default
        return cls(
            min_gap=float(value.get("min_gap_seconds", default.min_gap)),
            max_gap=float(value.get("max_gap_seconds", default.max_gap)),
            hourly_cap=int(value.get("hourly_cap", default.hourly_cap)),
            daily_cap=int(value.get("daily_cap", default.daily_cap)),
        )

    def gap(self) -> float:
        """A gap for the next send, in seconds, drawn uniformly from the policy's range."""
        return random.uniform(self.min_gap, max(self.min_gap, self.max_gap))


@dataclass(frozen=True)
class Reservation:
    """When a message may be sent (``at``, epoch seconds) and what decided it: 'now',
    'gap', 'hourly', 'daily', or 'held' (reserved before)."""

    at: float  # epoch seconds
    reason: str  # now | gap | hourly | daily | held (already reserved)


class Pacer:
    """Each session's pace in Redis (``wa:pace:<session>:*``): reservations, the hourly and
    daily windows, and when its last send was confirmed."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _keys(session_id: str) -> list[str]:
        base = f"wa:pace:{session_id}"
        return [f"{base}:next", f"{base}:hour", f"{base}:day", f"{base}:res"]

    def reserve(self, session_id: str, message_id: str, policy: PacingPolicy, now: float | None = None) -> Reservation:
        """The time this message may be sent; the same answer when asked again."""
        now = time.time() if now is None else now
        at, reason = self._reserve(keys=self._keys(session_id),
                                   args=[f"{now:.3f}", message_id, f"{policy.gap():.3f}",
                                         policy.hourly_cap, policy.daily_cap])
        return Reservation(float(at), reason.decode() if isinstance(reason, bytes) else reason)

    def release(self, session_id: str, message_id: str) -> None:
        """Give back the place of a message that will not be sent."""
        keys = self._keys(session_id)
        self._release(keys=[keys[1], keys[2], keys[3]], args=[message_id])

    def forget(self, session_id: str, message_id: str) -> None:
        """A sent message keeps its place in the caps; only its reservation entry goes."""
        self.redis.hdel(self._keys(session_id)[3], message_id)

    def last_sent(self, session_id: str) -> float:
        """When the session's last send was confirmed (epoch seconds), 0.0 when unknown."""
        value = self.redis.get(f"wa:pace:{session_id}:last")
        return float(value) if value else 0.0

    def mark_sent(self, session_id: str, at: float | None = None) -> None:
        """Record a confirmed send at ``at`` (epoch seconds, default now); kept for a day."""
        self.redis.set(f"wa:pace:{session_id}:last", f"{time.time() if at is None else at:.3f}", ex=int(DAY))

    def rebuild(self, session_id: str, sent: dict[str, float], policy: PacingPolicy) -> None:
        """Put back what a Redis that restarted empty lost of a session's pacing, from the
        sends PostgreSQL knows (message id -> sent time, epoch seconds): they count in the
        hourly and daily windows again, and the next send keeps at least the longest gap
        after the last of them. Whatever the session reserved or sent since Redis came
        back is kept (the caps count both; the later "last" and "next" win)."""
        if not sent:
            return
        next_key, hour_key, day_key, _res = self._keys(session_id)
        last = max(sent.values())
        pipe = self.redis.pipeline(transaction=True)
        for key in (hour_key, day_key):  # each reservation trims its window of what is older
            pipe.zadd(key, sent)
            pipe.expire(key, int(2 * DAY))
        pipe.set(f"wa:pace:{session_id}:last", f"{last:.3f}", ex=int(DAY), nx=True)
        pipe.set(next_key, f"{last + policy.max_gap:.3f}", ex=int(2 * DAY), nx=True)
        pipe.execute()


class CircuitBreaker:
    """Per session: after ``threshold`` failures in a row it opens for ``cooldown`` seconds
    (the seed: 5 and 60 s). While open, the session's messages wait."""

    def __init__(self, client: redis.Redis, threshold: int = 5, cooldown: float = 60.0):
        self.redis, self.threshold, self.cooldown = client, threshold, cooldown

    @staticmethod
    def _keys(session_id: str) -> tuple[str, str]:
        return f"wa:cb:{session_id}:failures", f"wa:cb:{session_id}:open_until"

    def open_until(self, session_id: str, now: float | None = None) -> float | None:
        """Until when the session's breaker is open (epoch seconds), or None when it is closed."""
        value = self.redis.get(self._keys(session_id)[1])
        if value and float(value) > (time.time() if now is None else now):
            return float(value)
        return None

    def failure(self, session_id: str, now: float | None = None) -> float | None:
        """Count a failure; the time the breaker stays open until, if this one opened it."""
        failures_key, open_key = self._keys(session_id)
        pipe = self.redis.pipeline()
        pipe.incr(failures_key)
        pipe.expire(failures_key, int(DAY))
        count = pipe.execute()[0]
        if count < self.threshold:
            return None
        until = (time.time() if now is None else now) + self.cooldown
        pipe = self.redis.pipeline()
        pipe.set(open_key, f"{until:.3f}", ex=int(self.cooldown) + 60)
        pipe.delete(failures_key)
        pipe.execute()
        return until

    def success(self, session_id: str) -> None:
        """A send succeeded: the count of failures in a row starts again."""
        self.redis.delete(self._keys(session_id)[0])


class Claims:
    """Who may send a message right now: a short lease taken just before the page is
    touched. ``cancel`` takes the same key for good, so a cancel and a send cannot both
    win."""

    CANCELLED = b"cancelled"

    def __init__(self, client: redis.Redis):
        self.redis = client

    @staticmethod
    def key(message_id: str) -> str:
        """The Redis key of a message's send claim."""
        return f"wa:msg:{message_id}:claim"

    def take(self, message_id: str, holder: str, lease: float, dead: Callable[[str], bool] | None = None
             ) -> bytes | None:
        """None when taken; else the current holder (``CANCELLED`` for a cancelled message).
        ``dead(holder)`` says whether a holder is known to be gone (an earlier life of
        this very worker): its claim is taken over at once instead of waiting out the lease."""
        key = self.key(message_id)
        if self.redis.set(key, holder, nx=True, px=int(lease * 1000)):
            return None
        current = self.redis.get(key)
        if current is None:  # the lease ran out just now
            return self.take(message_id, holder, lease, dead)
        if current == holder.encode() or (current != self.CANCELLED and dead and dead(current.decode())):
            with self.redis.pipeline() as pipe:  # replace only what we read (a cancel may come between)
                try:
                    pipe.watch(key)
                    if pipe.get(key) != current:
                        return self.take(message_id, holder, lease, dead)
                    pipe.multi()
                    pipe.set(key, holder, px=int(lease * 1000))
                    pipe.execute()
                    return None
                except redis.WatchError:
                    return self.take(message_id, holder, lease, dead)
        return current

    def release(self, message_id: str, holder: str) -> None:
        """Give the claim back, only if ``holder`` still holds it."""
        key = self.key(message_id)
        if self.redis.get(key) == holder.encode():
            self.redis.delete(key)

    def cancel(self, message_id: str) -> bool:
        """True when no sender holds the message: it is then cancelled for good."""
        return bool(self.redis.set(self.key(message_id), self.CANCELLED, nx=True, ex=int(7 * DAY)))
