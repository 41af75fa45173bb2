"""One message from a REST call through queue, slot worker, recorder and the
simulator's WhatsApp Web, with every part real: PostgreSQL, Redis, Celery worker
processes, headless Chromium driven by Selenium, the simulator."""
from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

import pytest
import requests

from browser.qr import read_qr_data_url
from messaging import slots
from tests.helpers import keyed_client, serving, wait_until
from tests.stack import link_session, network_log, running_stack

PHONE = "919812345678"  # the simulated phone that links the session


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, redis_client):
    """Simulator, recorder and one slot worker, as separate processes."""
    with running_stack(settings, tmp_path_factory.mktemp("logs"), redis_client) as running:
        yield running


def on_screen_payloads(sim: str) -> set[str]:
    state = requests.get(f"{sim}/sim/control/state", timeout=5).json()
    return {c.get("payload") for c in state.get("connections", []) if c.get("payload")}


@pytest.fixture(scope="module")
def ready_session(app, api_key, stack):
    client = keyed_client(app, api_key)
    user = f"user_ready_{secrets.token_hex(3)}"
    link_session(client, stack["sim"], user, phone="919811111111")
    return user


def test_text_message_end_to_end(client, stack, user_id):
    sim = stack["sim"]
    r = client.post("/webjs/sessions", json={"user_id": user_id})
    assert r.status_code == 201

    r = client.post(f"/webjs/sessions/{user_id}/initialize")
    assert r.status_code == 200, r.json
    assert r.json["status"] in ("INITIALIZING", "QR_READY")

    r = client.get(f"/webjs/sessions/{user_id}/qr")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "QR_READY"
    payload = read_qr_data_url(r.json["qr_code"])
    assert payload in on_screen_payloads(sim), "the API's QR is the one on the page"
    assert payload.count(",") == 4 and payload.startswith("2@")  # the 2026 page: ref,noise,identity,adv,platform

    r = requests.post(f"{sim}/sim/phone/scan", json={"payload": payload, "phone": PHONE}, timeout=5)
    assert r.status_code == 200, r.text

    status = wait_until(lambda: (s := client.get(f"/webjs/sessions/{user_id}/status").json)["status"] == "READY" and s,
                        30, what="READY")
    assert status["phone_number"] == PHONE
    assert status["is_authenticated"] and status["is_ready"]

    text = f"Hello from Abhyasika! {secrets.token_hex(3)}"
    r = client.post(f"/webjs/sessions/{user_id}/send-message?wait=30", json={"to": "919876543210", "message": text})
    assert r.status_code == 200, r.json
    assert r.json["success"] is True and r.json["status"] == "sent"
    wa_id = r.json["whatsapp_message_id"]
    assert wa_id.startswith("true_919876543210@c.us_3EB0")

    job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{r.json['job_id']}").json)["status"] == "completed" and j,
                     10, what="job completed")
    assert job["total_messages"] == 1 and job["successful_sends"] == 1 and job["failed_sends"] == 0
    result = job["results"][0]
    assert result["status"] == "success" and result["message_status"] in ("sent", "delivered", "read")
    assert result["whatsapp_message_id"] == wa_id
    assert result["wa_id"] == r.json["wa_id"] == "919876543210@c.us"  # what WhatsApp's existence query answered

    received = network_log(sim)
    mine = [m for m in received if m.get("text") == text]
    assert len(mine) == 1, received
    assert mine[0]["to"].lstrip("+").split("@")[0] == "919876543210"
    assert wa_id.endswith(mine[0]["id"])


def test_send_without_wait_answers_202_and_the_job_fills_in(client, stack, ready_session):
    text = f"queued {secrets.token_hex(3)}"
    r = client.post(f"/webjs/sessions/{ready_session}/send-message", json={"to": "+91 98765 43210", "message": text})
    assert r.status_code == 202
    assert r.json["success"] is True and r.json["status"] == "queued"
    assert r.json["message_id"].startswith("msg_") and r.json["job_id"].startswith("job_")
    job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{r.json['job_id']}").json)["status"] == "completed" and j,
                     30, what="job completed")
    assert job["results"][0]["to"] == "+91 98765 43210"
    assert job["results"][0]["message_id"] == r.json["message_id"]
    assert [m["to"] for m in network_log(stack["sim"]) if m.get("text") == text] in (
        ["919876543210"], ["+919876543210"], ["919876543210@c.us"])


