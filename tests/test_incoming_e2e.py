"""Replies come back, end to end on the simulator with every part real (simulator,
headless Chromium, slot worker, recorder, control worker delivering webhooks, PostgreSQL,
Redis): a send, a reply quoting it from the simulated phone, the signed message.received
webhook naming our message and job, the message listed by the API; an image reply with
its metadata; a slot restart that sees the reply again records it once."""
from __future__ import annotations

import json
import secrets

import pytest
import requests
from sqlalchemy import func, select

from messaging import slots
from models import IncomingMessage, WebhookDelivery
from tests.helpers import WebhookReceiver, wait_until
from tests.stack import link_session, network_log, running_stack
from workers.webhooks import verify

SECRET = "incoming-webhook-secret"
PEER = "919876500123"  # the simulated phone that replies; its chat is keyed by its LID


class Receiver(WebhookReceiver):
    """A webhook receiver on loopback that keeps every delivery."""

    def received(self, **match) -> list[dict]:
        """The message.received events delivered whose ``data`` has the fields of ``match``."""
        out = []
        for _path, headers, body in list(self.requests):
            event = json.loads(body)
            if event["type"] == "message.received" and all(event["data"].get(k) == v for k, v in match.items()):
                out.append({**event, "headers": headers, "raw": body})
        return out


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, redis_client):
    env = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "SIM_LID_NUMBERS": PEER}
    with running_stack(settings, tmp_path_factory.mktemp("logs"), redis_client, control=True, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def incoming(sim: str, **body) -> str:
    r = requests.post(f"{sim}/sim/control/incoming", json={"from": PEER, **body}, timeout=5)
    assert r.ok, r.text
    return r.json()["messages"][0]["id"]


def listed(client, session: str) -> list[dict]:
    r = client.get(f"/webjs/sessions/{session}/messages?direction=in&limit=200")
    assert r.status_code == 200, r.json
    return r.json["messages"]


def test_a_reply_comes_back_as_a_webhook_and_in_the_list_once_even_after_a_slot_restart(
        client, stack, receiver, db, redis_client):
    sim = stack["sim"]
    session = f"user_in_{secrets.token_hex(3)}"
    link_session(client, sim, session, phone="919812300001", callback_url=receiver.url)
    sent = client.post(f"/webjs/sessions/{session}/send-message?wait=30",
                       json={"to": PEER, "message": "Your appointment is tomorrow at 10:00. Reply to change it."})
    assert sent.status_code == 200 and sent.json["status"] in ("sent", "delivered", "read"), sent.json
    ours = next(m for m in network_log(sim) if m["text"].startswith("Your appointment"))

    # The phone answers, quoting our message.
    reply_id = incoming(sim, text="Can we make it 11:00?", quote=ours["id"], lid=True)
    hook = wait_until(lambda: receiver.received(whatsapp_message_id=reply_id), 60, what="message.received")[0]
    assert verify(SECRET, hook["headers"]["X-Webhook-Timestamp"], hook["raw"], hook["headers"]["X-Webhook-Signature"])
    data = hook["data"]
    assert data["in_reply_to"]["message_id"] == sent.json["message_id"]
    assert data["in_reply_to"]["job_id"] == sent.json["job_id"]
    assert data["from"] == PEER and data["from_wa_id"].endswith("@lid") and data["text"] == "Can we make it 11:00?"
    [row] = [m for m in listed(client, session) if m["whatsapp_message_id"] == reply_id]
    assert row["in_reply_to"] == {"message_id": sent.json["message_id"], "job_id": sent.json["job_id"]}
    assert row["message_id"] == data["message_id"] and row["from"] == PEER

    # An image reply carries its metadata.
    image_id = incoming(sim, type="image", text="my new card", quote=ours["id"],
                        media={"name": "card.jpg", "mimetype": "image/jpeg", "size": 183402})
    image = wait_until(lambda: receiver.received(whatsapp_message_id=image_id), 60, what="the image's webhook")[0]
    assert image["data"]["type"] == "image" and image["data"]["text"] == "my new card"
    assert image["data"]["media"] == {"kind": "image", "mimetype": "image/jpeg", "filename": "card.jpg", "size": 183402}
    assert image["data"]["in_reply_to"]["message_id"] == sent.json["message_id"]

    # The slot worker restarts; its new page holds the same messages again.
    slot = stack["procs"]["slot"]
    slot.stop()
    wait_until(lambda: client.get(f"/webjs/sessions/{session}/status").json["status"] != "READY", 20,
               what="the session leaves READY")
    slot.start()
    wait_until(lambda: any(s.name == stack["slot"] for s in slots.live_slots(redis_client)), 60, what="slot back")
    if client.get(f"/webjs/sessions/{session}/status").json["status"] not in ("INITIALIZING", "READY"):
        client.post(f"/webjs/sessions/{session}/initialize")  # unless the control worker recovered it already
    wait_until(lambda: client.get(f"/webjs/sessions/{session}/status").json["status"] == "READY", 60,
               what="READY again")
    after_id = incoming(sim, text="Thanks!")
    wait_until(lambda: any(m["whatsapp_message_id"] == after_id for m in listed(client, session)), 60,
               what="the message after the restart")
    refused = lambda: [line for line in stack["procs"]["recorder"].tail(400).splitlines()  # noqa: E731
                       if "already recorded" in line and image_id in line]
    # The newest message of the chat (the image) is in the new page's collection again.
    assert refused(), "the restarted slot saw the image again (the recorder refused the copy)"
    with db() as s:
        counts = dict(s.execute(select(IncomingMessage.wa_message_id, func.count()).where(
            IncomingMessage.session_id == session).group_by(IncomingMessage.wa_message_id)).all())
        hooks = s.execute(select(WebhookDelivery.body).where(WebhookDelivery.event_type == "message.received")
                          ).scalars().all()
    assert counts == {reply_id: 1, image_id: 1, after_id: 1}
    assert [sum(1 for body in hooks if wa_id in body) for wa_id in (reply_id, image_id)] == [1, 1]
    assert [m["whatsapp_message_id"] for m in listed(client, session)] == [reply_id, image_id, after_id]
