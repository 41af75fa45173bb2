"""The HTTP API: validates requests, writes rows, enqueues work. It never touches a browser.

``create_app(settings)`` builds Flask, the OpenAPI layer, the database engine, the
Redis client and the Celery producer; gunicorn serves ``api.wsgi:app``.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
import swagger_ui_bundle
from celery import Celery
from flask import Flask, g, request, send_from_directory
from flask_smorest import Api
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException

from api.errors import error_body, handle_http_exception
from api.keys import KeyChecker, TooManyFailures
from models import make_engine, make_sessionmaker
from settings import Settings
from workers.app import make_celery

PUBLIC_PREFIXES = ("/api", "/webjs/health", "/metrics")


@dataclass
class Services:
    settings: Settings
    db: sessionmaker
    redis: redis.Redis
    celery: Celery
    keys: KeyChecker | None


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
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
    db = make_sessionmaker(make_engine(settings.database_url))
    services = Services(
        settings=settings,
        db=db,
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2),
        celery=make_celery(settings),
        keys=None,  # made below, on the same Redis client
    )
    services.keys = KeyChecker(db, services.redis, settings.api_key_cache_seconds, settings.auth_failures_per_minute)
    app.extensions["wa"] = services

    api = Api(app)
    from api.health import blp as health_blp
    from api.jobs import blp as jobs_blp
    from api.keys_api import blp as keys_blp
    from api.recovery import blp as recovery_blp
    from api.sessions import blp as sessions_blp
    from api.users import blp as users_blp

    for blp in (sessions_blp, users_blp, jobs_blp, recovery_blp, keys_blp, health_blp):
        api.register_blueprint(blp)
    app.register_error_handler(HTTPException, handle_http_exception)

    @app.errorhandler(redis.RedisError)
    def redis_unavailable(exc):  # a dependency is down: tell the client to retry later
        app.logger.warning("redis unavailable: %s", exc)
        return error_body(503, "Service temporarily unavailable. Please try again later."), 503

    @app.get("/api/assets/<path:filename>")
    def swagger_assets(filename: str):  # Swagger UI works offline: assets come from the package
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

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
                401, {"WWW-Authenticate": 'Bearer realm="webjs"'}
        g.scope = scope  # what this caller may see; its Idempotency-Keys' namespace
        return None

    return app
