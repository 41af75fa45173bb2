"""No input makes the API fail: each input that answered 500 in the issue's fuzzer run has
its answer now, the schema's limits are checked against the tables' columns, and every
error has the seed's shape and the headers it needs."""
from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import replace
from datetime import timezone
from http import HTTPStatus

import pytest
from sqlalchemy import String, func, select

from api.schemas import Line, Url
from models import ApiKey, IdempotencyKey, Job, Message, SessionTransition, WhatsAppSession
from tests.helpers import free_port

# What PostgreSQL cannot store (NUL), what UTF-8 cannot encode (a lone surrogate), and
# other control characters (escape, delete, a C1 "next line", a newline in a one-line field).
BAD = ["\x00", "\ud800", "\x1b", "\x7f", "\x85", "\n"]
FORBIDDEN = "must not contain control characters or lone surrogates"


def post(client, url, body, method="post", **kw):
    """JSON as a client would send it (lone surrogates as \\ud800 escapes)."""
    return client.open(url, method=method.upper(), data=json.dumps(body), content_type="application/json", **kw)


def jobs_of(db, session_id) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Job).where(Job.session_id == session_id))


def field_cases(sid):
    send = f"/webjs/sessions/{sid}/send-message"
    bulk = f"/webjs/sessions/{sid}/send-bulk-messages"
    msg = {"to": "919876543210", "message": "hi"}
    return [
        ("/webjs/sessions", "post", lambda x: {"user_id": f"u{x}{sid}"}, "user_id"),
        ("/webjs/sessions", "post", lambda x: {"user_id": sid + "n", "session_name": f"a{x}b"}, "session_name"),
        ("/webjs/sessions", "post", lambda x: {"user_id": sid + "c", "callback_url": f"https://example.com/{x}"},
         "callback_url"),
        (f"/webjs/sessions/{sid}", "patch", lambda x: {"callback_url": f"https://example.com/{x}"}, "callback_url"),
        (f"/webjs/sessions/{sid}/pairing-code", "post", lambda x: {"phone_number": f"91987654{x}3210"},
         "phone_number"),
        (send, "post", lambda x: {**msg, "to": f"91987654{x}3210"}, "to"),
        (send, "post", lambda x: {**msg, "message": f"hello {x}"}, "message"),
        (send, "post", lambda x: {**msg, "callback_url": f"https://example.com/{x}"}, "callback_url"),
        (send, "post", lambda x: {**msg, "media_urls": [f"https://example.com/{x}.pdf"]}, "media_urls.0"),
        (send, "post", lambda x: {**msg, "media": [{"filename": f"a{x}.txt", "mimetype": "text/plain",
                                                    "data": "aGk="}]}, "media.0.filename"),
        (bulk, "post", lambda x: {"messages": [msg, {**msg, "to": f"9198{x}76543210"}]}, "messages.1.to"),
        (bulk, "post", lambda x: {"messages": [{**msg, "message": f"a{x}"}]}, "messages.0.message"),
        (bulk, "post", lambda x: {"messages": [msg], "callback_url": f"https://example.com/{x}"}, "callback_url"),
    ]


def test_nul_surrogates_and_control_characters_are_refused_with_422_naming_the_field(client, db, ready):
    for url, method, body, field in field_cases(ready):
        for bad in BAD:
            if bad == "\n" and field.endswith("message"):
                continue  # message text keeps newlines (below)
            r = post(client, url, body(bad), method)
            assert r.status_code == 422, (url, field, repr(bad), r.json)
            assert any(e.startswith(f"{field}: {FORBIDDEN}") for e in r.json["errors"]), (field, r.json)
            assert r.json["error"] == "Unprocessable Entity" and r.json["statusCode"] == 422
    assert jobs_of(db, ready) == 0
    with db() as s:
        assert s.scalars(select(WhatsAppSession.user_id).where(WhatsAppSession.user_id.contains(ready))).all() \
            == [ready], "no session was made"


def test_message_text_keeps_tabs_and_newlines(client, ready):
    r = post(client, f"/webjs/sessions/{ready}/send-message",
             {"to": "919876543210", "message": "Dear A,\r\n\tyour seat is 12.\nThanks"})
    assert r.status_code == 202, r.json


SESSION, USER, JOB, KEY, LINK = "Session not found", "No session found for this user", "Job not found", \
    "Not found", "Link not found or expired."
