"""Log lines cannot be forged by input, and database errors do not carry SQL parameters."""
from __future__ import annotations

import base64
import json
import logging
import secrets
import sys
from dataclasses import replace

import pytest
from sqlalchemy.exc import DataError

from models import WhatsAppSession


def test_log_lines_escape_what_they_quote():
    from logs import _RedactingFormatter

    formatter = _RedactingFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord("api.sessions", logging.INFO, __file__, 1,
                               "session=%s replaced by a new session for user %s",
                               ("a\nINFO api.sessions forged", "b\r\x00\u2028\ud800"), None)
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line
    assert line == ("INFO api.sessions session=a\\nINFO api.sessions forged replaced by a new session for user "
                    "b\\r\\x00\\u2028\\ud800")
    try:
        raise ValueError("bad\nINFO forged")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert lines[0] == "ERROR x failed" and all(line.startswith("  ") for line in lines[1:])


def test_database_errors_do_not_carry_sql_parameters(db):
    secret = f"secret-text-{secrets.token_hex(4)}"
    with pytest.raises(DataError) as caught:
        with db.begin() as s:
            s.add(WhatsAppSession(user_id="nul\x00", session_id=f"nul-{secrets.token_hex(4)}", session_name=secret))
    assert secret not in str(caught.value) and "parameters hidden" in str(caught.value)


# --- LOG_FORMAT, bound ids, request ids (issue 12 item 3) --------------------------------