def test_unregistered_number_fails_at_once_with_a_clear_error(client, stack, ready_session):
    r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30",
                    json={"to": "919999999999", "message": "nobody home"})
    assert r.status_code == 200, r.json
    assert r.json["success"] is False and r.json["status"] == "failed"
    assert "not on WhatsApp" in r.json["error"]
    job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{r.json['job_id']}").json)["status"] == "failed" and j, 10)
    assert job["failed_sends"] == 1 and job["results"][0]["attempts"] == 1, "permanent errors are not retried"
    assert not [m for m in network_log(stack["sim"]) if m.get("text") == "nobody home"]


def test_mexican_52_1_and_legacy_brazilian_numbers_reach_the_id_whatsapp_answers(client, stack, ready_session):
    """Numbers the numbering plan no longer lists but WhatsApp addresses are accepted, and
    each message goes to, and reports as ``wa_id``, the account the existence query answers:
    a Mexican mobile written with "1" after 52, a Brazilian one known without its ninth digit."""
    sim = stack["sim"]
    requests.post(f"{sim}/sim/control/config", json={"legacy_br_numbers": ["551187654321"]},
                  timeout=5).raise_for_status()
    try:
        tag = secrets.token_hex(3)
        cases = [("+52 1 55 3437 2942", "525534372942"),  # Mexico, with the old "1"
                 ("+55 11 8765-4321", "551187654321"),  # Brazil, dialled without the ninth digit, as known
                 ("+55 11 98765-4321", "551187654321")]  # the same account, dialled with it
        items = [{"to": to, "message": f"number forms {tag} {i}"} for i, (to, _) in enumerate(cases)]
        r = client.post(f"/webjs/sessions/{ready_session}/send-bulk-messages", json={"messages": items})
        assert r.status_code == 202 and r.json["failed_sends"] == 0, r.json
        job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{r.json['job_id']}").json)["status"] == "completed"
                         and j, 60, what="the bulk to finish")
        assert [(x["to"], x["status"], x["wa_id"]) for x in job["results"]] == \
            [(to, "success", f"{account}@c.us") for to, account in cases]
        single = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30",
                             json={"to": "5215534372942", "message": f"number forms {tag} single"})
        assert single.status_code == 200 and single.json["status"] == "sent", single.json
        assert single.json["wa_id"] == "525534372942@c.us"
    finally:
        requests.post(f"{sim}/sim/control/config", json={"legacy_br_numbers": []}, timeout=5)
    got = {}
    for m in network_log(sim):
        if (m.get("text") or "").startswith(f"number forms {tag}"):
            got.setdefault(m["text"], []).append(m["to"].lstrip("+").split("@")[0])
    assert got == {**{item["message"]: [account] for item, (_, account) in zip(items, cases)},
                   f"number forms {tag} single": ["525534372942"]}, "each once, to the account WhatsApp knows"


def test_a_redelivered_send_task_does_not_send_twice(app, client, db, stack, ready_session):
    """acks_late means a task can run twice; the second run must not send again."""
    from sqlalchemy import select

    from messaging import dispatch
    from models import Message, WhatsAppSession

    text = f"exactly once {secrets.token_hex(3)}"
    r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30", json={"to": "919876543210", "message": text})
    assert r.json["status"] == "sent"
    with db() as s:
        msg = s.get(Message, r.json["message_id"])
        row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == ready_session)).scalar_one()
    dispatch.send_message(app.extensions["wa"].celery, slot=row.slot, message_id=msg.id, job_id=msg.job_id,
                          session_id=ready_session, epoch=row.epoch, to=msg.to, text=msg.text)
    # A marker sent after the duplicate proves the slot processed the duplicate (one queue, in order).
    marker = f"marker {secrets.token_hex(3)}"
    r2 = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30", json={"to": "919876543210", "message": marker})
    assert r2.json["status"] == "sent"
    assert len([m for m in network_log(stack["sim"]) if m.get("text") == text]) == 1


def test_acks_reach_job_polling(client, stack, ready_session):
    r = client.post(f"/webjs/sessions/{ready_session}/send-message", json={"to": "919876543210", "message": "ack me"})
    job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{r.json['job_id']}").json)["results"][0]
                     ["message_status"] == "read" and j, 30, what="read")
    assert job["status"] == "completed" and job["successful_sends"] == 1


