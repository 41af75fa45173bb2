"""Browser slots: registration with a heartbeat, and placement of sessions on them.

A slot worker writes ``wa:slot:<name>`` (host, capacity) with a TTL and refreshes it;
a slot whose key expired is dead.  Placement picks the live slot with the most room.

A missing key says a slot is dead only to someone who has been watching Redis for a
whole TTL: after Redis restarted empty, or while nobody could reach it, every key is
missing although every slot is alive and registers again at its next heartbeat
(``watched_for``).
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field

import redis

SLOTS_SET = "wa:slots"
WATCH_KEY = "wa:slots:watch"  # hash: when the registry was last looked at, and since when without a break

# KEYS: the watch hash; ARGV: now (Redis's clock, seconds), the longest gap that is not a break
_WATCH = """
local now, gap = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '')
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '')
if not last or not since or now - last > gap then since = now end
redis.call('HSET', KEYS[1], 'last', ARGV[1], 'since', tostring(since))
return tostring(now - since)
"""


def _key(name: str) -> str:
    return f"wa:slot:{name}"


@dataclass(frozen=True)
class SlotInfo:
    """A live slot worker as its heartbeat describes it: name, host, how many sessions it
    takes (``capacity``), when it beat (``heartbeat``, epoch seconds) and what it runs."""

    name: str
    host: str
    capacity: int
    heartbeat: float
    # What the slot runs now: session id -> memory of its browser's process tree (PSS, bytes).
    sessions: dict[str, int] = field(default_factory=dict)
    # Session id -> the build of WhatsApp Web its page runs (window.Debug.VERSION), when known.
    web_versions: dict[str, str] = field(default_factory=dict)


def heartbeat(client: redis.Redis, name: str, capacity: int, ttl: int, *, host: str | None = None,
              sessions: dict[str, int] | None = None, web_versions: dict[str, str] | None = None) -> None:
    """Register slot ``name`` as live for ``ttl`` seconds, with its capacity, host and the
    sessions it runs (``sessions``: id -> browser memory in bytes; ``web_versions``: id -> build)."""
    body = json.dumps({"host": host or socket.gethostname(), "capacity": capacity, "heartbeat": time.time(),
                       "sessions": sessions or {}, "web_versions": web_versions or {}})
    pipe = client.pipeline(transaction=True)
    pipe.sadd(SLOTS_SET, name)
    pipe.set(_key(name), body, ex=ttl)
    pipe.execute()


def unregister(client: redis.Redis, name: str) -> None:
    """Remove slot ``name`` from the registry (a clean stop)."""
    pipe = client.pipeline(transaction=True)
    pipe.srem(SLOTS_SET, name)
    pipe.delete(_key(name))
    pipe.execute()


def live_slots(client: redis.Redis) -> list[SlotInfo]:
    """The slots whose heartbeat has not expired, by name."""
    names = sorted(n.decode() if isinstance(n, bytes) else n for n in client.smembers(SLOTS_SET))
    if not names:
        return []
    slots = []
    for name, raw in zip(names, client.mget([_key(n) for n in names])):
        if raw is None:
            continue
        data = json.loads(raw)
        slots.append(SlotInfo(name, data["host"], int(data["capacity"]), float(data["heartbeat"]),
                              {k: int(v) for k, v in (data.get("sessions") or {}).items()},
                              {k: str(v) for k, v in (data.get("web_versions") or {}).items()}))
    return slots


def known_slots(client: redis.Redis) -> set[str]:
    """The names of every registered slot, live or not (its heartbeat may have expired)."""
    return {n.decode() if isinstance(n, bytes) else n for n in client.smembers(SLOTS_SET)}


def watched_for(client: redis.Redis, max_gap: float) -> float:
    """Record a look at the registry now and return for how many seconds it has been
    looked at without a break longer than ``max_gap`` (0 after such a break, or when Redis
    lost the record: restarted empty). Uses Redis's clock, shared by every watcher."""
    seconds, micros = client.time()
    return float(client.eval(_WATCH, 1, WATCH_KEY, f"{seconds + micros / 1e6:.3f}", f"{max_gap:.3f}"))
