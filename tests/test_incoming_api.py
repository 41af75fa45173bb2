"""GET /webjs/sessions/{id}/messages?direction=in: what a session received, oldest first,
a page at a time behind an opaque cursor; 404 outside the caller's scope."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models import IncomingMessage, WhatsAppSession


def received(db, session_id: str, n: int) -> None:
    base = datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=session_id, session_id=session_id))
        for i in range(n):
            s.add(IncomingMessage(session_id=session_id, wa_message_id=f"3A{i:04d}", type="chat", text=f"t{i}",
                                  sender_number="919876500001", sender_wa_id="919876500001@c.us",
                                  received_at=base + timedelta(seconds=i)))


def test_pages_follow_each_other_without_gaps_or_repeats(client, db, user_id):
    received(db, user_id, 7)
    seen, after = [], None
    while True:
        query = f"direction=in&limit=3" + (f"&after={after}" if after else "")
        r = client.get(f"/webjs/sessions/{user_id}/messages?{query}")
        assert r.status_code == 200, r.json
        seen += [m["text"] for m in r.json["messages"]]
        if not r.json["messages"]:
            assert r.json["next_cursor"] == after  # nothing new: poll again with the same cursor
            break
        after = r.json["next_cursor"]
    assert seen == [f"t{i}" for i in range(7)]
    first = client.get(f"/webjs/sessions/{user_id}/messages").json["messages"][0]
    assert first["from"] == "919876500001" and first["direction"] == "in" and first["received_at"].endswith("Z")
    assert first["in_reply_to"] is None and first["media"] is None


def test_bad_cursor_and_limits_are_422(client, db, user_id):
    received(db, user_id, 1)
    for query in ("after=nonsense", "after=c%3D%3D", "limit=0", "limit=201", "direction=out"):
        assert client.get(f"/webjs/sessions/{user_id}/messages?{query}").status_code == 422, query
    assert client.get("/webjs/sessions/nobody-here/messages").status_code == 404