PATH_ROUTES = [  # (method, path, the 404's message, the column the id is looked up in)
    ("get", "/webjs/sessions/{}/status", SESSION, WhatsAppSession.session_id),
    ("get", "/webjs/sessions/{}/qr", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/initialize", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/restart", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/pairing-code", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/link-page", SESSION, WhatsAppSession.session_id),
    ("get", "/webjs/sessions/{}/messages", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/send-message", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/send-bulk-messages", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/contacts/check", SESSION, WhatsAppSession.session_id),
    ("get", "/webjs/sessions/{}/opt-outs", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/opt-outs/919876543210", SESSION, WhatsAppSession.session_id),
    ("delete", "/webjs/sessions/{}/opt-outs/919876543210", SESSION, WhatsAppSession.session_id),
    ("post", "/webjs/sessions/{}/chats/919876543210/read", SESSION, WhatsAppSession.session_id),
    ("patch", "/webjs/sessions/{}", SESSION, WhatsAppSession.session_id),
    ("delete", "/webjs/sessions/{}", SESSION, WhatsAppSession.session_id),
    ("get", "/webjs/users/{}/session", USER, WhatsAppSession.user_id),
    ("delete", "/webjs/users/{}/sessions", USER, WhatsAppSession.user_id),
    ("get", "/webjs/jobs/{}", JOB, Job.id),
    ("post", "/webjs/jobs/{}/cancel", JOB, Job.id),
    ("delete", "/webjs/keys/{}", KEY, ApiKey.id),
    # The linking page's token is no row's id: it is checked by its signature first.
    ("get", "/link/{}/state", LINK, None),
    ("get", "/link/{}/events", LINK, None),
    ("post", "/link/{}/start", LINK, None),
    ("post", "/link/{}/pairing-code", LINK, None),
]


@pytest.mark.parametrize("method,template,message,column", PATH_ROUTES)
def test_ids_in_paths_that_no_row_can_have_are_404(client, method, template, message, column):
    body = {"to": "919876543210", "message": "hi"}
    too_long = "x" * (column.type.length + 1 if column is not None else 201)
    for bad_id in ["a%00b", "a%0Ab", "%1B%5B31m", "a%7F", too_long]:
        r = post(client, template.format(bad_id), body, method)
        assert r.status_code == 404, (template, bad_id, r.status_code)
        assert r.json == {"statusCode": 404, "message": message, "error": "Not Found"}


def test_a_link_page_token_no_link_can_have_is_the_error_page(client):
    for bad in ["a%00b", "a%0Ab", "%1B%5B31m", "a%7F", "x" * 201]:
        r = client.get(f"/link/{bad}")
        assert r.status_code == 404 and r.mimetype == "text/html", (bad, r.status_code)


@pytest.mark.parametrize("length", [188, 195, 200])
def test_a_long_user_id_gets_a_session_whose_default_name_fits(client, db, length):
    user_id = ("u" + secrets.token_hex(4)).ljust(length, "x")
    r = post(client, "/webjs/sessions", {"user_id": user_id})
    assert r.status_code == 201, r.json
    assert r.json["session_name"] == f"WhatsApp for {user_id}"[:200] and len(r.json["session_name"]) == 200
    assert client.get(f"/webjs/sessions/{user_id}/status").json["session_id"] == user_id
    r = post(client, "/webjs/sessions", {"user_id": user_id + "y" * (201 - length)})
    assert r.status_code == 422 and r.json["errors"] == ["user_id: Length must be between 1 and 200."]


def test_user_id_refuses_slashes_blanks_and_control_characters(client, user_id):
    for bad, why in [(f"{user_id}/x", 'must not contain "/"'), ("   ", "must not be only spaces"),
                     ("\u3000\u00a0", "must not be only spaces"), (f"{user_id}\nINFO forged", FORBIDDEN),
                     ("", "Length must be between 1 and 200.")]:
        r = post(client, "/webjs/sessions", {"user_id": bad})
        assert r.status_code == 422, repr(bad)
        assert r.json["errors"][0].startswith(f"user_id: {why}"), r.json
    assert post(client, "/webjs/sessions", {"user_id": f" {user_id} é"}).status_code == 201


def test_active_is_no_session_id(client):
    """GET /webjs/sessions/active lists the active sessions: no session may be called so,
    and the methods of a session are not offered there (the spec's answer)."""
    r = post(client, "/webjs/sessions", {"user_id": "active"})
    assert r.status_code == 422 and r.json["errors"][0].startswith("user_id: is reserved")
    for method in ("delete", "patch"):
        r = post(client, "/webjs/sessions/active", {}, method)
        assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}, method
    assert set(client.options("/webjs/sessions/active").headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_numbers_are_what_the_spec_says(client, user_id):
    for cap in [2.5e-42, 1.5, "3", True, 10**7]:
        r = post(client, "/webjs/sessions", {"user_id": user_id, "pacing": {"hourly_cap": cap}})
        assert r.status_code == 422 and r.json["errors"][0].startswith("pacing.hourly_cap:"), cap
    r = post(client, "/webjs/sessions", {"user_id": user_id, "pacing": {"hourly_cap": 20, "min_gap_seconds": 1.5}})
    assert r.status_code == 201


def test_idempotency_keys_over_255_characters_are_refused_never_cut(client, db, ready):
    url = f"/webjs/sessions/{ready}/send-message"
    common = ready.ljust(255, "k")
    for n, key in enumerate([common + "1", common + "2"]):  # alike in their first 255 characters
        r = post(client, url, {"to": "919876543210", "message": f"message {n}"}, headers={"Idempotency-Key": key})
        assert r.status_code == 422, r.json
        assert r.json["errors"] == ["Idempotency-Key: longer than 255 characters (keys are never cut)"]
        assert "Idempotent-Replayed" not in r.headers
    assert jobs_of(db, ready) == 0
    for key, why in [("", "must not be empty"), ("a\x1bb", "must not contain control characters")]:
        r = post(client, url, {"to": "919876543210", "message": "x"}, headers={"Idempotency-Key": key})
        assert r.status_code == 422 and r.json["errors"][0].startswith(f"Idempotency-Key: {why}"), r.json
    first = post(client, url, {"to": "919876543210", "message": "m"}, headers={"Idempotency-Key": common})
    again = post(client, url, {"to": "919876543210", "message": "m"}, headers={"Idempotency-Key": common})
    assert first.status_code == again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["job_id"] == first.json["job_id"] and jobs_of(db, ready) == 1
    with db() as s:
        assert s.scalars(select(IdempotencyKey.key).where(IdempotencyKey.key.startswith(ready))).all() == [common]


def test_the_celery_entry_refuses_the_same_inputs(app, db, wire_control, ready):
    """wa.api.send_message / send_bulk_messages load the same schemas: a bad input fails
    the task with a ValueError that says why, and nothing is written."""
    from workers import api_tasks

    wire_control(app.extensions["wa"].settings)
    with pytest.raises(ValueError, match="must not contain control characters"):
        api_tasks.send_message.run(session_id=ready, to="919876543210", message="a\x00b")
    with pytest.raises(ValueError, match="Idempotency-Key: longer than 255 characters"):
        api_tasks.send_message.run(session_id=ready, to="919876543210", message="hi", idempotency_key="k" * 256)
    with pytest.raises(ValueError, match="send 1 to 50 messages"):
        api_tasks.send_bulk_messages.run(session_id=ready, messages=[{"to": "919876543210", "message": "m"}] * 51)
    assert jobs_of(db, ready) == 0
    body = api_tasks.send_message.run(session_id=ready, to="919876543210", message="hi", idempotency_key="k" * 255)
    assert body["status"] == "queued" and jobs_of(db, ready) == 1


SEED_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # 2024-01-15T10:30:00Z


def test_the_celery_bulk_result_has_the_seeds_timestamps_also_when_replayed(app, db, wire_control, ready):
    """wa.api.send_bulk_messages answers what the HTTP API answers: ``results[].timestamp``
    in the seed's format, also when it replays an answer stored in the old format."""
    from workers import api_tasks

    wire_control(app.extensions["wa"].settings)
    items = [{"to": "919876543210", "message": "one"}, {"to": "919876543211", "message": "two"}]
    first = api_tasks.send_bulk_messages.run(session_id=ready, messages=items, idempotency_key="bulk-times")
    with db() as s:
        created = s.get(Job, first["job_id"]).created_at
    expected = created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [r["timestamp"] for r in first["results"]] == [expected, expected]
    with db.begin() as s:  # an answer stored before the one format: +00:00 and microseconds
        stored = s.execute(select(IdempotencyKey).where(IdempotencyKey.job_id == first["job_id"])).scalar_one()
        stored.response = {**stored.response, "results": [{**r, "timestamp": created.isoformat()}
                                                          for r in stored.response["results"]]}
    again = api_tasks.send_bulk_messages.run(session_id=ready, messages=items, idempotency_key="bulk-times")
    assert again["job_id"] == first["job_id"]
    assert all(re.fullmatch(SEED_TIME, r["timestamp"]) for r in again["results"]), again["results"]


def test_the_bulk_size_is_checked_before_the_items(client, ready):
    items = [{"to": "919876543210", "message": "m"}] * 200_000  # 5.8 MiB, under the body limit
    started = time.monotonic()
    r = post(client, f"/webjs/sessions/{ready}/send-bulk-messages", {"messages": items})
    elapsed = time.monotonic() - started
    assert r.status_code == 422 and r.json["errors"] == ["messages: send 1 to 50 messages per request"]
    assert elapsed < 5, f"{elapsed:.1f} s to refuse (it took over 20 s when the items were read first)"
    started = time.monotonic()
    r = post(client, f"/webjs/sessions/{ready}/send-message",
             {"to": "919876543210", "message": "m", "media_urls": ["https://example.com/a.pdf"] * 200_000})
    assert r.status_code == 422 and r.json["errors"] == ["media_urls: Longer than maximum length 10."]
    assert time.monotonic() - started < 5


def test_deep_nesting_is_400(client, ready):
    deep = "[" * 10_000 + "]" * 10_000
    for url, body in [("/webjs/sessions", deep), ("/webjs/sessions", '{"user_id": %s}' % deep),
                      (f"/webjs/sessions/{ready}/send-bulk-messages", '{"messages": %s}' % deep)]:
        r = client.post(url, data=body, content_type="application/json")
        assert r.status_code == 400, r.json
        assert r.json == {"statusCode": 400, "message": "The JSON body is nested too deeply.", "error": "Bad Request"}
    r = client.post("/webjs/sessions", data='{"user_id": %s}' % ("[" * 500 + "]" * 500),
                    content_type="application/json")
    assert r.status_code == 422 and r.json["errors"] == ["user_id: Not a valid string."]


def test_a_body_that_is_not_json_is_415(client, user_id):
    body = json.dumps({"user_id": user_id})
    for content_type in ["text/plain", "application/x-www-form-urlencoded", None]:
        r = client.post("/webjs/sessions", data=body, content_type=content_type)
        assert r.status_code == 415, content_type
        assert r.json["statusCode"] == 415 and r.json["error"] == "Unsupported Media Type"
    r = client.post("/webjs/sessions", data=body, content_type="application/json; charset=utf-8")
    assert r.status_code == 201
    r = client.post("/webjs/sessions")  # no body at all: what is missing is named
    assert r.status_code == 422 and r.json["errors"] == ["user_id: Missing data for required field."]


@pytest.fixture(scope="module")
def small_app(settings):
    from api import create_app

    return create_app(replace(settings, request_max_mb=1))


def test_a_body_over_the_limit_is_413(small_app, api_key, ready):
    client = small_app.test_client()
    r = client.post(f"/webjs/sessions/{ready}/send-message", headers={"X-API-Key": api_key},
                    data=json.dumps({"to": "919876543210", "message": "x" * (1024 * 1024)}),
                    content_type="application/json")
    assert r.status_code == 413
    assert r.json == {"statusCode": 413, "error": HTTPStatus(413).phrase,
                      "message": "Request body over the limit of 1 MiB (REQUEST_MAX_MB)."}


def test_405_says_what_is_allowed_and_401_how_to_authenticate(client, anon_client):
    r = client.put("/webjs/sessions")
    assert r.status_code == 405 and r.json["statusCode"] == 405 and r.json["error"] == "Method Not Allowed"
    assert "POST" in r.headers["Allow"]
    r = anon_client.get("/webjs/sessions/active")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="webjs"'
    r = client.get("/webjs/nowhere")
    assert r.status_code == 404 and set(r.json) == {"statusCode", "message", "error"}


def test_security_headers(client, anon_client, ready):
    answers = [client.get(f"/webjs/sessions/{ready}/status"), client.get(f"/webjs/sessions/{ready}/qr"),
               post(client, f"/webjs/sessions/{ready}/pairing-code", {"phone_number": "919876543210"}),
               client.post(f"/webjs/sessions/{ready}/initialize"), anon_client.get("/webjs/sessions/active"),
               client.get("/webjs/nowhere")]
    for r in answers:
        assert r.headers["X-Content-Type-Options"] == "nosniff", r.request.path
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert r.headers["Cache-Control"] == "no-store", r.request.path
    page = anon_client.get("/api/")
    assert page.headers["X-Frame-Options"] == "DENY" and "no-store" not in page.headers.get("Cache-Control", "")


def test_a_database_that_does_not_answer_is_503(app, client, monkeypatch, ready):
    from models import make_engine, make_sessionmaker

    assert client.get(f"/webjs/sessions/{ready}/status").status_code == 200  # the key is now known
    dead = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", connect_args={"connect_timeout": 1})
    monkeypatch.setattr(app.extensions["wa"], "db", make_sessionmaker(dead))
    r = client.get(f"/webjs/sessions/{ready}/status")
    assert r.status_code == 503
    assert r.json == {"statusCode": 503, "error": "Service Unavailable",
                      "message": "Service temporarily unavailable. Please try again later."}


# --- the schema against the tables -----------------------------------------------------

# Where each request field is written. A field that is not here must be in NOT_A_COLUMN.
STORED_IN = {
    ("CreateSessionSchema", "user_id"): [WhatsAppSession.user_id, WhatsAppSession.session_id, Job.session_id,
                                         Message.session_id, SessionTransition.session_id],
    ("CreateSessionSchema", "session_name"): [WhatsAppSession.session_name],
    ("CreateSessionSchema", "callback_url"): [WhatsAppSession.callback_url],
    ("UpdateSessionSchema", "callback_url"): [WhatsAppSession.callback_url],
    ("SendMessageSchema", "to"): [Message.to_input],
    ("SendMessageSchema", "message"): [Message.text],
    ("SendMessageSchema", "callback_url"): [Job.callback_url],
    ("BulkItemSchema", "to"): [Message.to_input],
    ("BulkItemSchema", "message"): [Message.text],
    ("BulkSendSchema", "callback_url"): [Job.callback_url],
    ("KeyCreateSchema", "name"): [ApiKey.name],
}
NOT_A_COLUMN = {  # kept inside a JSON column (no length of its own) or not kept at all
    ("SendMessageSchema", "media_urls"), ("BulkItemSchema", "media_urls"),
    ("InlineMediaSchema", "filename"), ("InlineMediaSchema", "mimetype"), ("InlineMediaSchema", "data"),
    ("PairingCodeRequestSchema", "phone_number"), ("ContactCheckSchema", "numbers"),
    ("KeyCreateSchema", "scope_prefixes"), ("KeyCreateSchema", "user_ids"),  # api_keys.scope (JSON)
    ("MessagesQuerySchema", "direction"), ("MessagesQuerySchema", "after"),  # a listing's query: not kept
}
UNBOUNDED = {("InlineMediaSchema", "data")}  # bounded by REQUEST_MAX_MB and the media limits


def request_schemas(app) -> set:
    found, todo = set(), []
    for view in app.view_functions.values():
        for method in ("get", "post", "put", "patch", "delete"):
            doc = getattr(getattr(getattr(view, "view_class", None), method, None), "_apidoc", {})
            todo += [p["schema"] for p in doc.get("arguments", {}).get("parameters", [])]
    while todo:
        schema = todo.pop()
        schema = schema if isinstance(schema, type) else type(schema)
        if schema in found:
            continue
        found.add(schema)
        for field in schema._declared_fields.values():
            inner = getattr(field, "inner", field)
            if hasattr(inner, "nested"):
                todo.append(inner.nested)
    return found


def max_length(field):
    from marshmallow import validate

    limits = [v.max for v in field.validators if isinstance(v, validate.Length) and v.max is not None]
    return min(limits) if limits else None


def test_every_string_limit_of_the_schema_fits_its_columns(app):
    from marshmallow import fields

    seen = set()
    for schema in request_schemas(app):
        excluded = set(getattr(schema.Meta, "exclude", ()))
        for name, field in schema._declared_fields.items():
            text = field.inner if isinstance(field, fields.List) else field
            if not isinstance(text, fields.String) or name in excluded:
                continue
            where = (schema.__name__, name)
            seen.add(where)
            assert isinstance(text, (Line, Url)), f"{where}: a plain String lets control characters in"
            limit = max_length(text)
            assert limit is not None or where in UNBOUNDED, f"{where} has no length limit"
            assert where in STORED_IN or where in NOT_A_COLUMN, f"{where}: which column does it go to?"
            for column in STORED_IN.get(where, []):
                if isinstance(column.type, String) and column.type.length is not None:
                    assert limit <= column.type.length, f"{where} allows {limit}, {column} holds {column.type.length}"
    assert seen >= set(STORED_IN), set(STORED_IN) - seen


def test_ids_in_paths_and_idempotency_keys_match_their_columns():
    from api import PATH_IDS
    from api.schemas import IDEMPOTENCY_KEY_MAX, SESSION_NAME_MAX

    assert PATH_IDS["session_id"][0] == WhatsAppSession.session_id.type.length
    assert PATH_IDS["user_id"][0] == WhatsAppSession.user_id.type.length
    assert PATH_IDS["job_id"][0] == Job.id.type.length
    assert PATH_IDS["key_id"][0] == ApiKey.id.type.length
    assert IDEMPOTENCY_KEY_MAX == IdempotencyKey.key.type.length
    assert SESSION_NAME_MAX == WhatsAppSession.session_name.type.length
