"""The HTTP API: validates requests, writes rows, enqueues work. It never touches a browser.

``create_app(settings)`` builds Flask, the OpenAPI layer, the database engine, the
Redis client and the Celery producer; gunicorn serves ``api.wsgi:app``.
"""
from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from dataclasses import dataclass

import flask_smorest
import redis
import swagger_ui_bundle
from celery import Celery
from flask import Flask, g, request, send_from_directory
from flask_smorest import abort
from sqlalchemy.exc import InterfaceError, OperationalError, TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import UnicodeConverter

import logs
from api import openapi
from api.errors import UNAVAILABLE, WWW_AUTHENTICATE, error_body, handle_http_exception
from api.schemas import (
    RESERVED_IDS, USER_ID_MAX, ErrorSchema, bind_settings, forbidden_character, idempotency_key_problem,
)
from messaging.celery_app import make_celery
from models import make_engine, make_sessionmaker
from services.keys import KeyChecker, TooManyFailures
from settings import Settings
from storage.media import MediaStore, make_media_store

PUBLIC_PREFIXES = ("/api", "/webjs/health", "/metrics", "/link/")  # /link/: its token is its credential

# Ids in paths that no row can have (a control character, longer than the column) are
# not looked up: PostgreSQL refuses NUL, and such an id is simply not found.
PATH_IDS = {  # view argument: (its column's length, the 404 message of its routes)
    "session_id": (USER_ID_MAX, "Session not found"),
    "user_id": (USER_ID_MAX, "No session found for this user"),
    "job_id": (40, "Job not found"),
    "key_id": (40, "Not found"),  # api_keys.id
}
# A body with fewer brackets than this cannot be nested deeply enough to exhaust Python's
# recursion while it is parsed; others are parsed once first, to answer 400 rather than 500.
MAX_JSON_DEPTH_UNCHECKED = 100
CACHEABLE_PREFIX = "/api"  # Swagger UI and the spec; every other answer is no-store
# An incoming X-Request-ID is kept when it looks like an id (no spaces or control
# characters, at most 128 characters); otherwise one is made.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# Path arguments whose value is an id the log lines carry.
LOGGED_PATH_IDS = {"session_id": "session_id", "job_id": "job_id"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class PathId(UnicodeConverter):
    """An id in a path; a name the API uses itself is none: /webjs/sessions/active is the
    list of active sessions, not a session (DELETE or PATCH on it is 405, as the spec says)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.regex = "(?!(?:%s)$)%s" % ("|".join(map(re.escape, sorted(RESERVED_IDS))), self.regex)


class Api(flask_smorest.Api):
    """flask-smorest, documenting the errors this API sends (the seed's shape)."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists its errors (api/openapi.py)


@functools.lru_cache(maxsize=256)  # one per route
def openapi_path(rule: str) -> str:
    """/webjs/jobs/<job_id> -> /webjs/jobs/{job_id}"""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@dataclass
class Services:
    """What the views use, built once by ``create_app`` (``app.extensions["wa"]``): the
    settings, sessions on the app's engine, a Redis client, the Celery app to enqueue on, and
    the API-key checker (on the same Redis client)."""

    settings: Settings
    db: sessionmaker
    redis: redis.Redis
    celery: Celery
    keys: KeyChecker | None
    media_store: MediaStore


def create_app(settings: Settings) -> Flask:
    """The API's wiring: Flask, the OpenAPI layer, one database engine, one Redis client,
    the Celery producer, the key checker and the media store, all from ``settings`` (read once, by the
    caller: ``api.wsgi`` reads the environment)."""
    app = Flask(__name__)
    app.config.update(
        API_TITLE="WhatsApp Web API",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/",
        OPENAPI_SWAGGER_UI_URL="/api/assets/",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }},
            "security": [{"ApiKey": []}, {"Bearer": []}],
        },
        # Inline (base64) media rides in the body: the default fits a 16 MiB photo.
        # Larger files go by media_urls.
        MAX_CONTENT_LENGTH=settings.request_max_mb * 1024 * 1024,
    )
    app.url_map.converters["default"] = PathId  # before the routes are made
    db = make_sessionmaker(make_engine(settings.database_url))
    services = Services(
        settings=settings,
        db=db,
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2),
        celery=make_celery(settings),
        keys=None,  # made below, on the same Redis client
        media_store=make_media_store(settings),
    )
    services.keys = KeyChecker(db, services.redis, settings.api_key_cache_seconds, settings.auth_failures_per_minute)
    app.extensions["wa"] = services

    spec_plugin = openapi.ErrorResponses()
    api = Api(app, spec_kwargs={"extra_plugins": [spec_plugin]})
    from api.contacts import blp as contacts_blp
    from api.health import blp as health_blp
    from api.jobs import blp as jobs_blp
    from api.keys_api import blp as keys_blp
    from api.recovery import blp as recovery_blp
    from api.sessions import blp as sessions_blp
    from api.users import blp as users_blp

    for blp in (sessions_blp, contacts_blp, users_blp, jobs_blp, recovery_blp, keys_blp, health_blp):
        api.register_blueprint(blp)
    openapi.finish(api.spec, settings)
    from api.link_page import blp as link_page_blp

    app.register_blueprint(link_page_blp)
    # The linking pages' live streams: each holds a thread, so a few at most per process.
    app.extensions["wa_link_streams"] = threading.BoundedSemaphore(settings.link_page_streams) \
        if settings.link_page_streams else None  # the end users' linking page: HTML, not part of the API document
    app.register_error_handler(HTTPException, handle_http_exception)

    @app.errorhandler(redis.RedisError)
    def redis_unavailable(exc):  # a dependency is down: tell the client to retry later
        app.logger.warning("redis unavailable: %s", exc)
        return error_body(503, UNAVAILABLE), 503

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc):  # the database does not answer (its errors carry no parameters)
        app.logger.warning("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
        return error_body(503, UNAVAILABLE), 503

    @app.get("/api/assets/<path:filename>")
    def swagger_assets(filename: str):  # Swagger UI works offline: assets come from the package
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    @app.before_request
    def bind_request_settings():
        bind_settings(settings)  # what services.requests validates with

    @app.before_request
    def bind_request_id():
        """Each line logged for the request (and each task it enqueues) carries its id."""
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        ids = {field: value for name, field in LOGGED_PATH_IDS.items()
               if isinstance(value := (request.view_args or {}).get(name), str) and len(value) <= USER_ID_MAX
               and not forbidden_character(value)}
        g.log_token = logs.bind_context(request_id=g.request_id, **ids)

    @app.teardown_request
    def unbind_request_id(_exc):
        token = g.pop("log_token", None)
        if token is not None:
            try:
                logs.unbind(token)
            except ValueError:  # bound in another context (a streamed answer): gone with it
                pass

    @app.before_request
    def require_api_key():
        if request.path.startswith(PUBLIC_PREFIXES):
            return None
        key = request.headers.get("X-API-Key")
        auth = request.headers.get("Authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        try:
            scope = services.keys.check(key, request.remote_addr)
        except TooManyFailures as exc:
            return error_body(429, "Too many failed API key attempts. Please try again later."), 429, \
                {"Retry-After": str(exc.retry_after)}
        if scope is None:
            return error_body(401, "Missing or invalid API key. Send it as X-API-Key or Authorization: Bearer."), \
                401, {"WWW-Authenticate": WWW_AUTHENTICATE}
        g.scope = scope  # what this caller may see; its Idempotency-Keys' namespace
        return None

    @app.before_request
    def check_request():
        """What no view should see: ids no row can have, a bad Idempotency-Key, a body that
        is not JSON, over the limit (chunked or not) or nested too deeply."""
        if request.url_rule is None:  # routing answers 404 / 405 itself
            return None
        for name, value in (request.view_args or {}).items():
            if name in PATH_IDS and isinstance(value, str):
                longest, not_found = PATH_IDS[name]
                if len(value) > longest or forbidden_character(value):
                    abort(404, message=not_found)
        operation = (request.method.lower(), openapi_path(request.url_rule.rule))
        key = request.headers.get("Idempotency-Key")
        if key is not None and operation in openapi.IDEMPOTENT_OPERATIONS and (why := idempotency_key_problem(key)):
            abort(422, messages={"headers": {"Idempotency-Key": [why]}})
        if operation in spec_plugin.json_body_operations and has_body():
            if not request.is_json:
                abort(415, message="Send the body as JSON (Content-Type: application/json).")
            body = read_body()
            try:  # only a body with that many brackets can be nested that deep
                if body.count(b"[") + body.count(b"{") >= MAX_JSON_DEPTH_UNCHECKED:
                    json.loads(body)
            except RecursionError:
                abort(400, message="The JSON body is nested too deeply.")
            except ValueError:
                pass  # webargs says what is wrong with it
        return None

    @app.after_request
    def response_headers(response):
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith(CACHEABLE_PREFIX):  # QR codes, pairing codes, statuses...
            response.headers["Cache-Control"] = "no-store"
        if response.status_code == 401:
            response.headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
        return response

    if settings.trusted_proxy_hops:  # the client address is the proxies' X-Forwarded-For, not theirs
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)
    return app


def has_body() -> bool:
    """Whether the request carries a body (a Content-Length above 0, or chunked)."""
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def read_body() -> bytes:
    """The body (kept for the view), or 413 over MAX_CONTENT_LENGTH, chunked or not.

    Werkzeug refuses a Content-Length over the limit, but reads a chunked body only up to
    the limit and stops there, silently: one byte more in the server's stream means the
    body is over it."""
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit \
            and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data
