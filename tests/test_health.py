"""/webjs/health and /metrics on the real database and Redis, with a fake slot registered."""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, select

from api.health import quantile
from messaging.slots import heartbeat, unregister
from models import Job, Message, MessageStatus, SessionStatus, WhatsAppSession, utcnow
from settings import slot_queue
from tests.helpers import free_port, keyed_client

SEED_FIELDS = {"status", "timestamp", "active_sessions", "total_sessions", "s3_connection",
               "network_connectivity", "auth_folder_status", "memory_usage", "uptime"}


@pytest.fixture
def fake_slot(db, redis_client, user_id):
    """A live slot running two browsers, one of them for a READY session placed on it, and
    two tasks waiting in its queue."""
    name = f"health-{secrets.token_hex(4)}"
    other = f"other-{secrets.token_hex(4)}"
    heartbeat(redis_client, name, 3, 60, host="health-host", sessions={user_id: 1000, other: 2000})
    redis_client.rpush(slot_queue(name), "a", "b")
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, status=SessionStatus.READY, slot=name, epoch=1))
    yield name
    unregister(redis_client, name)
    redis_client.delete(slot_queue(name))
    with db.begin() as s:
        s.execute(delete(WhatsAppSession).where(WhatsAppSession.session_id == user_id))


@pytest.fixture
def redis_down(app, monkeypatch):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(app.extensions["wa"], "redis",
                        redis.Redis.from_url(dead, socket_connect_timeout=1, socket_timeout=1))


def test_health_has_the_seed_fields_slots_and_queues(anon_client, fake_slot):
    r = anon_client.get("/webjs/health")  # public: no API key
    assert r.status_code == 200, r.json
    body = r.json
    assert SEED_FIELDS <= set(body)
    assert body["status"] == "healthy"
    assert body["database"] is body["redis"] is body["s3_connection"] is body["auth_folder_status"] is True
    assert body["network_connectivity"] is True
    assert body["active_sessions"] >= 1 and body["total_sessions"] >= body["active_sessions"]
    assert set(body["memory_usage"]) == {"rss", "heapTotal", "heapUsed", "external", "browsers"}
    assert body["memory_usage"]["rss"] > 0 and body["memory_usage"]["browsers"] >= 3000
    assert isinstance(body["uptime"], int) and body["uptime"] >= 0
    assert body["timestamp"].endswith("Z")
    slot = next(s for s in body["slots"] if s["name"] == fake_slot)
    assert slot == {"name": fake_slot, "alive": True, "capacity": 3, "used": 1,
                    "sessions_running": 2, "browser_memory_bytes": 3000}  # no host: public
    assert body["queue_depth"][slot_queue(fake_slot)] == 2
    assert "control" in body["queue_depth"]


def test_health_is_in_the_openapi_spec(anon_client):
    spec = anon_client.get("/api/openapi.json").json
    get = spec["paths"]["/webjs/health"]["get"]
    assert {} in get["security"] and {"ApiKey": []} in get["security"]  # a key is optional
    assert {"200", "503"} <= set(get["responses"])
    assert "slots" in spec["components"]["schemas"]["Health"]["properties"]


def test_health_with_redis_down_is_degraded_and_answers(anon_client, redis_down):
    """Sends are still accepted while Redis is away (the rows are durable): degraded, 200."""
    started = time.monotonic()
    r = anon_client.get("/webjs/health")
    assert time.monotonic() - started < 5, "health answers at once while Redis is away"
    assert r.status_code == 200
    body = r.json
    assert body["status"] == "degraded"
    assert body["redis"] is False and body["network_connectivity"] is False
    assert body["database"] is True and body["total_sessions"] is not None
    assert body["queue_depth"] == {} and body["memory_usage"]["browsers"] is None


def test_health_when_the_profile_store_fails(app, anon_client, monkeypatch):
    probes = app.extensions["wa_health"]
    monkeypatch.setattr(probes.profile_store(), "check", lambda: False)
    monkeypatch.setattr(probes, "store_check_ttl", 0.0)
    monkeypatch.setattr(probes, "_store_ok", None)  # the failed check's result goes with the test
    r = anon_client.get("/webjs/health")
    assert r.status_code == 503
    assert r.json["status"] == "unhealthy"
    assert r.json["s3_connection"] is False and r.json["auth_folder_status"] is False
    assert r.json["database"] is True and r.json["redis"] is True


def _scrape(client) -> dict[str, list]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.content_type.startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(r.get_data(as_text=True))}


