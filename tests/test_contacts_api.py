"""The API side of number checks and chat reads (issue 13 items 3, 5) without a browser: the
session sits on a slot whose queue a stand-in drains, answering as the slot task does (a
notice on the session's live channel), or not at all."""
from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace

import pytest

from messaging.contacts import ContactAnswer, ContactCache
from messaging.events import EventBus
from settings import slot_queue
from tests.helpers import keyed_client


@pytest.fixture(scope="module")
def quick_app(settings):
    """The API waiting 0.5 s for a slot's answer."""
    from api import create_app

    return create_app(replace(settings, slot_answer_wait_seconds=0.5))


@pytest.fixture
def api(quick_app, api_key):
    return keyed_client(quick_app, api_key)


@pytest.fixture
def ready(ready_on_slot):
    return ready_on_slot


def stand_in_slot(redis_client, slot: str, answer) -> threading.Thread:
    """Take the next task off the slot's queue (kombu: LPUSH, the worker pops the other end)
    and publish ``answer(task name, kwargs)`` on its session's channel, as the slot task does."""
    def run():
        popped = redis_client.brpop(slot_queue(slot), timeout=10)  # Redis waits for the task
        if popped is None:
            return
        message = json.loads(popped[1])
        kwargs = json.loads(base64.b64decode(message["body"]))[1]
        EventBus(redis_client).notify_session(kwargs["session_id"], answer(message["headers"]["task"], kwargs))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_kept_answers_need_no_slot(api, ready, redis_client, settings):
    session_id, slot = ready
    cache = ContactCache(redis_client, 60)
    cache.put(session_id, "919876543210", ContactAnswer(True, "919876543210@c.us", "2026-11-30T07:00:00+00:00"))
    cache.put(session_id, "525534372942", ContactAnswer(True, "525534372942@c.us", "2026-11-30T07:00:00+00:00"))
    r = api.post(f"/webjs/sessions/{session_id}/contacts/check",
                 json={"numbers": ["+91 98765 43210", "abc", "+52 55 3437 2942", "919876543210"]})
    assert r.status_code == 200
    results = r.json["results"]
    assert [(x["number"], x["exists"], x["cached"], x["error"]) for x in results] == [
        ("919876543210", True, True, None), (None, None, False, "Invalid phone number format"),
        ("525534372942", True, True, None), ("919876543210", True, True, None)]
    assert results[0]["checked_at"] == "2026-11-30T07:00:00Z"
    assert redis_client.llen(slot_queue(slot)) == 0, "nothing asked of the slot"


def test_numbers_the_slot_did_not_answer_in_time_say_so_one_by_one(api, ready, redis_client):
    session_id, slot = ready
    ContactCache(redis_client, 60).put(session_id, "919876543210",
                                       ContactAnswer(False, None, "2026-11-30T07:00:00+00:00"))
    r = api.post(f"/webjs/sessions/{session_id}/contacts/check", json={"numbers": ["919876543210", "919876543211"]})
    assert r.status_code == 200
    known, unanswered = r.json["results"]
    assert (known["exists"], known["cached"], known["error"]) == (False, True, None)
    assert unanswered["exists"] is None and unanswered["error"].startswith("Not checked in time; ask again")
    task = json.loads(redis_client.rpop(slot_queue(slot)))
    assert task["headers"]["task"] == "wa.slot.check_numbers"
    assert json.loads(base64.b64decode(task["body"]))[1]["numbers"] == ["919876543211"], "only what is not kept"


def test_the_slots_answers_and_errors_reach_the_caller(quick_app, api_key, ready, redis_client):
    """With answers kept for no time (CONTACT_CHECK_CACHE_SECONDS=0) the notice carries them."""
    from api import create_app

    session_id, slot = ready
    app = create_app(replace(quick_app.extensions["wa"].settings, contact_check_cache_seconds=0,
                             slot_answer_wait_seconds=10))
    client = keyed_client(app, api_key)
    stand_in_slot(redis_client, slot, lambda task, kw: {
        "type": "contacts_checked", "request_id": kw["request_id"], "epoch": 1, "results": {
            "919876543211": {"exists": True, "wa_id": "919876543211@c.us", "checked_at": "2026-11-30T07:00:00+00:00"},
            "919876543212": {"error": "Checked too often; ask again after 2026-11-30T08:00:00Z"}}})
    r = client.post(f"/webjs/sessions/{session_id}/contacts/check", json={"numbers": ["919876543211", "919876543212"]})
    ok, capped = r.json["results"]
    assert (ok["exists"], ok["wa_id"], ok["cached"], ok["error"]) == (True, "919876543211@c.us", False, None)
    assert capped["exists"] is None and capped["error"] == "Checked too often; ask again after 2026-11-30T08:00:00Z"


def test_a_slot_that_finds_the_session_not_ready_answers_the_seeds_error(api, ready, redis_client):
    session_id, slot = ready
    stand_in_slot(redis_client, slot, lambda task, kw: {"type": "contacts_checked", "request_id": kw["request_id"],
                                                        "not_ready": True, "error": "gone"})
    r = api.post(f"/webjs/sessions/{session_id}/contacts/check", json={"numbers": ["919876543211"]})
    assert r.status_code == 400
    assert r.json["message"] == "Client is not ready. Please ensure the session is authenticated and ready."


def test_a_chat_read_answers_with_the_route_or_says_why_not(api, ready, redis_client):
    session_id, slot = ready
    stand_in_slot(redis_client, slot, lambda task, kw: {"type": "chat_read", "request_id": kw["request_id"],
                                                        "ok": task == "wa.slot.mark_chat_read"
                                                        and kw["phone"] == "919876543210", "route": "modules"})
    r = api.post(f"/webjs/sessions/{session_id}/chats/+91%2098765%2043210/read")
    assert r.status_code == 200, r.json
    assert r.json == {"session_id": session_id, "number": "919876543210", "marked_read": True, "route": "modules"}

    stand_in_slot(redis_client, slot, lambda task, kw: {"type": "chat_read", "request_id": kw["request_id"],
                                                        "ok": False, "error": "The number is not on WhatsApp"})
    r = api.post(f"/webjs/sessions/{session_id}/chats/919876543210/read")
    assert r.status_code == 409 and r.json["message"] == "The number is not on WhatsApp"

    r = api.post(f"/webjs/sessions/{session_id}/chats/919876543210/read")  # nobody answers
    assert r.status_code == 504