def test_pairing_code_links_a_session(client, stack, user_id):
    sim = stack["sim"]
    assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
    r = client.post(f"/webjs/sessions/{user_id}/pairing-code", json={"phone_number": "919844444444"})
    assert r.status_code == 400 and r.json["message"] == "Session is not initialized. Please initialize the client first."
    assert client.post(f"/webjs/sessions/{user_id}/initialize").status_code == 200
    r = client.post(f"/webjs/sessions/{user_id}/pairing-code", json={"phone_number": "+91 98444 44444"})
    assert r.status_code == 200, r.json
    code = r.json["pairing_code"]
    assert len(code) == 9 and code[4] == "-" and r.json["phone_number"] == "919844444444"
    assert wait_until(lambda: client.get(f"/webjs/sessions/{user_id}/status").json["pairing_code"] == code, 10)
    assert requests.post(f"{sim}/sim/phone/pair", json={"code": code, "phone": "919844444444"}, timeout=5).ok
    status = wait_until(lambda: (s := client.get(f"/webjs/sessions/{user_id}/status").json)["status"] == "READY" and s,
                        30, what="READY")
    assert status["phone_number"] == "919844444444" and status["pairing_code"] is None
    r = client.post(f"/webjs/sessions/{user_id}/pairing-code", json={"phone_number": "919844444444"})
    assert r.status_code == 400 and r.json["message"] == "Session is already authenticated."


def test_media_url_is_sent_with_its_caption(client, stack, ready_session):
    body = b"%PDF-1.4\n" + secrets.token_bytes(2048)
    caption = f"Here's your document {secrets.token_hex(3)}"
    with serving({"/files/meeting-agenda.pdf": ("application/pdf", body)}) as base:
        url = f"{base}/files/meeting-agenda.pdf?token=secret"
        r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30",
                        json={"to": "919876543210", "message": caption, "media_urls": [url]})
        assert r.status_code == 200 and r.json["status"] == "sent", r.json
    sent = [m for m in network_log(stack["sim"]) if m.get("caption") == caption]
    assert len(sent) == 1 and sent[0]["type"] == "document"
    assert sent[0]["media"]["name"] == "meeting-agenda.pdf" and sent[0]["media"]["size"] == len(body)
    assert "token=secret" not in stack["procs"]["slot"].tail(200), "no query strings (tokens) in logs"


