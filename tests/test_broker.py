"""The broker transport (messaging/broker.py) on a real Redis: a worker that lost its
connection can still give back the tasks it held unacknowledged; a slot worker that cannot
go on exits non-zero; a channel publishes on one Redis client."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from kombu import Connection

from messaging.broker import transport_for
from tests.helpers import ROOT


def test_redis_urls_get_the_transport_and_other_brokers_keep_kombus_choice():
    assert transport_for("redis://127.0.0.1:6379/0") == "messaging.broker:Transport"
    assert transport_for("rediss://example.invalid:6380/0") == "messaging.broker:Transport"
    assert transport_for("sentinel://127.0.0.1:26379") is None
    assert transport_for("amqp://guest@127.0.0.1//") is None


@pytest.mark.parametrize("transport, survives", [(None, False), ("messaging.broker:Transport", True)])
def test_a_collected_connection_gives_its_unacknowledged_tasks_back(redis_url, transport, survives):
    """What Celery does with a lost broker connection: collect it (the transport forgets
    its connection) and then close the channel, which gives back what the worker received
    but did not acknowledge. kombu's own channel fails there (the issue's AttributeError,
    which stopped the slot worker); this one gives the task back."""
    queue = f"broker-test-{secrets.token_hex(4)}"
    conn = Connection(redis_url, transport=transport)
    held = conn.SimpleQueue(queue)
    held.put({"task": "held"})
    held.get(timeout=5)  # received, not acknowledged
    conn.transport.client = None  # as Connection.collect() leaves it
    if survives:
        held.consumer.channel.close()
    else:
        with pytest.raises(AttributeError, match="hostname"):
            held.consumer.channel.close()
    with Connection(redis_url) as other:
        again = other.SimpleQueue(queue)
        try:
            if survives:
                assert again.get(timeout=5).payload == {"task": "held"}
            else:  # lost until the visibility timeout gives it back
                with pytest.raises(again.Empty):
                    again.get(timeout=0.5)
        finally:
            again.clear()


def test_a_channel_publishes_on_one_client_and_a_new_one_after_its_pools_were_dropped(redis_url):
    """kombu makes a redis.Redis for every command of a channel; this channel keeps one per
    connection pool, and makes another when kombu drops the pools (a broken connection)."""
    queue = f"broker-test-{secrets.token_hex(4)}"
    with Connection(redis_url, transport="messaging.broker:Transport") as conn:
        channel = conn.default_channel
        simple = conn.SimpleQueue(queue, channel=channel)
        try:
            clients = []
            for n in range(3):
                simple.put({"n": n})
                with channel.conn_or_acquire() as client:
                    clients.append(client)
            assert clients[0] is clients[1] is clients[2]
            assert clients[0].connection_pool is channel.pool
            given = object()
            with channel.conn_or_acquire(given) as client:
                assert client is given
            channel._disconnect_pools()  # what kombu does when the connection breaks
            simple.put({"n": 3})
            with channel.conn_or_acquire() as client:
                assert client is not clients[0] and client.connection_pool is channel.pool
            assert [simple.get(timeout=5).payload["n"] for _ in range(4)] == [0, 1, 2, 3]
        finally:
            simple.clear()


# A slot worker whose consumer fails for a reason that is not a lost connection: the
# unrecoverable error Celery logs before stopping (the issue saw one with exit status 0,
# and honcho then stopped every other process without saying why).
_FAILING_SLOT = """
import celery.worker.consumer.tasks as tasks
def start(self, c):
    raise RuntimeError("injected: the consumer cannot go on")
tasks.Tasks.start = start
from workers.slot import main
main()
"""


def test_a_slot_worker_that_cannot_go_on_exits_non_zero(settings, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url,
           "REDIS_URL": settings.redis_url, "SLOT_NAME": f"exit-{secrets.token_hex(3)}",
           "BROWSER_WORK_DIR": str(tmp_path / "browsers"), "PROFILE_DIR": str(tmp_path / "profiles")}
    done = subprocess.run([sys.executable, "-c", _FAILING_SLOT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert "Unrecoverable error" in done.stderr + done.stdout
    assert done.returncode != 0
