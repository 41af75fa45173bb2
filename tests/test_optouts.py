"""Opt-outs (issue 13 item 4) without a browser: the keyword rule, the function the
incoming-message recorder calls, the API's list, and sends to an opted-out number failing
at acceptance (real PostgreSQL and Redis; the session sits on a slot nobody consumes, so
an enqueued send stays in that slot's queue)."""
from __future__ import annotations

import json
import secrets
from datetime import timezone

import pytest
from sqlalchemy import select

from messaging.optouts import OptOutMirror
from models import Message, OptOut, WebhookDelivery, WhatsAppSession
from models.optouts import is_opt_out, record_incoming_text
from settings import Settings, slot_queue

KEYWORDS = Settings().opt_out_keywords
HOOK = "https://hooks.example.com/wa"


@pytest.fixture
def ready(db, user_id, redis_client):
    """A READY session on its own slot queue (nobody consumes it), with a callback URL."""
    slot = f"optout-{secrets.token_hex(3)}"
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, status="READY", slot=slot, epoch=1,
                              callback_url=HOOK))
    yield user_id, slot
    redis_client.delete(slot_queue(slot), OptOutMirror.key(user_id))


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop! ", "sToP.", "STOP 🛑", "Unsubscribe\n", "opt out",
                                  "OPT-OUT", "stop   all", "ＳＴＯＰ", "\u200bstop\u200b", "बंद करो", "बंद करो।"])
def test_an_opt_out_keyword_is_the_whole_text_in_any_case_and_script(text):
    assert is_opt_out(text, KEYWORDS)


@pytest.mark.parametrize("text", ["", "   ", "please stop", "don't stop", "stopping", "STOP IT NOW", "top", "🛑",
                                  "बंद करो मत"])
def test_a_text_that_only_contains_a_keyword_is_not_an_opt_out(text):
    assert not is_opt_out(text, KEYWORDS)


def test_the_keywords_are_configurable_with_any_unicode():
    settings = Settings.from_env({"OPT_OUT_KEYWORDS": "PARAR, Désabonner ,ストップ"})
    assert settings.opt_out_keywords == ("PARAR", "Désabonner", "ストップ")
    assert is_opt_out("désabonner!", settings.opt_out_keywords) and is_opt_out("ストップ", settings.opt_out_keywords)
    assert not is_opt_out("STOP", settings.opt_out_keywords)


