"""The linking page's link and its endpoints, and initialize's wait for the first QR,
without a browser (issue 12 items 1 and 6). The page in Chromium: test_link_page.py."""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from api.link_page import page_view
from api.link_texts import TEXTS
from api.keys import create_key
from browser.qr import qr_data_url
from messaging import slots
from messaging.events import session_channel
from models import WhatsAppSession
from services.link_tokens import LinkExpired, LinkInvalid, link_secret, make_token, read_token
from tests.helpers import keyed_client, wait_until


def link_path(client, session_id: str) -> str:
    r = client.post(f"/webjs/sessions/{session_id}/link-page")
    assert r.status_code == 200, r.json
    return urlsplit(r.json["url"]).path


def set_row(db, session_id: str, **values) -> WhatsAppSession:
    with db.begin() as s:
        row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == session_id)).scalar_one()
        for name, value in values.items():
            setattr(row, name, value)
        return row


def test_link_page_answers_a_signed_link_that_lives_15_minutes(client, user_id):
    assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
    before = datetime.now(timezone.utc)
    r = client.post(f"/webjs/sessions/{user_id}/link-page")
    assert r.status_code == 200, r.json
    url = urlsplit(r.json["url"])
    assert url.scheme == "http" and url.path.startswith("/link/") and user_id not in url.path.split("/")[2][-40:]
    expires = datetime.strptime(r.json["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=14, seconds=58) <= expires - before <= timedelta(minutes=15, seconds=2)

    page = client.get(url.path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert TEXTS["heading"] in html and 'role="status"' in html and 'aria-live="polite"' in html
    assert '<label for="phone">' in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # No script in the page itself (the CSP would refuse it): only JSON data and the page's own file.
    for tag in html.split("<script")[1:]:
        assert 'type="application/json"' in tag.split(">")[0] or 'src="/link/assets/link.js"' in tag.split(">")[0]
    assert "http" not in html.replace(r.json["url"], ""), "nothing from elsewhere (no CDN)"
    for asset in ("/link/assets/link.js", "/link/assets/link.css"):
        a = client.get(asset)
        assert a.status_code == 200 and a.headers["Cache-Control"] == "no-store"


def test_the_link_of_a_session_outside_the_scope_is_404_and_needs_a_key(app, anon_client, user_id):
    tag = secrets.token_hex(3)
    _row, key = create_key(app.extensions["wa"].db, "link tenant", admin=False, prefixes=[f"a_{tag}_"])
    tenant = keyed_client(app, key)
    assert tenant.post("/webjs/sessions", json={"user_id": f"a_{tag}_1"}).status_code == 201
    assert tenant.post(f"/webjs/sessions/a_{tag}_1/link-page").status_code == 200
    admin_made = keyed_client(app, create_key(app.extensions["wa"].db, "admin", admin=True)[1])
    assert admin_made.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
    r = tenant.post(f"/webjs/sessions/{user_id}/link-page")
    assert r.status_code == 404 and r.json["message"] == "Session not found"
    assert anon_client.post(f"/webjs/sessions/{user_id}/link-page").status_code == 401


def test_the_token_is_no_api_key_for_any_route(app, client, user_id):
    """Every /webjs operation of the API document, with the token as X-API-Key or as a
    Bearer token, is 401 (the public health answer aside), and it opens no full health view."""
    client.post("/webjs/sessions", json={"user_id": user_id})
    token = link_path(client, user_id).split("/")[2]
    spec = client.get("/api/openapi.json").json
    ids = {"session_id": user_id, "user_id": user_id, "job_id": "job_x", "key_id": "key_x",
           "number": "919876543210"}
    checked = 0
    for n, (path, operations) in enumerate(sorted(spec["paths"].items())):
        for m, (method, op) in enumerate(operations.items()):
            if method not in ("get", "post", "put", "patch", "delete") or not path.startswith("/webjs/") \
                    or path.startswith("/webjs/health"):  # public: aggregate figures only
                continue
            url = path.format(**ids)
            for k, headers in enumerate(({"X-API-Key": token}, {"Authorization": f"Bearer {token}"})):
                c = app.test_client()  # a fresh address each time: the bad-key limit is per address
                c.environ_base["REMOTE_ADDR"] = f"10.{n}.{m}.{k + 1}"
                r = c.open(url, method=method.upper(), headers=headers, json={})
                assert r.status_code == 401, (method, url, r.status_code)
                checked += 1
    assert checked >= 30
    # Nor does it open the full views of health and metrics (host names, sessions).
    health = app.test_client().get("/webjs/health", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    metrics = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert '"host"' not in health and 'host="' not in metrics and "wa_browser_memory_bytes{" not in metrics


def test_a_tampered_or_expired_token_gets_an_error_page_and_404_for_its_endpoints(app, client, settings, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    good = link_path(client, user_id)
    token = good.split("/")[2]
    tampered = "/link/" + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    svc = app.extensions["wa"]
    with svc.db() as s:
        row_id = s.execute(select(WhatsAppSession.id).where(WhatsAppSession.session_id == user_id)).scalar_one()
    secret = link_secret(settings.link_page_secret, svc.redis)
    expired = "/link/" + make_token(secret, session_id=user_id, row_id=row_id,
                                    expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    other_secret = "/link/" + make_token("not the secret", session_id=user_id, row_id=row_id,
                                         expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    for path, status, kind in ((tampered, 404, "invalid"), (other_secret, 404, "invalid"), (expired, 410, "expired"),
                               ("/link/nonsense", 404, "invalid")):
        page = client.get(path)
        assert page.status_code == status and page.mimetype == "text/html", path
        html = page.get_data(as_text=True)
        assert TEXTS[kind] in html and f'data-kind="{kind}"' in html
        assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
        for method, endpoint in (("GET", "/state"), ("GET", "/events"), ("POST", "/pairing-code"), ("POST", "/start")):
            r = client.open(path + endpoint, method=method, json={"phone_number": "919876543210"})
            assert r.status_code == 404 and r.json["message"] == "Link not found or expired.", (path, endpoint)
    assert client.get(good).status_code == 200


def test_a_link_ends_with_its_session(client, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    old = link_path(client, user_id)
    assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201  # replaced: a new row
    assert client.get(old).status_code == 404 and client.get(old + "/state").status_code == 404
    assert client.get(link_path(client, user_id) + "/state").status_code == 200


def test_state_follows_the_session(client, db, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    path = link_path(client, user_id)
    state = client.get(path + "/state").json
    assert state["view"] == "idle" and state["qr_code"] == "" and state["expires_at"].endswith("Z")
    qr = qr_data_url("2@ref,noise")
    set_row(db, user_id, status="QR_READY", slot="nowhere", epoch=1, qr_code=qr)
    assert client.get(path + "/state").json | {"expires_at": None} == {
        "view": "qr", "status": "QR_READY", "reason": None, "qr_code": qr, "pairing_code": "", "phone_number": "",
        "expires_at": None}
    set_row(db, user_id, status="READY", phone_number="919812345678", qr_code=None)
    state = client.get(path + "/state").json
    assert state["view"] == "linked" and state["phone_number"] == "+91 98123 45678"
    r = client.post(path + "/start")
    assert r.status_code == 409, "a linked session is not started again"
    set_row(db, user_id, status="DISCONNECTED", status_reason="LOGOUT")
    assert client.get(path + "/state").json["view"] == "ended"


@pytest.mark.parametrize(("status", "reason", "placed", "pairing", "qr", "view"), [
    ("INITIALIZING", None, False, None, None, "idle"),
    ("INITIALIZING", None, True, None, None, "starting"),
    ("QR_READY", None, True, None, "data:x", "qr"),
    ("QR_READY", None, True, "ABCD-EFGH", None, "pairing"),
    ("AUTHENTICATED", None, True, None, None, "scanned"),
    ("READY", None, True, None, None, "linked"),
    ("DISCONNECTED", "CONNECTION_LOST", True, None, None, "linked"),
    ("DISCONNECTED", "QR_TIMEOUT", False, None, None, "ended"),
    ("DISCONNECTED", "LOGOUT", False, None, None, "ended"),
])
def test_page_view(status, reason, placed, pairing, qr, view):
    assert page_view(status, reason, placed=placed, pairing_code=pairing, qr_code=qr) == view


def test_tokens_are_signed_and_expire():
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    token = make_token("k", session_id="u1", row_id="session_1", expires_at=at)
    grant = read_token("k", token, now=at - timedelta(seconds=1))
    assert (grant.session_id, grant.row_id, grant.expires_at) == ("u1", "session_1", at)
    with pytest.raises(LinkExpired):
        read_token("k", token, now=at)
    with pytest.raises(LinkInvalid):
        read_token("other", token, now=at - timedelta(seconds=1))
    with pytest.raises(LinkInvalid):
        read_token("k", token.replace(".", ".x", 1), now=at - timedelta(seconds=1))


# ------------------------------------------------------------------ initialize waits for the first QR

@pytest.fixture
def waiting_app(settings):
    from api import create_app

    return create_app(replace(settings, initialize_qr_wait=5.0))


@pytest.fixture
def fake_slot(redis_client):
    name = f"fake-{secrets.token_hex(3)}"
    slots.heartbeat(redis_client, name, capacity=5, ttl=30)
    yield name
    slots.unregister(redis_client, name)


def act_as_slot_and_recorder(db, redis_client, session_id: str, status: str, **fields) -> threading.Thread:
    """Once the session is placed, record ``status`` in its row and publish the recorder's copy."""

    def placed_then_recorded() -> int | None:
        """The placement's epoch once the session is placed and ``status`` is recorded."""
        with db.begin() as s:
            row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == session_id)
                            .with_for_update()).scalar_one()
            if not row.slot:
                return None
            row.status = status
            for name, value in fields.items():
                setattr(row, name, value)
            return row.epoch

    def run():
        try:
            epoch = wait_until(placed_then_recorded, 5, what="the session placed")
        except AssertionError:
            return  # never placed: the test's own assertions say so
        redis_client.publish(session_channel(session_id), json.dumps(
            {"type": "session", "session_id": session_id, "epoch": epoch, "status": status, "recorded": True,
             **fields}))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_initialize_answers_with_the_first_qr(waiting_app, api_key, db, redis_client, fake_slot, user_id):
    c = keyed_client(waiting_app, api_key)
    c.post("/webjs/sessions", json={"user_id": user_id})
    qr = qr_data_url("2@first,qr")
    act_as_slot_and_recorder(db, redis_client, user_id, "QR_READY", qr_code=qr)
    r = c.post(f"/webjs/sessions/{user_id}/initialize")
    assert r.status_code == 200 and r.json == {"session_id": user_id, "qr_code": qr, "status": "QR_READY"}
    assert c.get(f"/webjs/sessions/{user_id}/status").json["status"] == "QR_READY"


def test_initialize_answers_ready_from_a_saved_login(waiting_app, api_key, db, redis_client, fake_slot, user_id):
    c = keyed_client(waiting_app, api_key)
    c.post("/webjs/sessions", json={"user_id": user_id})
    act_as_slot_and_recorder(db, redis_client, user_id, "READY", phone_number="919812345678")
    started = time.monotonic()
    r = c.post(f"/webjs/sessions/{user_id}/initialize")
    assert r.json == {"session_id": user_id, "qr_code": "", "status": "READY"}
    assert time.monotonic() - started < 4, "answered when READY came, not at the end of the wait"


def test_initialize_answers_initializing_when_no_qr_comes_in_time(settings, api_key, fake_slot, user_id):
    from api import create_app

    c = keyed_client(create_app(replace(settings, initialize_qr_wait=0.5)), api_key)
    c.post("/webjs/sessions", json={"user_id": user_id})
    started = time.monotonic()
    r = c.post(f"/webjs/sessions/{user_id}/initialize")
    assert r.json == {"session_id": user_id, "qr_code": "", "status": "INITIALIZING"}
    assert 0.5 <= time.monotonic() - started < 3


def test_live_streams_are_capped_per_process_and_the_rest_poll(settings, api_key, user_id):
    """LINK_PAGE_STREAMS streams at once (each holds a thread); one more is refused with 503
    (the page then polls /state), and a stream closed gives its place back."""
    from api import create_app

    app = create_app(replace(settings, link_page_streams=1))
    client = keyed_client(app, api_key)
    client.post("/webjs/sessions", json={"user_id": user_id})
    events = link_path(client, user_id) + "/events"
    first = client.get(events, buffered=False)
    assert first.status_code == 200 and first.mimetype == "text/event-stream"
    refused = client.get(events)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert client.get(events.removesuffix("/events") + "/state").status_code == 200, "polling still answers"
    first.close()
    again = client.get(events, buffered=False)
    assert again.status_code == 200
    again.close()


def test_links_are_made_on_the_public_base_url_when_one_is_set(settings, api_key, user_id):
    from api import create_app

    app = create_app(replace(settings, link_page_base_url="https://wa.example.com/base"))
    client = keyed_client(app, api_key)
    client.post("/webjs/sessions", json={"user_id": user_id})
    url = client.post(f"/webjs/sessions/{user_id}/link-page").json["url"]
    assert url.startswith("https://wa.example.com/base/link/")
