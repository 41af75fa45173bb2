"""Scoped API keys: a tenant's key sees only its own sessions, jobs and webhooks (404 for
everything else, as if it did not exist); admin keys see all and manage keys; a revoked
key is refused at once in every API worker; guessing keys is rate-limited."""
from __future__ import annotations

import secrets

import pytest
import redis
from sqlalchemy import select

from api.keys import create_key
from models import SessionStatus, WhatsAppSession
from services.keys import GENERATION_KEY, KeyChecker, announce_revocation, revocations_channel, revoke_key
from tests.helpers import keyed_client, wait_until


@pytest.fixture
def tenants(app):
    """Two tenants' clients (prefixes a_<tag>_ and b_<tag>_) and their prefixes."""
    tag = secrets.token_hex(3)
    db = app.extensions["wa"].db
    clients = {}
    for name in ("a", "b"):
        _row, key = create_key(db, f"tenant {name}", admin=False, prefixes=[f"{name}_{tag}_"])
        c = keyed_client(app, key)
        clients[name] = (c, f"{name}_{tag}_")
    return clients


def ready(db, session_id: str) -> None:
    """Make the session READY on a slot (no browser: sends are only accepted and queued)."""
    with db.begin() as s:
        row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == session_id)).scalar_one()
        row.status, row.slot, row.epoch = SessionStatus.READY.value, f"scope-{session_id}", 1


def test_a_tenant_creates_only_inside_its_scope(tenants, db):
    """Outside its scope a key gets 403, decided by the user_id alone: the same answer
    whether the other tenant has a session of that user or not, and that one untouched."""
    (a, a_prefix), (b, b_prefix) = tenants["a"], tenants["b"]
    assert a.post("/webjs/sessions", json={"user_id": a_prefix + "1"}).status_code == 201
    refused = a.post("/webjs/sessions", json={"user_id": b_prefix + "1"})
    assert refused.status_code == 403 and "scope" in refused.json["message"]
    assert b.post("/webjs/sessions", json={"user_id": b_prefix + "2"}).status_code == 201

    def row_ids():
        with db() as s:
            return s.execute(select(WhatsAppSession.id).where(WhatsAppSession.session_id == b_prefix + "2")).scalars().all()

    before = row_ids()
    existing = a.post("/webjs/sessions", json={"user_id": b_prefix + "2"})
    assert (existing.status_code, existing.json) == (403, refused.json)
    assert row_ids() == before and len(before) == 1  # not replaced


def routes_of(sid: str, job_id: str) -> list[tuple[str, str, dict | None]]:
    """Every route that names a session or a job: (method, path, JSON body or None)."""
    return [
        ("get", f"/webjs/sessions/{sid}/status", None), ("get", f"/webjs/sessions/{sid}/qr", None),
        ("post", f"/webjs/sessions/{sid}/initialize", None), ("post", f"/webjs/sessions/{sid}/restart", None),
        ("post", f"/webjs/sessions/{sid}/pairing-code", {"phone_number": "+919876543210"}),
        ("post", f"/webjs/sessions/{sid}/link-page", None),
        ("post", f"/webjs/sessions/{sid}/send-message", {"to": "919876543210", "message": "not mine"}),
        ("post", f"/webjs/sessions/{sid}/send-bulk-messages", {"messages": [{"to": "919876543210", "message": "x"}]}),
        ("post", f"/webjs/sessions/{sid}/contacts/check", {"numbers": ["919876543210"]}),
        ("get", f"/webjs/sessions/{sid}/opt-outs", None),
        ("post", f"/webjs/sessions/{sid}/opt-outs/919876543210", None),
        ("delete", f"/webjs/sessions/{sid}/opt-outs/919876543210", None),
        ("post", f"/webjs/sessions/{sid}/chats/919876543210/read", None),
        ("get", f"/webjs/sessions/{sid}/messages?direction=in&limit=5", None),
        ("patch", f"/webjs/sessions/{sid}", {"callback_url": "http://127.0.0.1:9/stolen"}),
        ("delete", f"/webjs/sessions/{sid}", None), ("get", f"/webjs/users/{sid}/session", None),
        ("get", f"/webjs/jobs/{job_id}", None), ("post", f"/webjs/jobs/{job_id}/cancel", None),
    ]


