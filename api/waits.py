"""Waiting for live events on Redis pub/sub (no polling of the database).

A waiter subscribes *before* the caller reads the current state, so an event that
arrives in between is not missed.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import redis


class Waiter:
    """Live events on ``channels`` (Redis pub/sub), subscribed before the caller reads the
    state, so nothing published meanwhile is missed; waits up to ``confirm_timeout`` seconds
    for Redis to confirm. A context manager."""

    def __init__(self, client: redis.Redis, *channels: str, confirm_timeout: float = 2.0):
        self.pubsub = client.pubsub()
        self.pubsub.subscribe(*channels)
        # SUBSCRIBE is only in force once Redis confirms it; an event published before
        # that would be lost between our subscribe and the caller's read of the state.
        deadline = time.monotonic() + confirm_timeout
        confirmed = 0
        while time.monotonic() < deadline and confirmed < len(set(channels)):
            message = self.pubsub.get_message(timeout=deadline - time.monotonic())
            if message and message["type"] == "subscribe":
                confirmed += 1

    def until(self, accept: Callable[[dict], bool], timeout: float) -> dict | None:
        """The first event for which ``accept`` is true, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=min(remaining, 1.0))
            if message is None or message["type"] != "message":
                continue
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            if accept(event):
                return event
        return None

    def close(self) -> None:
        """Unsubscribe and give the connection back."""
        self.pubsub.close()

    def __enter__(self) -> "Waiter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
