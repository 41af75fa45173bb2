"""The Redis broker transport every Celery process uses (``broker_transport`` in
``celeryconfig``): kombu's own, with one fix that lets a worker survive losing Redis.

When a worker's connection to the broker breaks, Celery collects the connection
(kombu's ``Connection.collect()`` detaches the transport from it: ``transport.client``
becomes None) and then closes it. Closing the channel gives the messages the worker
had received but not acknowledged back to their queue (``restore_unacked``); for that
the Redis channel opens a new connection pool, whose parameters it reads from
``transport.client``: ``AttributeError: 'NoneType' object has no attribute 'hostname'``.
That is not a connection error, so Celery takes it for an unrecoverable one and stops
the worker. A slot worker always holds unacknowledged messages (a send that waits for
its pace is an ETA task it keeps), so a Redis outage stopped it (kombu 5.7.0; the same
AttributeError from ``_connparams`` is reported upstream, e.g. celery/kombu#582).

Here the channel keeps the parameters it connected with, so the restore tries the
broker as it should and fails with a connection error if Redis is still away (Celery
then reconnects with backoff), or succeeds if Redis is back.

The channel also keeps one Redis client on its connection pool for its commands
(kombu 5.7.0 makes a new ``redis.Redis`` for each: publishing a task built one, about a
tenth of the CPU the API spends accepting a send).
"""
from __future__ import annotations

from contextlib import contextmanager

from kombu.transport import redis as kombu_redis

SCHEMES = ("redis", "rediss")  # the URLs this transport serves; other brokers keep kombu's choice


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, which keeps the connection parameters it started with."""

    def __init__(self, *args, **kwargs):
        self._connparams_seen: dict[bool, dict] = {}
        self._client = None  # the synchronous client of conn_or_acquire, on self.pool
        super().__init__(*args, **kwargs)
        # Both kinds (the asynchronous one is read by the ping above) while the transport
        # still knows its connection.
        self._connparams(asynchronous=False)

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is not None or asynchronous not in self._connparams_seen:
            self._connparams_seen[asynchronous] = super()._connparams(asynchronous=asynchronous)
        return dict(self._connparams_seen[asynchronous])

    @contextmanager
    def conn_or_acquire(self, client=None):
        """``client``, or the channel's synchronous client (made again when the channel
        has a new pool: kombu drops its pools when the connection breaks). A
        ``redis.Redis`` is safe to share between threads; its connections come from the pool."""
        if client:
            yield client
            return
        pool, current = self.pool, self._client
        if current is None or current.connection_pool is not pool:
            current = self._client = self._create_client()
        yield current


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the Channel above (named by ``transport_for``)."""

    Channel = Channel


def transport_for(url: str) -> str | None:
    """The ``broker_transport`` setting for a broker URL: this module's transport for
    Redis URLs, else None (kombu picks by the URL's scheme)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return f"{__name__}:Transport" if scheme in SCHEMES else None
