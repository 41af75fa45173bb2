"""Error bodies in the seed's shape: {"statusCode", "message", "error"} (validation
errors add "errors"), the same for a 401, a 405, a 413 or a 500; gunicorn's own errors,
written before a request reaches Flask, get it from ``api.gunicorn_conf``."""
from __future__ import annotations

from http import HTTPStatus

from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException


UNAVAILABLE = "Service temporarily unavailable. Please try again later."
WWW_AUTHENTICATE = 'Bearer realm="webjs"'  # the key goes as Authorization: Bearer or X-API-Key


def _flatten(messages, prefix: str = "") -> list[str]:
    """webargs' nested {"json": {"to": ["..."]}} -> ["to: ..."]."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            name = str(key) if key not in ("json", "query", "headers", "form") else ""
            out.extend(_flatten(value, f"{prefix}.{name}".strip(".") if name else prefix))
        return out
    if isinstance(messages, (list, tuple)):
        out = []
        for item in messages:
            out.extend(_flatten(item, prefix) if isinstance(item, (dict, list)) else [f"{prefix}: {item}" if prefix else str(item)])
        return out
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def error_body(status: int, message: str, **extra) -> dict:
    """The seed's error body: ``{"statusCode", "message", "error"}`` (the status's phrase),
    plus ``extra`` fields; ValueError for a status http.HTTPStatus does not know."""
    return {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase, **extra}


def _default_message(exc: HTTPException, status: int) -> str:
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return f"Request body over the limit of {limit // (1024 * 1024)} MiB (REQUEST_MAX_MB)."
    if status >= 500:
        return "Internal server error" if status == 500 else UNAVAILABLE
    return exc.description or HTTPStatus(status).phrase


def handle_http_exception(exc: HTTPException):
    """Every HTTP error as the seed's JSON body, validation errors listed in ``errors``
    ("field: problem"), with the exception's own headers (Allow, WWW-Authenticate, Retry-After)."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    message = data.get("message")
    extra = {}
    if "messages" in data:  # validation errors from webargs
        details = _flatten(data["messages"])
        message = message or "; ".join(details)
        extra["errors"] = details
    response = jsonify(error_body(status, message or _default_message(exc, status), **extra))
    response.status_code = status
    # What the exception says of itself: Allow with 405, WWW-Authenticate with 401.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    return response
