"""Recording incoming messages: one row per (session, WhatsApp message id) however often
the event comes (a replayed batch, a restarted slot that sees the message again), the
reply matched to our message it quotes, one message.received webhook per row."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from messaging.events import EventBus
from models import IncomingMessage, Job, Message, WebhookDelivery, WhatsAppSession
from models.events import IncomingMessageEvent, decode
from models.recording import apply_event
from workers.recorder import Recorder
from tests.helpers import wait_until

HOOK = "http://127.0.0.1:9/hooks/incoming"


def make_session_with_send(db, session_id: str, wa_id: str) -> tuple[str, str]:
    """A session with a webhook and one sent message whose WhatsApp id is ``wa_id``."""
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=session_id, session_id=session_id, slot="slot-x", epoch=3,
                              callback_url=HOOK, status="READY"))
        job = Job(session_id=session_id, kind="single", total=1)
        msg = Message(job=job, session_id=session_id, to="919876500001", to_input="919876500001", text="Hi",
                      status="sent", wa_message_id=wa_id)
        s.add(job)
    return msg.id, job.id


def incoming(session_id: str, key: str, **fields) -> IncomingMessageEvent:
    return IncomingMessageEvent(session_id=session_id, epoch=3, wa_message_id=key,
                                received_at="2026-11-30T07:00:00+00:00",
                                wa_serialized=f"false_123456789012345@lid_{key}", sender_wa_id="123456789012345@lid",
                                sender_number="919876500001", **fields)


def rows_and_hooks(db, session_id: str):
    with db() as s:
        rows = s.execute(select(IncomingMessage).where(IncomingMessage.session_id == session_id)
                         .order_by(IncomingMessage.seq)).scalars().all()
        hooks = s.execute(select(WebhookDelivery).where(WebhookDelivery.url == HOOK,
                                                        WebhookDelivery.event_type == "message.received")
                          ).scalars().all()
        return rows, [json.loads(h.body)["data"] for h in hooks if session_id in h.body]


def test_the_event_survives_its_wire_form(user_id):
    event = incoming(user_id, "3A01", msg_type="image", text="look", media_kind="image",
                     media_mimetype="image/jpeg", media_filename="a.jpg", media_size=1234,
                     quoted_wa_message_id="3EB0AA")
    assert decode(event.encode()) == event


def test_a_reply_is_recorded_once_with_our_message_it_quotes(db, user_id):
    our_id, job_id = make_session_with_send(db, user_id, "true_123456789012345@lid_3EB0C0FFEE")
    event = incoming(user_id, "3A0000000000000000A1", text="Yes, see you", quoted_wa_message_id="3EB0C0FFEE")
    with db.begin() as s:
        assert apply_event(s, "1-0", event).applied
    # The same message again: a replayed batch, then a restarted slot's own event.
    with db.begin() as s:
        assert not apply_event(s, "1-0", event).applied
    with db.begin() as s:
        again = IncomingMessageEvent(**{**vars(event), "at": "2026-11-30T08:00:00+00:00",
                                        "wa_serialized": "false_919876500001@c.us_3A0000000000000000A1"})
        outcome = apply_event(s, "2-0", again)
        assert not outcome.applied and "already recorded" in outcome.reason
    rows, hooks = rows_and_hooks(db, user_id)
    assert len(rows) == 1 and len(hooks) == 1
    row = rows[0]
    assert (row.in_reply_to_message_id, row.in_reply_to_job_id) == (our_id, job_id)
    assert row.sender_wa_id.endswith("@lid") and row.sender_number == "919876500001" and row.text == "Yes, see you"
    assert hooks[0]["in_reply_to"] == {"message_id": our_id, "job_id": job_id,
                                       "whatsapp_message_id": "true_123456789012345@lid_3EB0C0FFEE"}
    assert hooks[0]["message_id"] == row.id and hooks[0]["from"] == "919876500001"
    assert hooks[0]["received_at"] == "2026-11-30T07:00:00Z"  # the seed's format, not the event's +00:00


def test_media_metadata_and_no_quote(db, user_id):
    make_session_with_send(db, user_id, "true_919876500001@c.us_3EB0AB")
    with db.begin() as s:
        apply_event(s, "1-0", incoming(user_id, "3A02", msg_type="document", text="the file",
                                       media_kind="document", media_mimetype="application/pdf",
                                       media_filename="report.pdf", media_size=20480,
                                       quoted_wa_message_id="3EB0NOTOURS"))
    rows, hooks = rows_and_hooks(db, user_id)
    assert rows[0].in_reply_to_message_id is None and hooks[0]["in_reply_to"] is None
    assert hooks[0]["media"] == {"kind": "document", "mimetype": "application/pdf", "filename": "report.pdf",
                                 "size": 20480}


def test_the_recorder_applies_duplicates_in_one_batch_once(db, redis_client, user_id):
    """Two copies in the same batch (one transaction) and a third later: one row, and the
    batch's other events are applied (an insert conflict must not abort the transaction)."""
    make_session_with_send(db, user_id, "true_919876500001@c.us_3EB0AC")
    recorder = Recorder(redis_client, db, consumer=f"inproc-{user_id}", block_ms=100)
    recorder.ensure_group()
    bus = EventBus(redis_client)
    event = incoming(user_id, "3A03", text="dup")
    bus.incoming(event)
    bus.incoming(event)
    bus.incoming(incoming(user_id, "3A04", text="next"))
    bus.incoming(event)
    wait_until(lambda: recorder.run_once() or len(rows_and_hooks(db, user_id)[0]) == 2, 10, what="recorded")
    recorder.run_once()
    rows, hooks = rows_and_hooks(db, user_id)
    assert [r.text for r in rows] == ["dup", "next"] and len(hooks) == 2
    with db() as s:
        assert s.execute(select(func.count()).select_from(IncomingMessage)
                         .where(IncomingMessage.session_id == user_id)).scalar_one() == 2
