"""What the OpenAPI document says beyond what flask-smorest derives from the views: every
error each operation can answer, in the seed's shape (no catch-all "default"), the
Idempotency-Key header of the sends and the bulk limit in force."""
from __future__ import annotations

from apispec import BasePlugin

from api.errors import WWW_AUTHENTICATE
from api.schemas import IDEMPOTENCY_KEY_MAX, LINE_PATTERN


def _error(description: str, **extra) -> dict:
    return {"description": description, **extra,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


# What an operation answers besides its success and what every operation of its kind
# answers (see ErrorResponses): (method, path) -> {status: when}.
ANSWERS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/webjs/sessions"): {403: "This user_id is outside the scope of this API key."},
    ("get", "/webjs/keys"): {404: "Not found: the key is not an admin key."},
    ("post", "/webjs/keys"): {404: "Not found: the key is not an admin key."},
    ("get", "/webjs/sessions/{session_id}/qr"): {
        400: "QR code not available. Please initialize the client first.",
    },
    ("post", "/webjs/sessions/{session_id}/pairing-code"): {
        400: "Session is not initialized, already authenticated, or the page refused the number.",
        409: "The session changed state meanwhile.",
        504: "No pairing code was shown in time.",
    },
    ("post", "/webjs/sessions/{session_id}/send-message"): {
        400: "Client is not ready. Please ensure the session is authenticated and ready.",
        409: "Idempotency-Key was already used with a different request.",
    },
    ("post", "/webjs/sessions/{session_id}/send-bulk-messages"): {
        400: "Client is not ready. Please ensure the session is authenticated and ready.",
        409: "Idempotency-Key was already used with a different request.",
    },
    ("post", "/webjs/sessions/{session_id}/contacts/check"): {
        400: "Client is not ready. Please ensure the session is authenticated and ready.",
    },
    ("post", "/webjs/sessions/{session_id}/chats/{number}/read"): {
        400: "Client is not ready. Please ensure the session is authenticated and ready.",
        409: "The page could not mark the chat read.",
        422: "The number is not a valid phone number.",
        504: "The session's browser did not answer in time.",
    },
    ("post", "/webjs/sessions/{session_id}/opt-outs/{number}"): {
        422: "The number is not a valid phone number.",
    },
    ("delete", "/webjs/sessions/{session_id}/opt-outs/{number}"): {
        422: "The number is not a valid phone number.",
    },
}

IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "description": "The same key (per API key) with the same body answers the first response again for "
                   "IDEMPOTENCY_HOURS (24), with `Idempotent-Replayed: true`; with another body 409. "
                   f"At most {IDEMPOTENCY_KEY_MAX} characters, no control characters (longer keys are "
                   "refused, never cut).",
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": LINE_PATTERN},
}
IDEMPOTENT_OPERATIONS = {("post", "/webjs/sessions/{session_id}/send-message"),
                         ("post", "/webjs/sessions/{session_id}/send-bulk-messages")}


class ErrorResponses(BasePlugin):
    """Completes each operation with every error it can answer and the Idempotency-Key
    header of the sends; records which operations take a JSON body (the API's body checks
    use it: 415, 413, 400)."""

    def __init__(self):
        self.json_body_operations: set[tuple[str, str]] = set()

    def init_spec(self, spec):
        """Keep the spec and add the shared Unauthorized response (with WWW-Authenticate)."""
        super().init_spec(spec)
        self.spec = spec
        spec.components.response("Unauthorized", _error(
            "Missing or invalid API key.",
            headers={"WWW-Authenticate": {"description": WWW_AUTHENTICATE, "schema": {"type": "string"}}}))

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add to each operation the errors it can answer (401 and 429 unless public, 503, 404
        with a path id, 400/413/415 with a body, 422 with fields) and the Idempotency-Key header."""
        for method, op in (operations or {}).items():
            key = (method, path)
            answers: dict[int, str | dict] = {}
            if op.get("security") != []:  # the public ones say so
                answers[401] = "Unauthorized"
                answers[429] = _error("Too many bad API keys from this address; try again after Retry-After "
                                      "seconds.", headers={"Retry-After": {"schema": {"type": "integer"}}})
                answers[503] = _error("A dependency (database, Redis, the queue, the browser slots or the media "
                                      "store) does not answer. Please try again later.")
            if "{" in path:
                answers[404] = _error("Not found (also for an id that no row can have).")
            if "requestBody" in op:
                self.json_body_operations.add(key)
                # A body none of whose fields is required may be left out (PATCH without one changes nothing).
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                op["requestBody"]["required"] = bool(self.spec.components.schemas[ref.rsplit("/", 1)[1]].get("required"))
                answers[400] = _error("The body is not JSON, or is nested too deeply.")
                answers[413] = _error("The body is over REQUEST_MAX_MB.")
                answers[415] = _error("The body is not application/json.")
            if key in IDEMPOTENT_OPERATIONS:
                op.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
            if "requestBody" in op or op.get("parameters"):
                answers[422] = _error("Invalid fields; `errors` names each (\"to: Invalid phone number format\").")
            for status, when in ANSWERS.get(key, {}).items():
                answers[status] = _error(when)
            responses = {str(status): response for status, response in op.get("responses", {}).items()
                         if status != "default"}
            for status, response in answers.items():
                if str(status) not in responses or status == 422:
                    responses[str(status)] = response
            op["responses"] = dict(sorted(responses.items()))


def finish(spec, settings) -> None:
    """What is known only from the settings in force."""
    messages = spec.components.schemas["BulkSend"]["properties"]["messages"]
    messages.update(minItems=1, maxItems=settings.bulk_max_messages)