def test_inline_media_reach_the_page_intact_through_the_media_store(client, stack, ready_session, settings):
    """An inline file is stored when the send is accepted; the slot reads it back by its
    reference and attaches exactly those bytes."""
    body = b"%PDF-1.4\n" + secrets.token_bytes(300_000)
    caption = f"Inline document {secrets.token_hex(3)}"
    media = [{"filename": "inline-report.pdf", "mimetype": "application/pdf",
              "data": base64.b64encode(body).decode()}]
    r = client.post(f"/webjs/sessions/{ready_session}/send-message?wait=30",
                    json={"to": "919876543210", "message": caption, "media": media})
    assert r.status_code == 200 and r.json["status"] == "sent", r.json
    sent = [m for m in network_log(stack["sim"]) if m.get("caption") == caption]
    assert len(sent) == 1 and sent[0]["type"] == "document"
    assert sent[0]["media"]["name"] == "inline-report.pdf" and sent[0]["media"]["size"] == len(body)
    assert sent[0]["media"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert list((Path(settings.profile_dir) / "@media").iterdir()), "kept in the profile store's folder"


def _kept_browser_reason_then_ready(client, session: str, sim: str, start: tuple[str, dict],
                                    end: tuple[str, dict], reason: str) -> None:
    """Cause a trouble on the page (``start``: control path and body), see it in /status as
    DISCONNECTED with ``reason`` while the session keeps its browser (still active), end
    it (``end``) and see READY again."""
    requests.post(f"{sim}{start[0]}", json=start[1], timeout=5).raise_for_status()
    try:
        gone = wait_until(lambda: (s := client.get(f"/webjs/sessions/{session}/status").json)["status"]
                          == "DISCONNECTED" and s, 15, what="DISCONNECTED")
        assert gone["reason"] == reason
        assert session in client.get("/webjs/sessions/active").json["active_sessions"]
    finally:
        requests.post(f"{sim}{end[0]}", json=end[1], timeout=5)
    wait_until(lambda: client.get(f"/webjs/sessions/{session}/status").json["status"] == "READY", 15,
               what="READY again")


def test_connection_loss_shows_in_status_and_recovers(client, stack, ready_session):
    path = "/sim/control/connection"
    _kept_browser_reason_then_ready(client, ready_session, stack["sim"],
                                    (path, {"online": False, "phone": "919811111111"}),
                                    (path, {"online": True, "phone": "919811111111"}), "CONNECTION_LOST")


def test_a_temporary_ban_shows_in_status_and_ends_in_ready(client, stack, ready_session):
    """A whole screen of the 2026 page reaches /status with its reason; the browser stays."""
    sim = stack["sim"]
    version = requests.get(f"{sim}/sim/control/config", timeout=5).json()["version"]
    wait_until(lambda: client.get(f"/webjs/sessions/{ready_session}/status").json["web_version"] == version, 15,
               what="the page's build in /status (from the slot's heartbeat)")
    path = "/sim/control/screen"
    _kept_browser_reason_then_ready(client, ready_session, sim,
                                    (path, {"screen": "TEMP_BAN", "phone": "919811111111"}),
                                    (path, {"screen": None, "phone": "919811111111"}), "TEMP_BANNED")
    assert requests.get(f"{sim}/sim/control/counters", timeout=5).json()["logout_clicks"] == []


def test_deleting_a_session_stops_its_browser(client, stack, user_id, db):
    from sqlalchemy import select

    from models import SessionTransition

    link_session(client, stack["sim"], user_id, phone="919822222222")
    assert user_id in client.get("/webjs/sessions/active").json["active_sessions"]
    r = client.delete(f"/webjs/sessions/{user_id}")
    assert r.status_code == 200 and r.json["success"] is True
    assert client.get(f"/webjs/sessions/{user_id}/status").status_code == 404
    assert user_id not in client.get("/webjs/sessions/active").json["active_sessions"]
    with db() as s:
        log = s.execute(select(SessionTransition.to_status).where(SessionTransition.session_id == user_id)
                        .order_by(SessionTransition.id)).scalars().all()
    assert log[-1] == "DESTROYED" and "READY" in log

    def page_gone():
        state = requests.get(f"{stack['sim']}/sim/control/state", timeout=5).json()
        return not [c for c in state.get("connections", [])
                    if c.get("phone") == "919822222222" and c.get("alive")]
    wait_until(page_gone, 15, what="the browser to close its page")


def test_a_clean_worker_restart_keeps_the_login(client, stack, user_id, settings, db, redis_client):
    """Runs last in this module: it restarts the slot worker."""
    import shutil
    from pathlib import Path

    from sqlalchemy import select

    from models import SessionTransition

    link_session(client, stack["sim"], user_id, phone="919833333333")
    slot = stack["procs"]["slot"]
    slot.stop()  # SIGTERM to the worker's whole process group, as honcho stops it
    wait_until(lambda: client.get(f"/webjs/sessions/{user_id}/status").json["reason"] == "WORKER_STOPPED", 15)
    # As if the worker came back on another host: no local Chrome profile, only the store.
    shutil.rmtree(Path(settings.browser_work_dir) / "profiles" / user_id)
    slot.start()
    wait_until(lambda: any(s.name == stack["slot"] for s in slots.live_slots(redis_client)), 60, what="slot back")
    assert client.post(f"/webjs/sessions/{user_id}/initialize").status_code == 200
    status = wait_until(lambda: (s := client.get(f"/webjs/sessions/{user_id}/status").json)["status"] == "READY" and s,
                        30, what="READY again")
    assert status["phone_number"] == "919833333333"
    with db() as s:
        log = s.execute(select(SessionTransition.to_status).where(SessionTransition.session_id == user_id)
                        .order_by(SessionTransition.id)).scalars().all()
    after_restart = log[log.index("DISCONNECTED") + 1:]
    assert after_restart[0] == "INITIALIZING" and after_restart[-1] == "READY", log
    assert "QR_READY" not in after_restart, f"no QR after a restart: {log}"
