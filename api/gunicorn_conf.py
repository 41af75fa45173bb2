"""gunicorn's settings for the API: ``gunicorn --config python:api.gunicorn_conf api.wsgi:app``.

gunicorn answers some requests itself, before the app sees them: a request line over
``limit_request_line`` (414), a header over ``limit_request_field_size`` or too many
headers (431), a malformed request (400), an unsupported transfer coding (501). Its page
for them is HTML; here they answer in the API's JSON error shape, like every other error.
gunicorn has no hook for that page: ``gunicorn.util.write_error`` is the one function that
writes it (from every worker class's ``handle_error``), so it is replaced when gunicorn
loads this file, before the workers are forked.
"""
from __future__ import annotations

import json

from gunicorn import util

from api import SECURITY_HEADERS
from api.errors import error_body

# gunicorn's defaults, stated: a session id of 200 characters, percent-encoded, fits.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", **SECURITY_HEADERS}


def error_response(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP answer gunicorn writes for an error of its own."""
    message = (message or (reason if status < 500 else "Internal server error"))[:500]
    try:
        body = error_body(status, message)
    except ValueError:  # a status http.HTTPStatus does not know
        body = {"statusCode": status, "message": message, "error": reason}
    payload = json.dumps(body).encode("ascii")  # escaped, whatever the request held
    head = [f"HTTP/1.1 {status} {body['error']}", "Connection: close", f"Content-Length: {len(payload)}"]
    head += [f"{name}: {value}" for name, value in HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's ``util.write_error``, replaced: the errors gunicorn answers itself (a bad
    request line, headers too large) get the API's JSON error body too."""
    util.write_nonblock(sock, error_response(int(status_int), reason, mesg))


util.write_error = write_json_error