def test_each_tenant_gets_404_on_every_route_of_the_others_sessions_and_jobs(tenants, client, db):
    """Both tenants own a READY session with a job; each gets 404 on every route of the
    other's (the same answer as for a session that does not exist); nothing changes; the
    owner and an admin key still see each as it was."""
    owned = {}
    for name, (c, prefix) in tenants.items():
        sid = prefix + "mine"
        hook = f"http://127.0.0.1:9/{name}"
        assert c.post("/webjs/sessions", json={"user_id": sid, "callback_url": hook}).status_code == 201
        ready(db, sid)
        sent = c.post(f"/webjs/sessions/{sid}/send-message", json={"to": "919876543210", "message": "hi"})
        assert sent.status_code == 202, sent.json
        owned[name] = (sid, sent.json["job_id"], hook)
    for name, other in (("a", "b"), ("b", "a")):
        intruder = tenants[other][0]
        sid, job_id, _hook = owned[name]
        for method, path, body in routes_of(sid, job_id):
            r = getattr(intruder, method)(path, json=body) if body is not None else getattr(intruder, method)(path)
            assert r.status_code == 404, (other, method, path, r.status_code, r.json)
        assert intruder.delete(f"/webjs/users/{sid}/sessions").json["deleted_count"] == 0
        assert sid not in intruder.get("/webjs/sessions/active").json["active_sessions"]
    # Nothing of it changed: each owner and an admin still see their own as it was.
    active = client.get("/webjs/sessions/active").json["active_sessions"]
    for name, (c, _prefix) in tenants.items():
        sid, job_id, hook = owned[name]
        assert c.get(f"/webjs/sessions/{sid}/status").json["callback_url"] == hook
        assert c.get(f"/webjs/jobs/{job_id}").json["total_messages"] == 1
        assert c.get(f"/webjs/sessions/{sid}/opt-outs").json["count"] == 0
        assert c.post(f"/webjs/sessions/{sid}/link-page").status_code == 200  # the owner's routes answer
        assert sid in c.get("/webjs/sessions/active").json["active_sessions"]
        assert client.get(f"/webjs/sessions/{sid}/status").status_code == 200
        assert client.get(f"/webjs/jobs/{job_id}").status_code == 200
        assert sid in active


