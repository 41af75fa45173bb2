"""The spec tells the truth: schemathesis generates requests for every operation of the
OpenAPI document (valid ones and ones the document says are invalid, with and without the
API key, with methods it does not list), sends them to the WSGI app, and fails on any 5xx
and on any answer the document does not describe (status, content type, headers, body,
Allow), or a request it calls invalid that is accepted.

Its one check left out, "a valid request is accepted", cannot hold: what makes a phone
number valid, or max_gap_seconds not below min_gap_seconds, is no JSON Schema.

The world is live: simulator, recorder, control worker and a slot worker with headless
Chromium (``tests.stack.running_stack``), and on them a READY session linked by a
simulated phone (with a chat, a sent job and a received message) and a session showing
its QR. The operations that need a slot (number checks, chat reads, sends with ?wait, the
QR, the pairing code) are answered by that browser. The operations that would take the
world apart (DELETE of a session or of a user's sessions, restart, initialize, opt-outs,
PATCH, a key's revocation, bulk sends, job cancels) go to a stand-in instead: a READY
session on a slot registered in Redis that nobody consumes, made again before each case,
and a key made for the case.

Bounded and repeatable: a fixed seed and FUZZ_EXAMPLES (25) generated examples per
operation. Half of the valid cases go to the world's sessions, job, user, chat and key,
so the paths past "not found" are walked too. With -s it prints its figures
(docs/api-fuzzing.md); the last test checks that the live answers did come.
"""
from __future__ import annotations

import os
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import replace

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from messaging.slots import heartbeat, unregister
from models import SessionStatus, WhatsAppSession
from services.keys import create_key
from settings import slot_queue
from tests.helpers import keyed_client, wait_until
from tests.stack import link_session, running_stack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20240115"))
FIGURES: Counter = Counter()
OPERATIONS: set = set()
ANSWERS: dict = defaultdict(Counter)  # operation -> status -> count
SECONDS: Counter = Counter()  # operation -> seconds spent in its cases
OUTCOMES: Counter = Counter()  # (operation, a send's status or whether a number check found one) -> count

OWN = "919811111166"  # the simulated phone that links the READY session
PEER = "919876543210"  # a number on the simulated WhatsApp, with a chat with the READY session

