"""Riding out a Redis outage.

A slot worker's Redis client retries each command through an outage (``ride_out_client``):
a send that went out while Redis was away records its outcome when Redis is back,
instead of failing after the message left, and the heartbeat registers the slot again
by itself. The other processes fail fast and retry in their own loops (the recorder,
Celery's reconnects, beat's next tick); the API answers at once (health: ``degraded``).
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

# How long a slot worker's Redis commands wait for Redis to come back before they fail.
RIDE_OUT_SECONDS = 90.0
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 10.0  # above the recorder's 1 s XREADGROUP block; no command here takes longer


class RideOut(Retry):
    """Retry a command on connection errors and timeouts, with exponential backoff and
    jitter (0.1 s doubling to 2 s apart), until ``seconds`` have passed since its first
    failure or ``give_up()`` says so (a worker that is stopping must not wait)."""

    def __init__(self, seconds: float = RIDE_OUT_SECONDS, give_up: Callable[[], bool] = lambda: False):
        # The number of retries is bounded by the time, not by a count.
        super().__init__(ExponentialWithJitterBackoff(base=0.1, cap=2.0), retries=1_000_000,
                         supported_errors=(RedisConnectionError, RedisTimeoutError, socket.timeout))
        self.seconds = seconds
        self.give_up = give_up

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        """redis-py's retry loop, stopped once ``seconds`` have passed or ``give_up()`` is true."""
        deadline = time.monotonic() + self.seconds

        def retryable(error: Exception) -> bool:
            return ((is_retryable is None or is_retryable(error)) and not self.give_up()
                    and time.monotonic() < deadline)

        return super().call_with_retry(do, fail, retryable, with_failure_count)

    def __deepcopy__(self, memo):  # redis-py copies its retry policy; give_up must stay the caller's
        return RideOut(self.seconds, self.give_up)


def ride_out_client(url: str, *, seconds: float = RIDE_OUT_SECONDS,
                    give_up: Callable[[], bool] = lambda: False) -> redis.Redis:
    """A Redis client whose commands wait (retrying) through an outage of up to ``seconds``."""
    return redis.Redis.from_url(url, retry=RideOut(seconds, give_up),
                                retry_on_error=[RedisConnectionError, RedisTimeoutError, socket.timeout],
                                socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT,
                                health_check_interval=30)