def test_idempotency_keys_are_per_api_key(tenants, db):
    """The same Idempotency-Key string from A and from B is two keys: B's send is a send of
    its own, never a replay of A's answer (nor a 409 for another body)."""
    sent = {}
    for name, (c, prefix) in tenants.items():
        sid = prefix + "idem"
        c.post("/webjs/sessions", json={"user_id": sid})
        ready(db, sid)
        body = {"to": "919876543210", "message": f"once from {name}"}
        first = c.post(f"/webjs/sessions/{sid}/send-message", json=body, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers, (name, first.json)
        again = c.post(f"/webjs/sessions/{sid}/send-message", json=body, headers={"Idempotency-Key": "k1"})
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json["job_id"] == first.json["job_id"]
        sent[name] = first.json
    assert sent["a"]["job_id"] != sent["b"]["job_id"]
    assert sent["b"]["session_id"] == tenants["b"][1] + "idem"


def test_key_management_is_for_admin_keys_only(tenants, client):
    (a, _) = tenants["a"]
    assert a.get("/webjs/keys").status_code == 404
    assert a.post("/webjs/keys", json={"name": "x", "admin": True}).status_code == 404
    made = client.post("/webjs/keys", json={"name": "tenant c", "scope_prefixes": ["c_"]})
    assert made.status_code == 201 and made.json["key"].startswith("wak_") and made.json["admin"] is False
    assert made.json["scope_prefixes"] == ["c_"]
    listed = client.get("/webjs/keys").json["keys"]
    assert any(k["id"] == made.json["id"] for k in listed) and all("key" not in k for k in listed)
    assert client.post("/webjs/keys", json={"name": "nothing"}).status_code == 422  # a scope or admin
    assert client.post("/webjs/keys", json={"name": "both", "admin": True, "user_ids": ["x"]}).status_code == 422


def test_a_revoked_key_is_refused_at_once_in_every_api_worker(app, client, settings):
    """Two API workers that both checked (and remember) the key: after a revocation through
    one, the other refuses it on its next request."""
    from api import create_app

    other_worker = create_app(settings)
    key = client.post("/webjs/keys", json={"name": "to revoke", "user_ids": ["nobody"]}).json
    for worker in (app, other_worker):
        c = worker.test_client()
        assert c.get("/webjs/sessions/active", headers={"X-API-Key": key["key"]}).status_code == 200
    assert client.delete(f"/webjs/keys/{key['id']}").json["revoked_at"]
    for worker in (app, other_worker):
        c = worker.test_client()
        assert c.get("/webjs/sessions/active", headers={"X-API-Key": key["key"]}).status_code == 401


def test_the_api_revokes_by_id_only(client):
    """DELETE /webjs/keys/{key_id} with a key's prefix is 404 and revokes nothing (it used to
    revoke the key and then answer 404); the CLI's revoke_key still takes a prefix."""
    key = client.post("/webjs/keys", json={"name": "by id", "user_ids": ["nobody"]}).json
    by_prefix = client.delete(f"/webjs/keys/{key['prefix']}")
    assert by_prefix.status_code == 404, by_prefix.json
    c = keyed_client(client.application, key["key"])
    assert c.get("/webjs/sessions/active").status_code == 200, "a 404 must not have revoked it"
    revoked = client.delete(f"/webjs/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json["id"] == key["id"] and revoked.json["revoked_at"]
    assert c.get("/webjs/sessions/active").status_code == 401


def test_guessing_keys_is_rate_limited_per_client_address(app, settings, api_key):
    """Over the limit, an address gets 429 for the rest of the minute for any key not
    checked valid since the last revocation: a right guess is not told apart."""
    guessed = create_key(app.extensions["wa"].db, "a key nobody used yet", admin=True)[1]
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"127.0.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    for _ in range(settings.auth_failures_per_minute):
        assert c.get("/webjs/sessions/active", headers={"X-API-Key": "wak_" + secrets.token_urlsafe(8)}).status_code == 401
    refused = c.get("/webjs/sessions/active", headers={"X-API-Key": guessed})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "127.0.0.250"
    assert other.get("/webjs/sessions/active", headers={"X-API-Key": api_key}).status_code == 200


def exhaust_the_limit(c, settings, forwarded_for: str) -> None:
    """Present bad keys up to the limit, each request saying it was forwarded for ``forwarded_for``."""
    for _ in range(settings.auth_failures_per_minute):
        r = c.get("/webjs/sessions/active", headers={"X-API-Key": "wak_" + secrets.token_urlsafe(8),
                                                     "X-Forwarded-For": forwarded_for})
        assert r.status_code == 401


def random_address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def test_behind_a_trusted_proxy_x_forwarded_for_is_the_client_address(app, settings):
    """TRUSTED_PROXY_HOPS=1: the address the proxy appended to X-Forwarded-For is counted,
    so one client over the limit does not shut out the others behind the same proxy."""
    from dataclasses import replace

    from api import create_app

    proxied = create_app(replace(settings, trusted_proxy_hops=1))
    unused = create_key(app.extensions["wa"].db, "a key nobody used yet", admin=True)[1]
    c = proxied.test_client()
    c.environ_base["REMOTE_ADDR"] = random_address()  # the proxy's
    guesser, other = random_address(), random_address()
    exhaust_the_limit(c, settings, f"203.0.113.9, {guesser}")  # what the client wrote itself is not trusted
    refused = c.get("/webjs/sessions/active", headers={"X-API-Key": unused, "X-Forwarded-For": guesser})
    assert refused.status_code == 429
    assert c.get("/webjs/sessions/active", headers={"X-API-Key": unused, "X-Forwarded-For": other}).status_code == 200


def test_without_trusted_proxies_x_forwarded_for_is_ignored(app, settings):
    """TRUSTED_PROXY_HOPS=0 (the default): a client cannot escape the limit by writing a
    new X-Forwarded-For on each request; its connection's address is counted."""
    assert settings.trusted_proxy_hops == 0
    unused = create_key(app.extensions["wa"].db, "a key nobody used yet", admin=True)[1]
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = random_address()
    exhaust_the_limit(c, settings, random_address())
    refused = c.get("/webjs/sessions/active", headers={"X-API-Key": unused, "X-Forwarded-For": random_address()})
    assert refused.status_code == 429


def test_the_celery_entry_points_carry_the_callers_scope(app, tenants, db, monkeypatch, wire_control):
    from workers import api_tasks

    wiring = wire_control(app.extensions["wa"].settings)
    (a, a_prefix), (b, _) = tenants["a"], tenants["b"]
    sid = a_prefix + "celery"
    a.post("/webjs/sessions", json={"user_id": sid})
    ready(db, sid)
    key_b = b.environ_base["HTTP_X_API_KEY"]
    key_a = a.environ_base["HTTP_X_API_KEY"]
    with pytest.raises(ValueError, match="404"):
        api_tasks.send_message(sid, "919876543210", "from b", api_key=key_b)
    with pytest.raises(ValueError, match="404"):
        api_tasks.send_bulk_messages(sid, [{"to": "919876543210", "message": "from b"}], api_key=key_b)
    with pytest.raises(ValueError, match="401"):
        api_tasks.send_message(sid, "919876543210", "bad key", api_key="wak_nope")
    assert api_tasks.send_message(sid, "919876543210", "from a", api_key=key_a)["job_id"]
    assert api_tasks.send_message(sid, "919876543210", "trusted, no key")["job_id"]  # API_TASKS_REQUIRE_KEY off
    from dataclasses import replace

    monkeypatch.setattr(wiring, "settings", replace(wiring.settings, api_tasks_require_key=True))
    with pytest.raises(ValueError, match="401"):
        api_tasks.send_message(sid, "919876543210", "no key")


class CountingRedis(redis.Redis):
    """A Redis client that counts its reads of the revocation generation."""

    generation_reads = 0

    def get(self, name):
        if name == GENERATION_KEY:
            type(self).generation_reads += 1
        return super().get(name)


def test_a_process_follows_revocations_without_asking_redis_on_each_request(db, redis_url):
    """Once its pub/sub subscription is up, a worker checks a remembered key without a
    Redis round trip; a revocation returns only after the follower applied it, and the
    key is refused on the very next check."""
    row, key = create_key(db, "followed", admin=False, user_ids=["nobody"])
    checker = KeyChecker(db, CountingRedis.from_url(redis_url))
    assert checker.check(key) is not None
    wait_until(lambda: checker._follower.generation() is not None, 10, what="the subscription")
    assert checker.check(key) is not None
    CountingRedis.generation_reads = 0
    for _ in range(50):
        assert checker.check(key) is not None
    assert CountingRedis.generation_reads == 0, "the generation is followed, not read per request"

    assert revoke_key(db, row.id, redis.Redis.from_url(redis_url), by_prefix=False) == 1
    assert checker.check(key) is None, "refused at the next check: the revocation waited for the follower"


def test_without_its_subscription_a_process_asks_redis_each_time(db, redis_url):
    """A follower that is not subscribed (being made, or lost with Redis) answers None, and
    the checker reads the generation from Redis on each request instead, so a revocation
    made meanwhile still counts at once."""
    row, key = create_key(db, "unfollowed", admin=False, user_ids=["nobody"])
    checker = KeyChecker(db, CountingRedis.from_url(redis_url))
    checker._follower.generation = lambda: None  # the subscription is down
    assert checker.check(key) is not None
    CountingRedis.generation_reads = 0
    assert checker.check(key) is not None and CountingRedis.generation_reads == 1
    client = redis.Redis.from_url(redis_url)
    client.incr(GENERATION_KEY)  # a revocation no follower heard of
    revoke_key(db, row.id, None, by_prefix=False)
    assert checker.check(key) is None


def test_a_revocation_does_not_wait_long_for_a_follower_that_never_confirms(redis_url):
    """A subscriber that never confirms (a process stuck, or not ours) holds a revocation
    back for at most its wait, and the generation moves anyway."""
    client = redis.Redis.from_url(redis_url)
    silent = client.pubsub()
    silent.subscribe(revocations_channel(client))
    try:
        before = int(client.get(GENERATION_KEY) or 0)
        assert announce_revocation(client, wait=0.3) == before + 1
        assert int(client.get(GENERATION_KEY)) == before + 1
    finally:
        silent.close()
