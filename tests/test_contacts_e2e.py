"""Number checks, opt-outs and marking chats read (issue 13 items 3, 4, 5) from the REST
API through queue, slot worker, recorder and the simulator's WhatsApp Web (2026 page),
every part real, as in tests/test_end_to_end.py."""
from __future__ import annotations

import secrets

import pytest
import requests

from tests.helpers import keyed_client, wait_until
from tests.stack import link_session, network_log, running_stack

OWN = "919811111177"  # the simulated phone that links the session
PEER = "919876543210"
UNREGISTERED = "919999999999"  # not in the simulator's registry


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, redis_client):
    env = {"CONTACT_CHECK_MIN_GAP": "0.05", "CONTACT_CHECK_MAX_GAP": "0.1"}
    with running_stack(settings, tmp_path_factory.mktemp("logs"), redis_client, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def ready_session(app, api_key, stack):
    client = keyed_client(app, api_key)
    user = f"user_contacts_{secrets.token_hex(3)}"
    link_session(client, stack["sim"], user, phone=OWN)
    return user


def test_number_checks_answer_each_number_and_are_kept(client, stack, ready_session):
    numbers = [PEER, UNREGISTERED, "+52 1 55 3437 2942", "12345"]
    r = client.post(f"/webjs/sessions/{ready_session}/contacts/check", json={"numbers": numbers})
    assert r.status_code == 200, r.json
    registered, unregistered, mexican, invalid = r.json["results"]
    assert registered == {**registered, "input": PEER, "number": PEER, "valid": True, "exists": True,
                          "wa_id": f"{PEER}@c.us", "cached": False, "error": None}
    assert unregistered == {**unregistered, "number": UNREGISTERED, "exists": False, "wa_id": None, "error": None}
    # Mexico written with the old "1": valid, and WhatsApp knows the account without it.
    assert mexican == {**mexican, "number": "5215534372942", "exists": True, "wa_id": "525534372942@c.us"}
    assert invalid == {**invalid, "input": "12345", "number": None, "valid": False, "exists": None,
                       "error": "Invalid phone number format"}
    queries = requests.get(f"{stack['sim']}/sim/control/counters", timeout=5).json()["exists_queries"]

    again = client.post(f"/webjs/sessions/{ready_session}/contacts/check", json={"numbers": [PEER, UNREGISTERED]})
    assert [(x["exists"], x["cached"]) for x in again.json["results"]] == [(True, True), (False, True)]
    assert requests.get(f"{stack['sim']}/sim/control/counters", timeout=5).json()["exists_queries"] == queries, \
        "cached answers do not ask WhatsApp again"


def test_a_number_check_needs_a_ready_session(client, stack, user_id):
    assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
    r = client.post(f"/webjs/sessions/{user_id}/contacts/check", json={"numbers": [PEER]})
    assert r.status_code == 400
    assert r.json["message"] == "Client is not ready. Please ensure the session is authenticated and ready."
    assert client.post(f"/webjs/sessions/{user_id}/contacts/check", json={"numbers": []}).status_code == 422
    assert client.post(f"/webjs/sessions/{user_id}/contacts/check", json={"numbers": [PEER] * 51}).status_code == 422


def test_stop_then_a_send_fails_at_once_and_removing_the_opt_out_lets_the_next_through(
        client, stack, ready_session):
    # The phone PEER answers "STOP": the slot sees the message, the recorder records it and
    # puts PEER on the session's opt-out list (OPT_OUT_KEYWORDS).
    r = requests.post(f"{stack['sim']}/sim/control/incoming", json={"from": PEER, "to": OWN, "text": "Stop"},
                      timeout=5)
    assert r.ok, r.text
    listed = wait_until(lambda: (body := client.get(f"/webjs/sessions/{ready_session}/opt-outs").json)["count"]
                        and body, 30, what="the STOP to put the sender on the opt-out list")
    assert [(o["number"], o["source"]) for o in listed["opt_outs"]] == [(PEER, "keyword")]
    text = f"reminder {secrets.token_hex(3)}"
    r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30", json={"to": PEER, "message": text})
    assert r.status_code == 200 and r.json["status"] == "failed" and r.json["error"] == "recipient opted out"

    assert client.delete(f"/webjs/sessions/{ready_session}/opt-outs/{PEER}").json["removed"] is True
    after = f"after opting in {secrets.token_hex(3)}"
    r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30", json={"to": PEER, "message": after})
    assert r.status_code == 200 and r.json["status"] == "sent", r.json
    texts = [m.get("text") for m in network_log(stack["sim"])]
    assert after in texts and text not in texts, "the opted-out send never reached the page"


def test_an_opt_out_after_acceptance_stops_the_send_on_the_slot(client, stack, ready_session):
    """The slot looks at the list again just before the page: a message accepted before the
    opt-out (here waiting for its turn in a slow pace) fails there."""
    assert client.patch(f"/webjs/sessions/{ready_session}",
                        json={"pacing": {"min_gap_seconds": 4, "max_gap_seconds": 4}}).status_code == 200
    try:
        first = client.post(f"/webjs/sessions/{ready_session}/send-message",
                            json={"to": "919876500000", "message": f"first {secrets.token_hex(3)}"})
        text = f"second {secrets.token_hex(3)}"
        second = client.post(f"/webjs/sessions/{ready_session}/send-message", json={"to": PEER, "message": text})
        assert second.json["status"] == "queued"
        assert client.post(f"/webjs/sessions/{ready_session}/opt-outs/{PEER}").json["created"] is True
        job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{second.json['job_id']}").json)["status"]
                         == "failed" and j, 30, what="the send failed on the slot")
        assert job["results"][0]["error"] == "recipient opted out"
        wait_until(lambda: client.get(f"/webjs/jobs/{first.json['job_id']}").json["status"] == "completed", 30)
        assert text not in [m.get("text") for m in network_log(stack["sim"])]
    finally:
        client.patch(f"/webjs/sessions/{ready_session}", json={"pacing": None})
        client.delete(f"/webjs/sessions/{ready_session}/opt-outs/{PEER}")