def _value(samples, **labels) -> float:
    return next(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics(anon_client, db, fake_slot, user_id):
    now = utcnow()
    with db.begin() as s:
        job = Job(session_id=user_id, kind="bulk")
        s.add(job)
        for i, status in enumerate(("sent", "failed", "cancelled", "queued")):
            sent = status == "sent"
            s.add(Message(job=job, session_id=user_id, position=i, to="919876543210", to_input="919876543210",
                          status=status, created_at=now - timedelta(seconds=3),
                          sent_at=now - timedelta(seconds=1) if sent else None))
    families = _scrape(anon_client)

    assert {_value(families["wa_dependency_up"], dependency=d) for d in ("database", "redis", "profile_store")} == {1}
    assert {s.labels["status"] for s in families["wa_sessions"]} >= {v.value for v in SessionStatus}
    assert _value(families["wa_sessions"], status="READY") >= 1
    assert {s.labels["status"] for s in families["wa_messages"]} >= {v.value for v in MessageStatus}
    for status in ("sent", "failed", "cancelled", "queued"):
        assert _value(families["wa_messages"], status=status) >= 1
    outcome = families["wa_messages_outcome"]
    assert {s.name for s in outcome} == {"wa_messages_outcome"}  # a gauge: deleted jobs drop out
    assert all(_value(outcome, outcome=o) >= 1 for o in ("sent", "failed", "cancelled"))
    latency = families["wa_send_latency_seconds"]
    assert {s.labels["quantile"] for s in latency} == {"0.5", "0.95"}
    assert all(s.value >= 0 for s in latency)
    assert families["wa_send_latency_seconds_count"][0].value >= 1
    assert _value(families["wa_queue_depth"], queue=slot_queue(fake_slot)) == 2
    assert any(s.labels["queue"] == "control" for s in families["wa_queue_depth"])
    assert _value(families["wa_slot_up"], slot=fake_slot) == 1
    assert _value(families["wa_slot_capacity"], slot=fake_slot) == 3
    assert _value(families["wa_slot_browser_memory_bytes"], slot=fake_slot) == 3000
    assert "wa_browser_memory_bytes" not in families  # per session: operators only
    assert {s.labels["status"] for s in families["wa_webhook_deliveries"]} >= {"pending", "delivered", "failed"}
    assert {s.labels["outcome"] for s in families["wa_sends"]} == {"sent", "failed", "cancelled"}
    assert {s.name for s in families["wa_sends"]} == {"wa_sends_total"}
    assert _value(families["wa_send_duration_seconds"], le="+Inf") >= 0
    assert {s.labels["reason"] for s in families["wa_messages_waiting"]} >= {"pacing", "offline", "other"}
    with db.begin() as s:
        s.delete(s.get(Job, job.id))


def _operator_clients(app, client, monkeypatch, token: str):
    """Clients an operator uses: an admin API key, and METRICS_TOKEN as a bearer token."""
    services = app.extensions["wa"]
    monkeypatch.setattr(services, "settings", replace(services.settings, metrics_token=token))
    with_token = app.test_client()
    with_token.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return {"api key": client, "METRICS_TOKEN": with_token}


def test_public_health_and_metrics_name_no_session_or_host(app, anon_client, client, fake_slot, user_id,
                                                           monkeypatch):
    """Public answers keep the figures but name no session (user ids, often numbers) and no
    slot host; an admin key or METRICS_TOKEN shows them; a wrong token gets the public answer."""
    token = secrets.token_urlsafe(16)
    operators = _operator_clients(app, client, monkeypatch, token)
    wrong = app.test_client()
    wrong.environ_base["HTTP_AUTHORIZATION"] = "Bearer not-the-token"
    from api.keys import create_key

    # A tenant's key is no operator's.
    tenant = keyed_client(app, create_key(app.extensions["wa"].db, "tenant", admin=False, prefixes=["t_"])[1])
    for who in (anon_client, wrong, tenant):
        health = json.dumps(who.get("/webjs/health").json)
        metrics = who.get("/metrics").get_data(as_text=True)
        for text in (health, metrics):
            assert "health-host" not in text and user_id not in text and "other-" not in text
        assert fake_slot in health and fake_slot in metrics  # the figures are there, per slot
    for name, operator in operators.items():
        slot = next(s for s in operator.get("/webjs/health").json["slots"] if s["name"] == fake_slot)
        assert slot["host"] == "health-host", name
        families = _scrape(operator)
        assert _value(families["wa_slot_up"], slot=fake_slot, host="health-host") == 1, name
        assert _value(families["wa_browser_memory_bytes"], slot=fake_slot, session=user_id) == 1000, name
        assert _value(families["wa_slot_browser_memory_bytes"], slot=fake_slot) == 3000, name


def test_metrics_with_redis_down_still_answers(anon_client, redis_down):
    families = _scrape(anon_client)
    assert _value(families["wa_dependency_up"], dependency="redis") == 0
    assert "wa_sessions" in families and "wa_messages" in families
    assert "wa_queue_depth" not in families and "wa_slot_up" not in families


def test_wait_reasons_are_grouped_by_kind():
    from api.health import wait_kind
    from workers.send_rules import BREAKER_REASON, OFFLINE_REASON, PACING_REASONS, restriction_reason

    assert {wait_kind(r) for r in PACING_REASONS.values()} == {"pacing"}
    assert wait_kind(OFFLINE_REASON) == "offline" and wait_kind(BREAKER_REASON) == "breaker"
    assert wait_kind(restriction_reason("temporary_ban")) == "restricted"
    assert wait_kind("retrying after: Browser error: x") == "retry" and wait_kind(None) == "other"


def test_quantile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0 and quantile(values, 0.95) == 95.0
    assert quantile([7.0], 0.95) == 7.0
    assert quantile([], 0.5) != quantile([], 0.5)  # NaN


def test_health_turns_unhealthy_when_s3_stops(settings, monkeypatch):
    """A real S3 endpoint (moto's server on loopback) that goes away."""
    from dataclasses import replace

    from api import create_app
    from tests.helpers import s3_server

    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_EC2_METADATA_DISABLED", "true")):
        monkeypatch.setenv(name, value)
    with s3_server() as url:
        app = create_app(replace(settings, s3_bucket="health-check", s3_endpoint_url=url, s3_create_bucket=True))
        app.extensions["wa_health"].store_check_ttl = 0  # look every time
        client = app.test_client()
        up = client.get("/webjs/health")
        assert up.status_code == 200 and up.json["s3_connection"] is True
    down = client.get("/webjs/health")
    assert down.status_code == 503 and down.json["s3_connection"] is False and down.json["status"] == "unhealthy"


def session_row(s, session_id: str) -> WhatsAppSession:
    return s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == session_id)).scalar_one()


