"""The send rules as plain functions: no Celery, Redis, PostgreSQL or Chrome."""
from __future__ import annotations

import pytest

from workers import send_rules as rules
from workers.send_rules import Availability, Outcome, Restriction

NOW = 1_000_000.0


def lowest(a, b):
    return a


def highest(a, b):
    return b


def ready(**overrides):
    facts = dict(now=NOW, attempt=1, availability=Availability.READY, restriction=None, breaker_open_until=None,
                 reserved_at=NOW, reserved_reason="now", last_sent=0.0, min_gap=1.0, max_gap=2.0, uniform=lowest)
    return rules.before_send(**{**facts, **overrides})


def test_a_ready_session_with_a_free_slot_goes_now():
    assert ready() == rules.Go(sleep=0.0)


def test_the_gap_counts_from_the_last_confirmed_send_and_is_slept_through_up_to_max_gap():
    assert ready(last_sent=NOW - 0.4) == rules.Go(sleep=pytest.approx(0.6))
    assert ready(last_sent=NOW + 10, min_gap=1.0, max_gap=2.0) == rules.Go(sleep=2.0)


def test_a_session_not_here_is_left_to_the_sweeper():
    assert isinstance(ready(availability=Availability.GONE), rules.Leave)


def test_an_offline_phone_waits_with_backoff_and_keeps_its_attempt():
    decision = ready(availability=Availability.OFFLINE, attempt=3)
    assert isinstance(decision, rules.Wait)
    assert decision.reason == "offline" and decision.attempt is None
    assert NOW + 4.5 <= decision.at <= NOW + 32.0


def test_a_restricted_session_waits_until_it_is_looked_at_again_naming_the_restriction():
    restriction = Restriction("reachout_timelock", until=NOW + 300)
    decision = ready(availability=Availability.RESTRICTED, restriction=restriction)
    assert decision == rules.Wait(NOW + 300, "restricted: new chats are time-locked (reach-out timelock)")
    assert rules.restriction_reason("temporary_ban") == "restricted: temporary ban"


def test_an_open_breaker_holds_the_send_until_it_closes():
    assert ready(breaker_open_until=NOW + 42) == rules.Wait(NOW + 42, rules.BREAKER_REASON)


@pytest.mark.parametrize("why,reason", [("gap", "pacing: gap between sends"), ("hourly", "pacing: hourly cap reached"),
                                        ("daily", "pacing: daily cap reached")])
def test_a_reservation_later_than_a_short_wait_is_scheduled_with_its_reason(why, reason):
    assert ready(reserved_at=NOW + 5, reserved_reason=why) == rules.Wait(NOW + 5, reason)


def test_a_reservation_within_a_short_wait_goes():
    assert isinstance(ready(reserved_at=NOW + rules.SHORT_WAIT / 2, reserved_reason="gap"), rules.Go)


def test_the_claim_decides_between_going_a_cancel_and_another_copy_sending():
    assert rules.claim_decision(now=NOW, claim=None, cancelled_mark="X", send_timeout=20) == rules.Go()
    assert rules.claim_decision(now=NOW, claim="X", cancelled_mark="X", send_timeout=20) == rules.Cancelled()
    assert rules.claim_decision(now=NOW, claim="slot-2|ab|t", cancelled_mark="X", send_timeout=20) == \
        rules.Wait(NOW + 20, rules.BUSY_REASON)


def after(outcome, attempt=1, max_retries=3, **kw):
    return rules.after_failure(now=NOW, attempt=attempt, max_retries=max_retries, outcome=outcome, error="boom",
                               uniform=highest, **kw)


def test_a_permanent_failure_fails_at_once():
    assert after(Outcome.PERMANENT) == rules.Fail("boom")


def test_a_transient_failure_is_retried_with_backoff_then_fails_after_max_retries():
    decision = after(Outcome.TRANSIENT, attempt=2)
    assert decision == rules.Wait(NOW + 8.0, "retrying after: boom", attempt=3)
    assert after(Outcome.TRANSIENT, attempt=3) == rules.Fail("boom")


def test_an_unconfirmed_send_gets_one_attempt_more_which_looks_first():
    assert isinstance(after(Outcome.UNCONFIRMED, attempt=3), rules.Wait)
    assert after(Outcome.UNCONFIRMED, attempt=4) == rules.Fail("boom")