def unread(sim: str, peer: str) -> int:
    chats = requests.get(f"{sim}/sim/control/chats", params={"phone": OWN}, timeout=5).json()["chats"]
    return next((c["unread"] for c in chats if c["peer"] == peer), 0)


def test_a_chat_is_marked_read_by_the_endpoint_and_after_a_send(client, stack, ready_session):
    sim = stack["sim"]
    replier = "919876511111"
    requests.post(f"{sim}/sim/control/incoming", json={"from": replier, "to": OWN, "text": "a question"},
                  timeout=5).raise_for_status()
    wait_until(lambda: unread(sim, replier) == 1, 10, what="an unread reply")
    r = client.post(f"/webjs/sessions/{ready_session}/chats/{replier}/read")
    assert r.status_code == 200, r.json
    assert r.json == {**r.json, "session_id": ready_session, "number": replier, "marked_read": True}
    assert unread(sim, replier) == 0
    # The page's sendSeen when the page has synced the chat already, else opening it (the
    # driver tests pin each route).
    via = {"modules": "model", "dom": "open"}[r.json["route"]]
    reads = requests.get(f"{sim}/sim/control/counters", timeout=5).json()["chat_reads"]
    assert [(x["peer"], x["via"]) for x in reads if x["peer"] == replier] == [(replier, via)]

    # Another chat: when the endpoint opened the first one, the page reads whatever arrives
    # there while it stays open, as the real page does.
    other = "919876522222"
    requests.post(f"{sim}/sim/control/incoming", json={"from": other, "to": OWN, "text": "and another"},
                  timeout=5).raise_for_status()
    wait_until(lambda: unread(sim, other) == 1, 10, what="a new unread reply")
    r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30",
                    json={"to": other, "message": "the answer", "mark_chat_read": True})
    assert r.json["status"] == "sent", r.json
    wait_until(lambda: unread(sim, other) == 0, 10, what="the chat read after the send")
    assert client.post(f"/webjs/sessions/{ready_session}/chats/12345/read").status_code == 422
