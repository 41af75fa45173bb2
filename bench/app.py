"""The API as gunicorn serves it, plus the benchmark's baseline endpoint.

``POST /bench/baseline`` writes the same rows as send-message (its job and message
INSERTs, one transaction) and nothing else: no auth, no validation, no queue.
"""
from __future__ import annotations

from flask import jsonify, request

from api import create_app
from models.sends import Recipient, accept_messages
from settings import Settings

app = create_app(Settings.from_env())
_db = app.extensions["wa"].db


@app.post("/bench/baseline")
def baseline():
    body = request.get_json()
    with _db.begin() as s:
        accepted = accept_messages(s, "bench", "single", [Recipient(body["to"], body["to"], body["message"])], None)
    return jsonify({"job_id": accepted.job_id}), 202