def test_a_restriction_holds_the_message_without_using_an_attempt_or_failing_it():
    restriction = Restriction("new_chat_cap", until=NOW + 60)
    decision = after(Outcome.RESTRICTED, attempt=3, restriction=restriction)
    assert decision == rules.Wait(NOW + 60, "restricted: new chats are capped")
    assert decision.attempt is None


def test_gone_and_offline_after_an_attempt():
    assert isinstance(after(Outcome.GONE), rules.Leave)
    assert after(Outcome.OFFLINE).reason == "offline"


def test_only_browser_failures_count_for_the_breaker():
    assert rules.counts_for_breaker(Outcome.TRANSIENT) and rules.counts_for_breaker(Outcome.UNCONFIRMED)
    for outcome in (Outcome.RESTRICTED, Outcome.OFFLINE, Outcome.PERMANENT, Outcome.GONE):
        assert not rules.counts_for_breaker(outcome)


def test_backoff_is_bounded_by_its_cap():
    assert rules.backoff_seconds(10, base=2.0, cap=60.0, uniform=highest) == 60.0
    assert rules.backoff_seconds(1, base=2.0, cap=60.0, uniform=lowest) == 1.0


def test_no_look_without_a_sign_of_an_earlier_attempt():
    assert rules.look_before_send(commit_marker=None, earlier=None) is None


def test_a_commit_marker_anchors_the_look_on_the_row_before_the_commit():
    assert rules.look_before_send(commit_marker="true_1@c.us_AB", earlier=None) == rules.Look(after_row="true_1@c.us_AB")
    assert rules.look_before_send(commit_marker="", earlier=None) == rules.Look()  # the chat was empty


def test_what_postgresql_knows_makes_a_look_even_when_redis_forgot():
    earlier = {"since": NOW - 30, "after_id": "true_1@c.us_OLD"}
    assert rules.look_before_send(commit_marker=None, earlier=earlier) == \
        rules.Look(since=NOW - 30, after_id="true_1@c.us_OLD")
    both = rules.look_before_send(commit_marker="true_1@c.us_AB", earlier=earlier)
    assert both == rules.Look(after_row="true_1@c.us_AB", since=NOW - 30, after_id="true_1@c.us_OLD")


FIRST = NOW - 120  # the message's first dispatch


def test_the_first_run_of_a_task_makes_no_look_of_its_own():
    assert rules.earlier_attempts(earlier=None, first_dispatch=FIRST) is None


def test_a_redelivered_task_looks_from_its_first_dispatch_whatever_redis_forgot():
    """The broker hands a task over again (a worker lost with it unacknowledged, the
    visibility timeout): a copy of it may have sent the message."""
    earlier = rules.earlier_attempts(earlier=None, first_dispatch=FIRST, redelivered=True)
    assert earlier == {"since": FIRST, "after_id": None}
    assert rules.look_before_send(commit_marker=None, earlier=earlier) == rules.Look(since=FIRST)


def test_a_retry_of_a_run_that_reached_the_page_looks_from_its_first_dispatch():
    assert rules.earlier_attempts(earlier=None, first_dispatch=FIRST, attempted=True) == \
        {"since": FIRST, "after_id": None}


def test_a_retry_carries_on_what_its_run_knew_of_earlier_attempts():
    """A redelivered run that is only paced hands its look on to its retry: the retry is
    given what this run computed, not the broker's flag, which a retry does not carry."""
    redelivered = rules.earlier_attempts(earlier=None, first_dispatch=FIRST, redelivered=True)
    assert rules.earlier_attempts(earlier=redelivered, first_dispatch=FIRST, attempted=False) == redelivered


def test_what_the_sweeper_read_from_postgresql_is_kept():
    swept = {"since": FIRST - 60, "after_id": "true_1@c.us_OLD"}
    for redelivered in (False, True):
        assert rules.earlier_attempts(earlier=swept, first_dispatch=FIRST, redelivered=redelivered,
                                      attempted=True) == swept


def test_a_run_that_was_only_paced_is_still_the_first():
    """Pacing, the breaker or a restriction held it before the page: no run touched the chat."""
    assert rules.earlier_attempts(earlier=None, first_dispatch=FIRST, attempted=False) is None


def test_without_a_first_dispatch_no_look_is_made_that_has_no_anchor():
    """A task enqueued by an older version: an unanchored look could take an older message
    with the same text for this one; the commit marker still decides."""
    assert rules.earlier_attempts(earlier=None, first_dispatch=None, redelivered=True, attempted=True) is None
