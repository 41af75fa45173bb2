"""gunicorn's own errors (written before a request reaches Flask) answer in the API's JSON
error shape, and a body over REQUEST_MAX_MB is 413 whether it is chunked or not: the API
as the Procfile serves it, with api/gunicorn_conf.py."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http import HTTPStatus

import pytest

from tests.helpers import ROOT, free_port, port_open, wait_until


@pytest.fixture(scope="module")
def gunicorn(settings, api_key, tmp_path_factory):
    """The API as the Procfile serves it, with the project's gunicorn settings."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", "wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url,
           "REDIS_URL": settings.redis_url, "REQUEST_MAX_MB": "1", "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:api.gunicorn_conf",
                             "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", "1",
                             "--threads", "4", "api.wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        wait_until(lambda: port_open(port), 30, what="gunicorn")
        yield port
    finally:
        proc.terminate()
        proc.wait(20)


def raw_request(port: int, data: bytes) -> tuple[int, dict, bytes]:
    """Sends while it reads: a server may answer (and close) before the whole body is sent."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        def send():
            try:
                sock.sendall(data)
            except OSError:
                pass  # answered and closed early

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        sender.join(10)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_gunicorns_own_errors_answer_in_json(gunicorn):
    cases = [
        (b"GET /webjs/sessions/" + b"x" * 5000 + b"/status HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET /webjs/health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431),
        (b"GET /webjs/health HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
         431),
        (b"GET /webjs/health HTTP/9.9\r\nHost: a\r\n\r\n", 400),
    ]
    for request, status in cases:
        phrase = HTTPStatus(status).phrase
        code, headers, body = raw_request(gunicorn, request)
        assert code == status, (request[:40], code, body[:200])
        assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
        answer = json.loads(body)
        assert set(answer) == {"statusCode", "message", "error"}
        assert answer["statusCode"] == status and answer["error"] == phrase and answer["message"]


def test_bodies_over_the_limit_are_413_chunked_or_not(gunicorn, api_key, ready):
    body = json.dumps({"to": "919876543210", "message": "x" * (1024 * 1024 + 10)}).encode()
    head = (f"POST /webjs/sessions/{ready}/send-message HTTP/1.1\r\nHost: a\r\nX-API-Key: {api_key}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n").encode()
    plain = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in
                      (body[i:i + 65536] for i in range(0, len(body), 65536)))
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    for request in (plain, chunked):
        code, headers, answer = raw_request(gunicorn, request)
        assert code == 413, answer[:200]
        assert json.loads(answer)["statusCode"] == 413 and headers["content-type"] == "application/json"
    small = json.dumps({"to": "919876543210", "message": "chunked and small"}).encode()
    code, _, answer = raw_request(gunicorn, head + b"Transfer-Encoding: chunked\r\n\r\n"
                                  + b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
    assert code == 202, answer
