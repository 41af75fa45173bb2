"""The API as gunicorn serves it, plus the benchmark's baseline endpoint.

``POST /bench/baseline`` does one INSERT equivalent to what send-message writes (a
message row) and nothing else: no auth, no validation, no queue.
"""
from __future__ import annotations

from flask import jsonify, request

from api import create_app
from models import Job, Message
from settings import Settings

app = create_app(Settings.from_env())
_db = app.extensions["wa"].db


@app.post("/bench/baseline")
def baseline():
    body = request.get_json()
    with _db.begin() as s:
        job = Job(session_id="bench", kind="single", total=1)
        s.add(Message(job=job, session_id="bench", to=body["to"], to_input=body["to"], text=body["message"]))
    return jsonify({"job_id": job.id}), 202
