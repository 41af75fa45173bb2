"""Pacing, circuit breaker and claims on a real Redis (their Lua runs there)."""
from __future__ import annotations

import secrets

import pytest

from messaging.pacing import CircuitBreaker, Claims, Pacer, PacingPolicy

T0 = 1_800_000_000.0


@pytest.fixture
def session_id():
    return f"pace_{secrets.token_hex(4)}"


def test_each_send_is_a_gap_after_the_one_before(redis_client, session_id):
    pacer = Pacer(redis_client)
    policy = PacingPolicy(min_gap=1.0, max_gap=2.0, hourly_cap=100, daily_cap=0)
    times = [pacer.reserve(session_id, f"m{i}", policy, now=T0).at for i in range(20)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert times[0] == T0 and all(1.0 <= g <= 2.0 for g in gaps), gaps
    assert len(set(round(g, 3) for g in gaps)) > 1, "the gap is random (jitter)"


def test_asking_again_gives_the_same_time(redis_client, session_id):
    pacer = Pacer(redis_client)
    policy = PacingPolicy(1.0, 1.0, 100, 0)
    first = pacer.reserve(session_id, "m1", policy, now=T0)
    pacer.reserve(session_id, "m2", policy, now=T0)
    again = pacer.reserve(session_id, "m1", policy, now=T0 + 50)
    assert again.at == first.at and again.reason == "held"


def test_an_hourly_cap_makes_the_rest_wait_an_hour(redis_client, session_id):
    pacer = Pacer(redis_client)
    policy = PacingPolicy(min_gap=0.0, max_gap=0.0, hourly_cap=3, daily_cap=0)
    got = [pacer.reserve(session_id, f"m{i}", policy, now=T0 + i) for i in range(5)]
    assert [r.at for r in got[:3]] == [T0, T0 + 1, T0 + 2]
    # The 4th may go when the 1st is an hour old, the 5th when the 2nd is.
    assert (got[3].at, got[3].reason) == (T0 + 3600, "hourly")
    assert (got[4].at, got[4].reason) == (T0 + 3601, "hourly")


def test_a_daily_cap_holds_across_hours(redis_client, session_id):
    pacer = Pacer(redis_client)
    policy = PacingPolicy(min_gap=0.0, max_gap=0.0, hourly_cap=2, daily_cap=3)
    got = [pacer.reserve(session_id, f"m{i}", policy, now=T0) for i in range(4)]
    assert [r.at for r in got] == [T0, T0, T0 + 3600, T0 + 86400]
    assert got[3].reason == "daily"


def test_caps_hold_for_a_second_pacer_on_the_same_redis(redis_client, session_id):
    """Another worker (or this one after a restart) sees the same reservations."""
    policy = PacingPolicy(min_gap=0.0, max_gap=0.0, hourly_cap=2, daily_cap=0)
    Pacer(redis_client).reserve(session_id, "m1", policy, now=T0)
    Pacer(redis_client).reserve(session_id, "m2", policy, now=T0)
    assert Pacer(redis_client).reserve(session_id, "m3", policy, now=T0).at == T0 + 3600


def test_a_released_place_is_free_again(redis_client, session_id):
    pacer = Pacer(redis_client)
    policy = PacingPolicy(min_gap=0.0, max_gap=0.0, hourly_cap=1, daily_cap=0)
    pacer.reserve(session_id, "m1", policy, now=T0)
    pacer.release(session_id, "m1")  # failed before it was sent
    assert pacer.reserve(session_id, "m2", policy, now=T0).at == T0


def test_circuit_opens_after_five_failures_and_closes_after_a_minute(redis_client, session_id):
    breaker = CircuitBreaker(redis_client, threshold=5, cooldown=60)
    assert [breaker.failure(session_id, now=T0) for _ in range(4)] == [None] * 4
    assert breaker.failure(session_id, now=T0) == T0 + 60
    assert breaker.open_until(session_id, now=T0 + 59) == T0 + 60
    assert breaker.open_until(session_id, now=T0 + 61) is None


def test_a_success_resets_the_failure_count(redis_client, session_id):
    breaker = CircuitBreaker(redis_client, threshold=2, cooldown=60)
    breaker.failure(session_id, now=T0)
    breaker.success(session_id)
    assert breaker.failure(session_id, now=T0) is None


def test_cancel_and_send_cannot_both_win(redis_client):
    claims = Claims(redis_client)
    sent, cancelled = f"msg_{secrets.token_hex(4)}", f"msg_{secrets.token_hex(4)}"
    assert claims.take(sent, "task-1", lease=30) is None
    assert claims.cancel(sent) is False  # a sender holds it
    assert claims.take(sent, "task-2", lease=30) == b"task-1"  # a second copy must wait
    assert claims.take(sent, "task-1", lease=30) is None  # the holder itself may go on
    assert claims.cancel(cancelled) is True
    assert claims.take(cancelled, "task-1", lease=30) == Claims.CANCELLED


def test_a_claim_of_a_dead_earlier_life_is_taken_over_at_once(redis_client):
    claims = Claims(redis_client)
    message_id = f"msg_{secrets.token_hex(4)}"
    assert claims.take(message_id, "slot-1|old-boot|task", lease=60) is None  # then SIGKILL
    alive = lambda holder: False  # noqa: E731
    earlier_life = lambda holder: holder.startswith("slot-1|old-boot|")  # noqa: E731
    assert claims.take(message_id, "slot-1|new-boot|task", lease=60, dead=alive) == b"slot-1|old-boot|task"
    assert claims.take(message_id, "slot-1|new-boot|task", lease=60, dead=earlier_life) is None
    assert redis_client.get(Claims.key(message_id)) == b"slot-1|new-boot|task"