# Where each operation's valid cases are sent (the others go to the stand-in):
LIVE = {  # the READY session on the browser
    "GET /webjs/sessions/{session_id}/status", "GET /webjs/sessions/{session_id}/messages",
    "POST /webjs/sessions/{session_id}/send-message", "POST /webjs/sessions/{session_id}/contacts/check",
    "POST /webjs/sessions/{session_id}/chats/{number}/read", "POST /webjs/sessions/{session_id}/link-page",
    "GET /webjs/users/{user_id}/session", "GET /webjs/jobs/{job_id}",
}
LINKING = {  # the session showing its QR
    "GET /webjs/sessions/{session_id}/qr", "POST /webjs/sessions/{session_id}/pairing-code",
}


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, redis_client):
    """Simulator, recorder, one slot worker (headless Chromium) and the control worker
    (whose sweeper sends a message held behind an earlier one to the same number), as
    separate processes; number checks paced 50-100 ms apart, and QRs that go on being
    shown for the whole run."""
    env = {"CONTACT_CHECK_MIN_GAP": "0.05", "CONTACT_CHECK_MAX_GAP": "0.1", "SIM_QR_COUNT": "1000"}
    with running_stack(settings, tmp_path_factory.mktemp("logs"), redis_client, control=True, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def fuzz_app(settings, redis_client):
    """The API with waits that a live browser meets (QR and pairing code, ?wait=, slot
    answers), every request of the cases counted."""
    from api import create_app

    app = create_app(replace(settings, qr_wait_seconds=10.0, send_wait_max=5.0, slot_answer_wait_seconds=10.0))
    inner = app.wsgi_app

    def counting(environ, start_response):
        def start(status, headers, *rest):
            if FIGURES["in a case"]:  # not the world's making or the last test's look at it
                FIGURES["requests"] += 1
                FIGURES["5xx"] += int(status.split()[0]) >= 500
            return start_response(status, headers, *rest)
        return inner(environ, start)

    app.wsgi_app = counting
    return app


@pytest.fixture(scope="module")
def world(fuzz_app, stack, db, redis_client, api_key):
    """The live sessions on the stack's slot, then the stand-in on a slot of its own
    (registered after the live sessions were placed, so that none of them went there)."""
    client = keyed_client(fuzz_app, api_key)
    live = f"fuzz_live_{secrets.token_hex(3)}"
    link_session(client, stack["sim"], live, phone=OWN, pacing={"min_gap_seconds": 0, "max_gap_seconds": 0.1})
    sent = client.post(f"/webjs/sessions/{live}/send-message?wait=30", json={"to": PEER, "message": "hi"})
    assert sent.status_code == 200 and sent.json["status"] == "sent", sent.json
    r = requests.post(f"{stack['sim']}/sim/control/incoming", json={"from": PEER, "to": OWN, "text": "hello"},
                      timeout=5)
    assert r.ok, r.text
    wait_until(lambda: client.get(f"/webjs/sessions/{live}/messages").json["messages"], 30,
               what="the received message")

    linking = f"fuzz_linking_{secrets.token_hex(3)}"
    assert client.post("/webjs/sessions", json={"user_id": linking}).status_code == 201
    assert client.post(f"/webjs/sessions/{linking}/initialize").status_code == 200
    assert client.get(f"/webjs/sessions/{linking}/qr").json["status"] == "QR_READY"

    slot = f"fuzz-{secrets.token_hex(3)}"
    stand_in = f"fuzz_user_{secrets.token_hex(3)}"
    heartbeat(redis_client, slot, 1000, 3600, host="fuzz-host")
    make_ready(db, stand_in, slot, keep={live, linking})
    queued = client.post(f"/webjs/sessions/{stand_in}/send-message", json={"to": PEER, "message": "hi"})
    assert queued.status_code == 202, queued.json
    worlds = {
        "live": {"session_id": live, "user_id": live, "job_id": sent.json["job_id"], "number": PEER},
        "linking": {"session_id": linking, "user_id": linking},
        "stand_in": {"session_id": stand_in, "user_id": stand_in, "job_id": queued.json["job_id"],
                     "number": PEER, "slot": slot},
    }
    yield worlds
    unregister(redis_client, slot)
    redis_client.delete(slot_queue(slot))
    ops = ", ".join(f"{op} {dict(sorted(ANSWERS[op].items()))} {SECONDS[op]:.0f}s" for op in sorted(ANSWERS))
    print(f"\nfuzz: {len(OPERATIONS)} operations, {FIGURES['requests']} requests, {FIGURES['5xx']} 5xx, "
          f"{FIGURES['violations']} spec violations (seed {SEED}, {EXAMPLES} examples per operation; "
          f"the linking session started again {FIGURES['linking restarts']} times)\n"
          f"fuzz answers: {ops}\nfuzz outcomes: {dict(OUTCOMES)}")


def make_ready(db, user: str, slot: str, keep: set[str]) -> None:
    """The stand-in as every case finds it: READY on its slot (a case may have restarted,
    deleted or replaced it), and no sessions but it and the ``keep`` ones (one a case made
    and another initialized would wait for a browser nobody runs: a pairing code's 504)."""
    values = dict(id=f"session_fuzz{secrets.token_hex(6)}", user_id=user, session_id=user,
                  session_name=f"WhatsApp for {user}", status=SessionStatus.READY.value, status_reason=None,
                  slot=slot, epoch=1, is_authenticated=True, is_ready=True, callback_url=None, pacing=None)
    with db.begin() as s:
        s.execute(delete(WhatsAppSession).where(WhatsAppSession.session_id.not_in({user, *keep})))
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


def aim(case, label: str, worlds: dict, db) -> None:
    """Send half of the valid cases to the world: the live sessions' for the operations
    that need a browser, the stand-in's for the others; a key revocation gets a key made
    for it. A live send goes to the chat with PEER (without the URLs of files the slot
    would fetch, or a callback_url the control worker would post to, off this machine),
    and every other one waits for its
    outcome (?wait=30, of which the app waits up to its SEND_WAIT_MAX)."""
    if case.meta is not None and case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    turn[label] += 1
    if not (turn[label] % 2 and case.path_parameters):
        return
    target = dict(worlds["live"] if label in LIVE else worlds["linking"] if label in LINKING else worlds["stand_in"])
    if label == "DELETE /webjs/keys/{key_id}":
        target["key_id"] = create_key(db, f"fuzz-{secrets.token_hex(3)}", admin=False, user_ids=["nobody"])[0].id
    case.path_parameters = {k: target.get(k, v) for k, v in case.path_parameters.items()}
    if label == "POST /webjs/sessions/{session_id}/send-message" and isinstance(case.body, dict):
        # A number the generator would hardly hit, no files to fetch and no webhooks to post
        # off this machine (inline files are sent).
        case.body = {k: v for k, v in case.body.items() if k != "callback_url"} | {"to": PEER, "media_urls": []}
        if turn[label] % 4 == 1:
            case.query = {**(case.query or {}), "wait": 30}


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
    aim(case, label, world, db)
    make_ready(db, world["stand_in"]["user_id"], world["stand_in"]["slot"],
               keep={world["live"]["session_id"], world["linking"]["session_id"]})
    if label in LINKING:
        showing_its_qr(fuzz_app, db, api_key, world["linking"]["session_id"])
    started = time.monotonic()
    FIGURES["in a case"] = 1
    try:
        response = case.call_and_validate(headers={"X-API-Key": api_key}, excluded_checks=[positive_data_acceptance])
    except BaseException:
        FIGURES["violations"] += 1
        raise
    finally:
        FIGURES["in a case"] = 0
        SECONDS[label] += time.monotonic() - started
    note(case, label, response)


def showing_its_qr(app, db, api_key: str, session_id: str) -> None:
    """The linking session as the QR and pairing-code cases need it: its page up, showing a
    QR or a code. Once (in 6 runs on a loaded 2-core machine) its Chrome tab crashed
    while it showed a pairing code (BROWSER_CRASHED, DISCONNECTED): it is then started
    again, and the run's figures say so."""
    with db() as s:  # not through the app: its requests are the fuzzer's figures
        status = s.execute(select(WhatsAppSession.status).where(WhatsAppSession.session_id == session_id)).scalar()
    if status in (SessionStatus.INITIALIZING.value, SessionStatus.QR_READY.value):
        return
    client = keyed_client(app, api_key)
    FIGURES["linking restarts"] += 1
    assert client.post(f"/webjs/sessions/{session_id}/initialize").status_code == 200
    wait_until(lambda: client.get(f"/webjs/sessions/{session_id}/status").json["status"] == "QR_READY", 30,
               what="the linking session's QR again")


SEND = "POST /webjs/sessions/{session_id}/send-message"
CHECK = "POST /webjs/sessions/{session_id}/contacts/check"
CHAT_READ = "POST /webjs/sessions/{session_id}/chats/{number}/read"
QR = "GET /webjs/sessions/{session_id}/qr"
PAIRING = "POST /webjs/sessions/{session_id}/pairing-code"


def note(case, label: str, response) -> None:
    """Count the answer by status (another method's, such as OPTIONS, under its name), and
    what the browser said in the live answers: a send's outcome, whether a number check
    found a number on WhatsApp, whether the QR answer had a QR."""
    method = case.method.upper()
    own = method == label.split()[0]
    ANSWERS[label][str(response.status_code) if own else f"{method} {response.status_code}"] += 1
    if not own or response.status_code != 200 or label not in (SEND, CHECK, QR):
        return
    body = response.json()
    if label == SEND:
        OUTCOMES[label, f"{body['status']} {body.get('error') or ''}".strip()] += 1
    elif label == CHECK:
        OUTCOMES[label, "exists" if any(r["exists"] for r in body["results"]) else "none"] += 1
    else:
        OUTCOMES[label, f"{body['status']} {'with' if body['qr_code'] else 'without'} a QR"] += 1


def test_the_live_answers_came(world, fuzz_app, api_key):
    """The world stayed live for the whole run, and the operations that need a browser had
    answers from it (not only "not found" and the waits' ends) for the fuzzer to check."""
    if len(OPERATIONS) < len(list(schema.get_all_operations())):
        pytest.skip("the fuzzer did not run over every operation (-k)")
    client = keyed_client(fuzz_app, api_key)

    def status(session: str) -> str:
        return client.get(f"/webjs/sessions/{world[session]['session_id']}/status").json["status"]

    # A browser that crashed meanwhile is started again by its slot (MAX_CRASH_RESTARTS).
    wait_until(lambda: status("live") == "READY", 60, what="the READY session still READY")
    wait_until(lambda: status("linking") == "QR_READY", 60, what="the linking session still showing a QR")
    for op in (CHECK, CHAT_READ, SEND, QR, PAIRING):
        # The browser answered more often than a wait ran out (a loaded machine may let one
        # run out; the spec documents the 504).
        assert ANSWERS[op]["200"] > ANSWERS[op]["504"], (op, ANSWERS[op])
    assert OUTCOMES[SEND, "sent"] + OUTCOMES[SEND, "delivered"] + OUTCOMES[SEND, "read"], ("a ?wait send went out",
                                                                                           OUTCOMES)
    assert OUTCOMES[CHECK, "exists"], ("a number was found on WhatsApp", OUTCOMES)
    assert OUTCOMES[QR, "QR_READY with a QR"], ("the page's QR", OUTCOMES)