class Lines(logging.Handler):
    """The lines of the root logger in one format, as the process would write them."""

    def __init__(self, log_format: str):
        from logs import ContextFilter, formatter_for

        super().__init__(logging.DEBUG)
        self.setFormatter(formatter_for(log_format))
        self.addFilter(ContextFilter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines():
    handler = Lines("json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_and_text_lines_carry_the_bound_ids():
    from logs import FIELDS, bind, formatter_for, ContextFilter

    record = logging.LogRecord("slot.tasks", logging.INFO, __file__, 1, "sent %s", ("it\n",), None)
    with bind(session_id="s1", job_id="j1", message_id="m1", slot="slot-1", request_id="r1"):
        ContextFilter().filter(record)
    obj = json.loads(formatter_for("json").format(record))
    assert {k: obj[k] for k in FIELDS} == {"session_id": "s1", "job_id": "j1", "message_id": "m1",
                                           "slot": "slot-1", "request_id": "r1"}
    assert obj["message"] == "sent it\n" and obj["level"] == "INFO" and obj["logger"] == "slot.tasks"
    text = formatter_for("text").format(record)
    assert "\n" not in text
    assert text.endswith("sent it\\n request_id=r1 session_id=s1 job_id=j1 message_id=m1 slot=slot-1")
    with pytest.raises(ValueError):
        formatter_for("xml")


def test_json_lines_cut_api_keys_and_keep_tracebacks():
    from logs import formatter_for

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key %s", ("wak_abcdefgh" + "x" * 30,),
                                   sys.exc_info())
    line = formatter_for("json").format(record)
    assert "\n" not in line and "x" * 30 not in line
    assert "ValueError: boom" in json.loads(line)["exc_info"]


def test_periodic_tasks_celery_lines_are_debug(json_lines):
    from logs import QuietCeleryLines

    trace = logging.getLogger("celery.app.trace")
    trace.addFilter(quiet := QuietCeleryLines())
    try:
        trace.info("Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
                   {"name": "wa.control.sweep_messages", "id": "1", "runtime": 0.01, "return_value": 0})
        trace.info("Task %(name)s[%(id)s] retry: %(exc)s", {"name": "wa.slot.send_message", "id": "2", "exc": "x"})
        trace.info("Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
                   {"name": "wa.slot.send_message", "id": "3", "runtime": 0.01, "return_value": None})
        trace.error("Task %(name)s[%(id)s] raised", {"name": "wa.control.sweep_messages", "id": "4"})
    finally:
        trace.removeFilter(quiet)
    levels = [(json.loads(line)["level"], json.loads(line)["message"].split("[")[1][:1]) for line in json_lines.lines]
    assert levels == [("DEBUG", "1"), ("DEBUG", "2"), ("INFO", "3"), ("ERROR", "4")]


def test_a_request_id_is_kept_or_made_and_echoed(anon_client):
    kept = anon_client.get("/webjs/health", headers={"X-Request-ID": "req-1234.abc"})
    assert kept.headers["X-Request-ID"] == "req-1234.abc"
    made = anon_client.get("/webjs/health")
    forged = anon_client.get("/webjs/health", headers={"X-Request-ID": "a b\tc"})
    assert len(made.headers["X-Request-ID"]) == 32 and made.headers["X-Request-ID"] != forged.headers["X-Request-ID"]
    assert forged.headers["X-Request-ID"] != "a b\tc"
    assert anon_client.get("/webjs/sessions").headers["X-Request-ID"]  # a 401 too


class GoneRuntime:
    """A slot runtime without the session: the send is left to the sweeper."""

    def __init__(self, settings, client):
        from messaging.pacing import PacingPolicy
        from workers.send_rules import Availability

        self.settings, self.redis, self.bus = settings, client, None
        self.default_pacing = PacingPolicy(1, 2, 10, 100)
        self.availability = lambda *_: (Availability.GONE, None)


def test_a_sends_lines_carry_its_ids_and_the_request_id_it_came_in_with(client, settings, redis_client,
                                                                         ready_on_slot, json_lines, monkeypatch):
    """The API keeps the caller's X-Request-ID, the task message carries it, and the slot
    worker's lines about the send carry it with the send's ids, in JSON."""
    from celery.app.task import Context

    from messaging.celery_app import REQUEST_ID_HEADER, request_id_of
    from workers import slot_tasks

    session_id, slot = ready_on_slot
    request_id = f"req-{secrets.token_hex(6)}"
    r = client.post(f"/webjs/sessions/{session_id}/send-message", headers={"X-Request-ID": request_id},
                    json={"to": "919876543210", "message": "a secret text"})
    assert r.status_code in (200, 201, 202), r.json
    assert r.headers["X-Request-ID"] == request_id
    raw = redis_client.lpop(f"slot.{slot}")
    assert raw, "the send was enqueued on its slot's queue"
    message = json.loads(raw)
    headers = message["headers"]
    assert headers[REQUEST_ID_HEADER] == request_id
    assert request_id_of(Context(headers)) == request_id  # as a worker's request holds it
    kwargs = json.loads(base64.b64decode(message["body"]))[1]

    monkeypatch.setattr(slot_tasks, "runtime", lambda: GoneRuntime(settings, redis_client))
    monkeypatch.setattr(slot_tasks.celery, "wa_settings", replace(settings, slot_name=slot), raising=False)
    json_lines.lines.clear()
    slot_tasks.send_message.apply(kwargs=kwargs, headers={REQUEST_ID_HEADER: headers[REQUEST_ID_HEADER]})

    lines = [json.loads(line) for line in json_lines.lines if line.startswith("{")]
    about = [line for line in lines if line["logger"] == "slot.tasks"]
    assert about, json_lines.lines
    for line in about:
        assert line["request_id"] == request_id
        assert line["session_id"] == session_id and line["slot"] == slot
        assert line["message_id"] == kwargs["message_id"] and line["job_id"] == kwargs["job_id"]
    text = "\n".join(json_lines.lines)
    assert "a secret text" not in text and "919876543210" not in text
    from logs import bound
    assert bound() == {}  # nothing stays bound after the task


def test_task_results_and_link_tokens_stay_out_of_the_lines():
    """Celery's "succeeded" line shows of a task's result only numbers and ids (the wa.api.*
    tasks return the send's body, numbers included), and a linking page's token is cut."""
    import logging

    from logs import QuietCeleryLines, formatter_for

    body = {"success": True, "job_id": "job_1", "results": [{"to": "+919876543210"}], "total_messages": 1}
    record = logging.LogRecord("celery.app.trace", logging.INFO, __file__, 1,
                               "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
                               {"name": "wa.api.send_bulk_messages", "id": "t1", "runtime": 0.1,
                                "return_value": body}, None)
    assert QuietCeleryLines().filter(record)
    link = logging.LogRecord("api", logging.ERROR, __file__, 1, "Exception on /link/eyJzIjoiu.abc-DEF_1 [GET]",
                             None, None)
    for log_format in ("text", "json"):
        line = formatter_for(log_format).format(record)
        assert "9876543210" not in line and "job_1" in line and "total_messages" in line
        assert "eyJzIjoiu" not in formatter_for(log_format).format(link)
