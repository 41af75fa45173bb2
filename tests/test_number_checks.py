"""The slot's number checks without a browser (issue 13 item 3): a stand-in page, the real
pacing and cache in Redis. Checks are paced like sends but apart from them, capped, and
each answer is kept."""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import replace

import pytest

from browser.whatsapp import NumberCheck, SendRestricted, TransientSendError
from messaging.pacing import Pacer, PacingPolicy
from workers.contacts import NumberChecks


class StandInPage:
    """Answers like the existence query: numbers ending in 0 are not on WhatsApp."""

    def __init__(self, fail: dict | None = None):
        self.asked: list[tuple[str, float]] = []
        self.fail = fail or {}

    def check_number(self, phone: str, timeout: float = 20.0) -> NumberCheck:
        self.asked.append((phone, time.monotonic()))
        if phone in self.fail:
            raise self.fail[phone]
        if phone.endswith("0"):
            return NumberCheck(False, None, "modules")
        return NumberCheck(True, f"{phone}@c.us", "modules")


class StandInSession:
    def __init__(self, page):
        self.page, self.lock = page, threading.RLock()


@pytest.fixture
def session_id():
    return f"chk_{secrets.token_hex(4)}"


def checks(settings, redis_client, page, **overrides) -> NumberChecks:
    session = StandInSession(page)
    return NumberChecks(replace(settings, **overrides), redis_client, lambda sid, epoch: session)


def test_checks_keep_their_gap_and_each_answer(settings, redis_client, session_id):
    page = StandInPage()
    nc = checks(settings, redis_client, page, contact_check_min_gap=0.3, contact_check_max_gap=0.3)
    numbers = ["919876543211", "919876543210", "919876543212"]
    answers = nc.check(session_id, 1, numbers)
    assert [answers[n]["exists"] for n in numbers] == [True, False, True]
    assert answers["919876543211"]["wa_id"] == "919876543211@c.us" and answers["919876543210"]["wa_id"] is None
    times = [t for _, t in page.asked]
    assert all(b - a >= 0.28 for a, b in zip(times, times[1:])), times
    kept = nc.cache.get_many(session_id, numbers + ["919876543219"])
    assert {n: (a.exists, a.wa_id) for n, a in kept.items()} == {n: (answers[n]["exists"], answers[n]["wa_id"])
                                                                 for n in numbers}


def test_checks_have_a_pace_of_their_own(settings, redis_client, session_id):
    """A session whose sends just reserved their next turn far ahead still checks now."""
    Pacer(redis_client).reserve(session_id, "msg_busy", PacingPolicy(3600, 3600, 0, 0))
    Pacer(redis_client).reserve(session_id, "msg_next", PacingPolicy(3600, 3600, 0, 0))
    page = StandInPage()
    started = time.monotonic()
    checks(settings, redis_client, page, contact_check_min_gap=0, contact_check_max_gap=0).check(
        session_id, 1, ["919876543211"])
    assert len(page.asked) == 1 and time.monotonic() - started < 5


def test_checks_over_the_hourly_cap_are_answered_without_asking(settings, redis_client, session_id):
    page = StandInPage()
    nc = checks(settings, redis_client, page, contact_check_min_gap=0, contact_check_max_gap=0,
                contact_check_hourly_cap=2)
    answers = nc.check(session_id, 1, ["919876543211", "919876543212", "919876543213"])
    assert [p for p, _ in page.asked] == ["919876543211", "919876543212"]
    assert re.fullmatch(r"Checked too often; ask again after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                        answers["919876543213"]["error"])  # the seed's time format
    assert not nc.cache.get_many(session_id, ["919876543213"])


def test_a_number_the_page_could_not_check_is_answered_on_its_own(settings, redis_client, session_id):
    page = StandInPage(fail={"919876543211": TransientSendError("the chat did not open"),
                             "919876543212": SendRestricted("reachout_timelock")})
    nc = checks(settings, redis_client, page, contact_check_min_gap=0, contact_check_max_gap=0)
    answers = nc.check(session_id, 1, ["919876543211", "919876543212", "919876543213"])
    assert answers["919876543211"] == {"error": "Not checked: the chat did not open"}
    assert answers["919876543212"] == {"error": "WhatsApp restricts this account for now (reachout_timelock)"}
    assert answers["919876543213"]["exists"] is True
    assert list(nc.cache.get_many(session_id, list(answers))) == ["919876543213"], "only answers are kept"