def test_a_ready_session_that_cannot_send_is_reported_not_hidden(anon_client, client, fake_slot, db, user_id):
    """A message dispatched STUCK_TIMEOUT_SECONDS ago still waits, and the session did
    nothing meanwhile: /status says NOT_SENDING, health degraded, the metric counts it.
    A send (activity) clears it; a message waiting for a reason (scheduled) never counts."""
    long_ago = utcnow() - timedelta(seconds=client.application.extensions["wa"].settings.stuck_timeout_seconds + 60)
    job_id, message_id = f"job_{secrets.token_hex(6)}", f"msg_{secrets.token_hex(6)}"
    with db.begin() as s:
        session_row(s, user_id).last_activity = long_ago
        s.add(Job(id=job_id, session_id=user_id, kind="single", status="queued", total=1))
        s.flush()
        s.add(Message(id=message_id, job_id=job_id, session_id=user_id, to="919876500001", to_input="919876500001",
                      text="x", status=MessageStatus.QUEUED.value, dispatched_at=long_ago, created_at=long_ago))
    try:
        status = client.get(f"/webjs/sessions/{user_id}/status").json
        assert status["status"] == "READY" and status["reason"] == "NOT_SENDING"
        assert status["not_sending_since"]
        health = anon_client.get("/webjs/health")
        assert health.status_code == 200 and health.json["status"] == "degraded"
        assert health.json["not_sending_sessions"] >= 1
        metrics = {s.name: s.value for f in text_string_to_metric_families(anon_client.get("/metrics").text)
                   for s in f.samples}
        assert metrics["wa_sessions_not_sending"] >= 1
        with db.begin() as s:
            s.get(Message, message_id).status = MessageStatus.SCHEDULED.value  # waits for a reason
        assert client.get(f"/webjs/sessions/{user_id}/status").json["reason"] is None
        with db.begin() as s:
            s.get(Message, message_id).status = MessageStatus.QUEUED.value
            session_row(s, user_id).last_activity = utcnow()  # it just sent something
        assert client.get(f"/webjs/sessions/{user_id}/status").json["reason"] is None
    finally:
        with db.begin() as s:
            s.execute(delete(Job).where(Job.id == job_id))
