"""The broker transport (messaging/broker.py) on a real Redis: a worker that lost its
connection can still give back the tasks it held unacknowledged."""
from __future__ import annotations

import secrets

import pytest
from kombu import Connection

from messaging.broker import transport_for


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
