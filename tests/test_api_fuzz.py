"""The spec tells the truth: schemathesis generates requests for every operation of the
OpenAPI document (valid ones and ones the document says are invalid, with and without the
API key, with methods it does not list), sends them to the WSGI app, and fails on any 5xx
and on any answer the document does not describe (status, content type, headers, body,
Allow), or a request it calls invalid that is accepted.

Its one check left out, "a valid request is accepted", cannot hold: what makes a phone
number valid, or max_gap_seconds not below min_gap_seconds, is no JSON Schema.

Bounded and repeatable: a fixed seed, FUZZ_EXAMPLES (25) generated examples per
operation, each case starting from the same world: one READY session on a registered
slot that nobody consumes (a send is only accepted and enqueued; no Chrome), and one of
its jobs. Half of the valid cases go to that session, its job and its user, so the paths
past "not found" are walked too. With -s it prints its figures (docs/api-fuzzing.md).
"""
from __future__ import annotations

import os
import secrets
from collections import Counter
from dataclasses import replace

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from messaging.slots import heartbeat, unregister
from models import SessionStatus, WhatsAppSession
from settings import slot_queue

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20240115"))
FIGURES: Counter = Counter()
OPERATIONS: set = set()


@pytest.fixture(scope="module")
def fuzz_app(settings, redis_client):
    """The API with short waits (QR, pairing code, ?wait=, slot answers), every request counted."""
    from api import create_app

    app = create_app(replace(settings, qr_wait_seconds=0.2, send_wait_max=0.2, slot_answer_wait_seconds=0.2))
    inner = app.wsgi_app

    def counting(environ, start_response):
        def start(status, headers, *rest):
            code = int(status.split()[0])
            FIGURES["requests"] += 1
            FIGURES["5xx"] += code >= 500
            return start_response(status, headers, *rest)
        return inner(environ, start)

    app.wsgi_app = counting
    return app


@pytest.fixture(scope="module")
def world(fuzz_app, db, redis_client, api_key):
    """A READY session on a live slot, and one of its jobs."""
    slot = f"fuzz-{secrets.token_hex(3)}"
    user = f"fuzz_user_{secrets.token_hex(3)}"
    heartbeat(redis_client, slot, 1000, 3600, host="fuzz-host")
    make_ready(db, user, slot)
    client = fuzz_app.test_client()
    sent = client.post(f"/webjs/sessions/{user}/send-message", json={"to": "919876543210", "message": "hi"},
                       headers={"X-API-Key": api_key})
    assert sent.status_code == 202, sent.json
    yield {"session_id": user, "user_id": user, "job_id": sent.json["job_id"], "slot": slot}
    unregister(redis_client, slot)
    redis_client.delete(slot_queue(slot))
    with db.begin() as s:
        s.execute(delete(WhatsAppSession).where(WhatsAppSession.user_id == user))
    print(f"\nfuzz: {len(OPERATIONS)} operations, {FIGURES['requests']} requests, {FIGURES['5xx']} 5xx, "
          f"{FIGURES['violations']} spec violations (seed {SEED}, {EXAMPLES} examples per operation)")


def make_ready(db, user: str, slot: str) -> None:
    """The same world for every case: the READY session on the slot (a case may have
    restarted, deleted or replaced it) and no other session (one a case made and another
    initialized would wait for a browser nobody runs: a pairing code's 504)."""
    values = dict(id=f"session_fuzz{secrets.token_hex(6)}", user_id=user, session_id=user,
                  session_name=f"WhatsApp for {user}", status=SessionStatus.READY.value, status_reason=None,
                  slot=slot, epoch=1, is_authenticated=True, is_ready=True)
    with db.begin() as s:
        s.execute(delete(WhatsAppSession).where(WhatsAppSession.session_id != user))
        s.execute(insert(WhatsAppSession).values(**values).on_conflict_do_update(
            index_elements=[WhatsAppSession.session_id],
            set_={k: v for k, v in values.items() if k not in ("id", "session_id")}))


def load_schema():
    """The document as the app serves it (made here without connecting to anything: the
    cases are generated when the tests are collected)."""
    from api import create_app
    from settings import Settings

    spec = create_app(Settings()).test_client().get("/api/openapi.json").json
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, deterministic=True,
                                    database="none")
    return loaded


schema = load_schema()
turn: Counter = Counter()


@schema.parametrize()
@seed(SEED)
@settings(max_examples=EXAMPLES, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
# The seed in the test's id also makes one id per operation: on pytest 9 schemathesis alone
# gives all of them the same, and pytest-xdist would then run only one.
@pytest.mark.parametrize("fuzz_seed", [SEED], ids=[f"seed-{SEED}"])
def test_every_answer_is_in_the_spec(case, fuzz_seed, fuzz_app, world, db, api_key):
    case.operation.app = case.operation.schema.app = fuzz_app  # also for the checks' own requests
    label = case.operation.label
    OPERATIONS.add(label)
    turn[label] += 1
    if case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE:
        if turn[label] % 2 and case.path_parameters:  # half of the valid ones: the READY session's paths
            case.path_parameters = {k: world.get(k, v) for k, v in case.path_parameters.items()}
    make_ready(db, world["user_id"], world["slot"])
    try:
        case.call_and_validate(headers={"X-API-Key": api_key}, excluded_checks=[positive_data_acceptance])
    except BaseException:
        FIGURES["violations"] += 1
        raise
