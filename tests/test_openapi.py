"""The spec tells the truth: every error each operation can answer, in the shape it is
sent, the Idempotency-Key header, the auth schemes, and one timestamp format, the seed's
(2024-01-15T10:30:00Z). tests/test_api_fuzz.py checks the answers against it at large."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest
from sqlalchemy import func

from models import IdempotencyKey, WhatsAppSession

SEED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def post(client, url, body, method="post", **kw):
    return client.open(url, method=method.upper(), data=json.dumps(body), content_type="application/json", **kw)


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, op


def test_the_spec_declares_every_error_in_the_shape_sent(client, anon_client, user_id):
    spec = anon_client.get("/api/openapi.json").json
    error = spec["components"]["schemas"]["Error"]
    ops = list(operations(spec))
    assert len(ops) == 28  # 18, key management, link-page, contact checks, opt-outs, chat reads, messages received
    for method, path, op in ops:
        codes = set(op["responses"])
        assert "default" not in codes, (method, path)
        public = op.get("security") in ([], [{}, {"ApiKey": []}, {"Bearer": []}])  # no key, or optional
        assert public or {"401", "503"} <= codes, (method, path)
        assert "{" not in path or "404" in codes, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= codes, (method, path)
        for code, response in op["responses"].items():
            if code >= "400" and not (public and code == "503"):
                assert response.get("$ref") == "#/components/responses/Unauthorized" or \
                    response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    sends = [op for method, path, op in ops if path.endswith(("send-message", "send-bulk-messages"))]
    for op in sends:
        header = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")
        assert header["in"] == "header" and header["schema"]["maxLength"] == IdempotencyKey.key.type.length
    assert set(spec["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    assert spec["components"]["responses"]["Unauthorized"]["headers"]["WWW-Authenticate"]
    # The bodies sent are what the spec says.
    assert post(client, "/webjs/sessions", {"user_id": user_id}).status_code == 201
    sent = [anon_client.get("/webjs/sessions/active"), client.get("/webjs/sessions/nobody/status"),
            client.put("/webjs/sessions"), client.post("/webjs/sessions", data="x", content_type="text/plain"),
            post(client, "/webjs/sessions", {"user_id": "a/b"}), client.get(f"/webjs/sessions/{user_id}/qr"),
            client.post("/webjs/sessions", data="{", content_type="application/json")]
    for r in sent:
        jsonschema.validate(r.json, error)
    assert [r.status_code for r in sent] == [401, 404, 405, 415, 422, 400, 400]


def test_every_timestamp_in_the_spec_has_the_seeds_format(anon_client):
    from api.schemas import TIMESTAMP_PATTERN

    spec = anon_client.get("/api/openapi.json").json
    stamps = [(name, prop) for name, schema in spec["components"]["schemas"].items()
              for prop in schema.get("properties", {}).values() if prop.get("format") == "date-time"]
    assert len(stamps) >= 9
    assert all(prop.get("pattern") == TIMESTAMP_PATTERN for _, prop in stamps), stamps


def test_a_patch_without_a_body_changes_nothing(client, anon_client, ready):
    r = client.patch(f"/webjs/sessions/{ready}")
    assert r.status_code == 200 and r.json["session_id"] == ready
    spec = anon_client.get("/api/openapi.json").json
    assert spec["paths"]["/webjs/sessions/{session_id}"]["patch"]["requestBody"]["required"] is False
    assert spec["paths"]["/webjs/sessions"]["post"]["requestBody"]["required"] is True


def test_timestamps_have_the_seeds_format(client, db, ready):
    r = post(client, f"/webjs/sessions/{ready}/send-bulk-messages",
             {"messages": [{"to": "919876543210", "message": "a"}, {"to": "123", "message": "b"}]},
             headers={"Idempotency-Key": f"ts-{ready}"})
    replayed = post(client, f"/webjs/sessions/{ready}/send-bulk-messages",
                    {"messages": [{"to": "919876543210", "message": "a"}, {"to": "123", "message": "b"}]},
                    headers={"Idempotency-Key": f"ts-{ready}"})
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json == r.json
    job = client.get(f"/webjs/jobs/{r.json['job_id']}").json
    with db.begin() as s:
        s.execute(WhatsAppSession.__table__.update().where(WhatsAppSession.session_id == ready)
                  .values(last_activity=func.now()))
    status = client.get(f"/webjs/sessions/{ready}/status").json
    stamps = ([x["timestamp"] for x in r.json["results"]] + [job["created_at"]]
              + [x["timestamp"] for x in job["results"]] + [status["created_at"], status["last_activity"]])
    assert all(SEED_TIME.fullmatch(t) for t in stamps), stamps
