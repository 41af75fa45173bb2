"""Error bodies in the seed's shape: {"statusCode", "message", "error"}."""
from __future__ import annotations

from http import HTTPStatus

from flask import jsonify
from werkzeug.exceptions import HTTPException


def _flatten(messages, prefix: str = "") -> list[str]:
    """webargs' nested {"json": {"to": ["..."]}} -> ["to: ..."]."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            name = key if key not in ("json", "query", "headers", "form") else ""
            out.extend(_flatten(value, f"{prefix}.{name}".strip(".") if name else prefix))
        return out
    if isinstance(messages, (list, tuple)):
        out = []
        for item in messages:
            out.extend(_flatten(item, prefix) if isinstance(item, (dict, list)) else [f"{prefix}: {item}" if prefix else str(item)])
        return out
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def error_body(status: int, message: str, **extra) -> dict:
    return {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase, **extra}


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    message = data.get("message")
    extra = {}
    if "messages" in data:  # validation errors from webargs
        details = _flatten(data["messages"])
        message = message or "; ".join(details)
        extra["errors"] = details
    if not message:
        message = exc.description if status != 500 else "Internal server error"
    response = jsonify(error_body(status, message, **extra))
    response.status_code = status
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    return response
