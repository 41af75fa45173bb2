"""Flower shows no message texts, numbers or media: task messages, task events and a
worker's inspect answers carry ids only (messaging.taskrepr), checked on a real Redis and
a real worker, also for a message sent by a producer that does not redact."""
from __future__ import annotations

import base64
import json
import os
import secrets
import threading

import pytest
from celery import Celery
from celery.exceptions import Retry

from messaging import dispatch
from messaging.taskrepr import kwargs_repr, redact, result_repr
from tests.helpers import ROOT, Proc, wait_until
from workers.app import make_celery

TEXT = "Your login code is 482913"
NUMBER = "919876543210"
MEDIA = "aW5saW5lIG1lZGlhIGJ5dGVz"  # an inline file's base64
SECRETS = (TEXT, "482913", NUMBER, "9876543210", MEDIA)


def shows_nothing_secret(what) -> bool:
    text = what if isinstance(what, str) else json.dumps(what, default=str)
    return not any(s in text for s in SECRETS)


def pop_message(redis_client, queue: str) -> dict:
    raw = redis_client.lpop(queue)
    assert raw is not None, f"nothing in {queue}"
    return json.loads(raw)


def test_redact_keeps_ids_and_figures_only():
    assert redact({"session_id": "user_1", "message_id": "msg_1", "epoch": 2, "attempt": 1, "forget": True,
                   "to": NUMBER, "text": TEXT, "media": [{"data": MEDIA}], "pacing": None,
                   "earlier": {"since": 1.5, "after_id": f"true_{NUMBER}@c.us_3EB0"}}) == {
        "session_id": "user_1", "message_id": "msg_1", "epoch": 2, "attempt": 1, "forget": True,
        "to": "<hidden>", "text": "<hidden>", "media": "<1 items>", "pacing": None,
        "earlier": {"since": "<hidden>", "after_id": "<hidden>"}}
    assert redact(3) == 3 and redact(NUMBER) == "<hidden>"
    # A shown key with a long or non-scalar value is hidden all the same.
    assert redact({"session_id": "x" * 101, "job_id": {"to": NUMBER}}) == {"session_id": "<hidden>",
                                                                         "job_id": {"to": "<hidden>"}}
    # The 202 body a wa.api task returns, as the worker hands its repr over.
    body = {"success": True, "job_id": "job_1", "message_id": "msg_1", "status": "queued",
            "results": [{"to": NUMBER, "message_id": "msg_1"}]}
    assert result_repr(repr(body)) == repr({**body, "results": "<1 items>"})
    assert result_repr(repr(body)[:40] + "...") == "'<hidden>'"  # cut short by the worker: unreadable


def test_every_send_of_the_app_carries_redacted_reprs(settings, redis_client):
    """The API's and the sweeper's sends (messaging.dispatch) and a task's own retry."""
    celery = make_celery(settings)
    slot = f"repr-{secrets.token_hex(3)}"
    queue = f"slot.{slot}"
    try:
        dispatch.send_message(celery, slot=slot, message_id="msg_r1", job_id="job_r1", session_id="user_r1",
                              epoch=4, to=NUMBER, text=TEXT, media=[{"filename": "a.png", "data": MEDIA}],
                              earlier={"since": 1.0, "after_id": f"true_{NUMBER}@c.us_3EB0"})
        dispatch.request_pairing_code(celery, slot=slot, session_id="user_r1", epoch=4, phone=NUMBER)
        for message in (pop_message(redis_client, queue), pop_message(redis_client, queue)):
            headers = message["headers"]
            assert shows_nothing_secret(headers["argsrepr"]) and shows_nothing_secret(headers["kwargsrepr"])
            assert "'session_id': 'user_r1'" in headers["kwargsrepr"] and "'epoch': 4" in headers["kwargsrepr"]
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            assert NUMBER in kwargs.values()  # the body itself still carries what the worker needs

        @celery.task(bind=True, name=f"test.retry.{slot}")
        def retried(self, **kwargs):
            pass

        retried.push_request(id="t-retry", called_directly=False, kwargs={}, delivery_info={}, retries=0)
        try:
            with pytest.raises(Retry):
                retried.retry(countdown=60, kwargs={"message_id": "msg_r1", "to": NUMBER, "text": TEXT},
                              queue=queue)
        finally:
            retried.pop_request()
        headers = pop_message(redis_client, queue)["headers"]
        assert headers["kwargsrepr"] == kwargs_repr({"message_id": "msg_r1", "to": NUMBER, "text": TEXT})
        assert shows_nothing_secret(headers["kwargsrepr"])
    finally:
        redis_client.delete(queue)


@pytest.fixture
def worker(settings, tmp_path):
    """A worker of the app on a queue of its own, sending task events (what Flower reads)."""
    queue = f"repr-{secrets.token_hex(3)}"
    hostname = f"{queue}@test"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url,
           "REDIS_URL": settings.redis_url, "PROFILE_DIR": settings.profile_dir}
    proc = Proc("worker", ["-m", "celery", "-A", "workers.app", "worker", "--pool", "solo", "--queues", queue,
                           "--hostname", hostname, "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                env, tmp_path)
    yield proc, queue, hostname
    proc.stop()
    print(f"---- worker log tail ----\n{proc.tail(30)}")


def test_task_events_and_inspect_show_no_texts_numbers_or_media(settings, redis_client, worker, user_id):
    proc, queue, hostname = worker
    listener = make_celery(settings)
    events: list[dict] = []
    ready = threading.Event()

    def listen():
        with listener.connection_for_read() as conn:
            receiver = listener.events.Receiver(conn, handlers={"*": events.append})
            ready.set()
            try:
                receiver.capture(limit=None, timeout=120, wakeup=False)
            except (TimeoutError, OSError):
                pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    proc.start()
    # Online (its events reach the listener) and consuming its queue.
    wait_until(lambda: any(e.get("hostname") == hostname and e["type"] == "worker-online" for e in events)
               and listener.control.ping(destination=[hostname], timeout=1.0), 120, interval=0.5,
               what="the worker")

    # A producer that does not redact: its headers carry the text, the number and the media.
    other = Celery("other-service", broker=settings.redis_url)
    kwargs = {"session_id": user_id, "to": NUMBER, "message": TEXT,
              "media": [{"filename": "a.png", "mimetype": "image/png", "data": MEDIA}]}
    held = other.send_task("wa.api.send_message", kwargs=kwargs, queue=queue, countdown=600)
    done = other.send_task("wa.api.send_message", kwargs=kwargs, queue=queue)
    try:
        scheduled = wait_until(lambda: (listener.control.inspect(destination=[hostname], timeout=2.0)
                                        .scheduled() or {}).get(hostname), 60, interval=0.5,
                               what="the held task in inspect scheduled")
        assert [s["request"]["id"] for s in scheduled] == [held.id]
        assert shows_nothing_secret(scheduled) and user_id in json.dumps(scheduled)

        # The task ran: it fails, its session does not exist.
        wait_until(lambda: any(e["type"] == "task-failed" and e.get("uuid") == done.id for e in events), 90,
                   interval=0.3, what="task-failed")
        mine = [e for e in events if e.get("uuid") in (held.id, done.id)]
        received = [e for e in mine if e["type"] == "task-received"]
        assert len(received) == 2
        assert all(user_id in e["kwargs"] and "<hidden>" in e["kwargs"] for e in received)
        assert shows_nothing_secret(mine), mine
    finally:
        redis_client.delete(queue)