def test_an_incoming_stop_lists_the_sender_once_with_one_webhook(db, ready, redis_client):
    session_id, _slot = ready
    mirror = OptOutMirror(redis_client)
    with db.begin() as s:
        assert record_incoming_text(s, session_id, "919876543210", "Stop!", KEYWORDS, mirror=mirror) is True
        assert not mirror.contains(session_id, "919876543210"), "the slots learn it only once it is committed"
    assert mirror.contains(session_id, "919876543210")
    with db.begin() as s:  # STOP again: still listed, no second webhook
        assert record_incoming_text(s, session_id, "919876543210", "STOP", KEYWORDS, mirror=mirror) is True
        assert record_incoming_text(s, session_id, "919876543210", "thanks!", KEYWORDS, mirror=mirror) is False
    with db() as s:
        rows = s.execute(select(OptOut).where(OptOut.session_id == session_id)).scalars().all()
        hooks = s.execute(select(WebhookDelivery).where(WebhookDelivery.event_type == "contact.opted_out",
                                                        WebhookDelivery.body.contains(session_id))).scalars().all()
    assert [(r.number, r.source, r.text) for r in rows] == [("919876543210", "keyword", "Stop!")]
    assert len(hooks) == 1 and hooks[0].url == HOOK
    body = json.loads(hooks[0].body)
    assert body["type"] == "contact.opted_out" and body["id"] == hooks[0].id
    assert body["data"] == {"session_id": session_id, "number": "919876543210", "source": "keyword",
                            "opted_out_at": rows[0].created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert body["created_at"] == body["data"]["opted_out_at"]  # the seed's format, as everywhere


def test_an_opt_out_rolled_back_leaves_no_trace(db, ready, redis_client):
    session_id, _slot = ready
    mirror = OptOutMirror(redis_client)
    with pytest.raises(RuntimeError):
        with db.begin() as s:
            record_incoming_text(s, session_id, "919876500001", "UNSUBSCRIBE", KEYWORDS, mirror=mirror)
            raise RuntimeError("the recorder failed later in its transaction")
    assert not mirror.contains(session_id, "919876500001")
    with db() as s:
        assert s.get(OptOut, (session_id, "919876500001")) is None


def test_a_send_to_an_opted_out_number_fails_at_once_and_is_never_enqueued(client, db, ready, redis_client):
    session_id, slot = ready
    with db.begin() as s:  # the account's number, as WhatsApp names the sender: Mexico without its "1"
        record_incoming_text(s, session_id, "525534372942", "stop", KEYWORDS)
    queued = redis_client.llen(slot_queue(slot))
    r = client.post(f"/webjs/sessions/{session_id}/send-message?wait=30",
                    json={"to": "+52 1 55 3437 2942", "message": "your reminder"})
    assert r.status_code == 200 and r.json["status"] == "failed" and r.json["success"] is False
    assert r.json["error"] == "recipient opted out"
    assert redis_client.llen(slot_queue(slot)) == queued, "nothing reaches the slot"
    bulk = client.post(f"/webjs/sessions/{session_id}/send-bulk-messages", json={"messages": [
        {"to": "5215534372942", "message": "a"}, {"to": "919876543210", "message": "b"}]})
    assert [x["error"] for x in bulk.json["results"]] == ["recipient opted out", None]
    assert redis_client.llen(slot_queue(slot)) == queued + 1
    with db() as s:
        failed = s.get(Message, r.json["message_id"])
    assert failed.status == "failed" and failed.error == "recipient opted out" and failed.dispatched_at is None
    job = client.get(f"/webjs/jobs/{r.json['job_id']}").json
    assert job["status"] == "failed" and job["results"][0]["error"] == "recipient opted out"


def test_the_api_lists_adds_and_removes_opt_outs(client, db, ready, redis_client):
    session_id, slot = ready
    mirror = OptOutMirror(redis_client)
    r = client.post(f"/webjs/sessions/{session_id}/opt-outs/+91%2098765%2043210")
    assert r.status_code == 200, r.json
    assert r.json["number"] == "919876543210" and r.json["source"] == "api" and r.json["created"] is True
    assert mirror.contains(session_id, "919876543210")
    again = client.post(f"/webjs/sessions/{session_id}/opt-outs/919876543210")
    assert again.status_code == 200 and again.json["created"] is False
    listed = client.get(f"/webjs/sessions/{session_id}/opt-outs").json
    assert listed["count"] == 1 and listed["opt_outs"][0]["number"] == "919876543210"
    r = client.post(f"/webjs/sessions/{session_id}/send-message", json={"to": "919876543210", "message": "x"})
    assert r.status_code == 202 and r.json["status"] == "failed"

    gone = client.delete(f"/webjs/sessions/{session_id}/opt-outs/919876543210")
    assert gone.status_code == 200 and gone.json["removed"] is True
    assert client.delete(f"/webjs/sessions/{session_id}/opt-outs/919876543210").json["removed"] is False
    assert not mirror.contains(session_id, "919876543210")
    queued = redis_client.llen(slot_queue(slot))
    r = client.post(f"/webjs/sessions/{session_id}/send-message", json={"to": "919876543210", "message": "y"})
    assert r.status_code == 202 and r.json["status"] == "queued"
    assert redis_client.llen(slot_queue(slot)) == queued + 1

    bad = client.post(f"/webjs/sessions/{session_id}/opt-outs/12345")
    assert bad.status_code == 422 and bad.json["errors"] == ["number: Invalid phone number format"]
    assert client.get("/webjs/sessions/nobody-here/opt-outs").status_code == 404


def test_two_opt_outs_of_one_number_at_once_make_one_row_and_no_error(db, ready):
    """The second waits for the first's row, then finds it there: no IntegrityError in the
    recorder's (or the API's) transaction."""
    import threading

    from sqlalchemy import text

    from models.optouts import add_opt_out
    from tests.helpers import wait_until

    session_id, _slot = ready
    second: dict = {}

    def opt_out_again():
        with db.begin() as s:
            second["row"] = add_opt_out(s, session_id, "919876500077", source="keyword", text="STOP")

    with db.begin() as s:
        assert add_opt_out(s, session_id, "919876500077", source="api") is not None
        thread = threading.Thread(target=opt_out_again)
        thread.start()

        def second_waits() -> bool:  # on the first's uncommitted row (a new snapshot each time)
            with db() as watch:
                return bool(watch.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO opt_outs%'")).scalar())

        wait_until(second_waits, 10, what="the second insert to wait")
    thread.join(10)
    assert second == {"row": None}
    with db() as s:
        rows = s.execute(select(OptOut).where(OptOut.session_id == session_id)).scalars().all()
    assert [(r.number, r.source) for r in rows] == [("919876500077", "api")]
