"""Counters of sends that only go up, kept in Redis for /metrics.

The table can say how many messages are in each status now, but not how many were sent
per minute: jobs are deleted, and their messages with them. So the recorder counts each
message outcome (sent, failed, cancelled) and each sent message's latency (acceptance to
send, ``sent_at - created_at``) into Redis in the same MULTI that acknowledges the event:
an event replayed after a crash is refused by the transition rules and not counted
twice (and a crash between the database commit and that MULTI loses the event's count:
never doubled, rarely short). /metrics reads them at scrape time (``wa_sends_total``,
``wa_send_duration_seconds``). A Redis that restarted empty starts them again from 0,
which Prometheus reads as a counter reset.
"""
from __future__ import annotations

import redis

OUTCOMES_KEY = "wa:metrics:sends"  # hash: outcome -> count
LATENCY_KEY = "wa:metrics:send_latency"  # hash: bucket upper bound ("le") -> count, "sum", "count"
OUTCOMES = ("sent", "failed", "cancelled")
# Seconds: a paced bulk send takes minutes, a message waiting for its session hours.
LATENCY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0)


def bucket_name(bound: float) -> str:
    """A bucket's ``le`` label as Prometheus writes it: '1.0', '+Inf'."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def count(pipe, outcome: str, latency: float | None = None) -> None:
    """Add one message that reached ``outcome`` to ``pipe`` (a Redis pipeline), with its
    latency in seconds for a sent one."""
    pipe.hincrby(OUTCOMES_KEY, outcome, 1)
    if latency is None:
        return
    latency = max(0.0, latency)
    for bound in (*LATENCY_BUCKETS, float("inf")):
        if latency <= bound:
            pipe.hincrby(LATENCY_KEY, bucket_name(bound), 1)
    pipe.hincrbyfloat(LATENCY_KEY, "sum", latency)
    pipe.hincrby(LATENCY_KEY, "count", 1)


def read(client: redis.Redis) -> tuple[dict[str, int], list[tuple[str, int]], float]:
    """(count per outcome, the latency histogram's cumulative buckets in order, their sum)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(OUTCOMES_KEY)
    pipe.hgetall(LATENCY_KEY)
    outcomes_raw, latency_raw = pipe.execute()
    outcomes = {_text(k): int(v) for k, v in outcomes_raw.items()}
    latency = {_text(k): v for k, v in latency_raw.items()}
    buckets = [(bucket_name(b), int(latency.get(bucket_name(b), 0)))
               for b in (*LATENCY_BUCKETS, float("inf"))]
    return {o: outcomes.get(o, 0) for o in OUTCOMES}, buckets, float(latency.get("sum", 0.0))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
