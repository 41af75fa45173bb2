"""The test fixtures do what they say: rows of a rolled-back test are seen by the code
under test and by nobody else, and the factories make valid rows."""
from __future__ import annotations

from sqlalchemy import select

from models import Message, WhatsAppSession
from tests.factories import make_job, make_session


def test_rows_of_a_rolled_back_test_are_not_seen_outside_it(rolled_back_db, db):
    with rolled_back_db.begin() as s:  # committed, as code under test would
        session_id = make_session(s).session_id
    by_id = select(WhatsAppSession).where(WhatsAppSession.session_id == session_id)
    with rolled_back_db() as s:
        assert s.execute(by_id).scalar_one_or_none() is not None, "the test sees its own commits"
    with db() as s:
        assert s.execute(by_id).scalar_one_or_none() is None, "another connection does not"


def test_a_job_is_made_with_its_messages(rolled_back_db):
    with rolled_back_db.begin() as s:
        session = make_session(s, status="DISCONNECTED")
        job, messages = make_job(s, session.session_id, messages=["919876543210", {"to": "919876500001", "text": "x"}])
    with rolled_back_db() as s:
        rows = s.execute(select(Message).where(Message.job_id == job.id).order_by(Message.position)).scalars().all()
    assert job.kind == "bulk" and job.total == 2
    assert [(m.to, m.position, m.status) for m in rows] == [("919876543210", 0, "queued"), ("919876500001", 1, "queued")]
    assert rows[1].text == "x" and [m.id for m in messages] == [m.id for m in rows]
