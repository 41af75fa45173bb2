"""One wiring factory per worker kind: what a process's tasks use, built from the one
``Settings`` its Celery app was made with (``app.wa_settings``, read once per process in
``workers.app``), and kept on that app, the one object Celery needs at import.

- the control worker (beat's periodic tasks, webhooks, the ``wa.api.*`` entry points):
  ``control(app)``, a ``ControlWiring`` built on first use in each worker process;
- a slot worker (``python -m workers.slot``): ``slot(app)``, its ``SlotRuntime``,
  started on first use (the worker's ready signal);
- the recorder (``python -m workers.recorder``) wires itself in its ``main``.

The API's factory is ``api.create_app(settings)``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from celery import Celery
from sqlalchemy.orm import sessionmaker

from models import make_engine, make_sessionmaker
from services.keys import KeyChecker
from settings import Settings
from storage.media import MediaStore, make_media_store

if TYPE_CHECKING:
    from workers.slot_runtime import SlotRuntime

_lock = threading.Lock()


@dataclass
class ControlWiring:
    """What the control worker's tasks use: one engine, one Redis client, the Celery app
    to enqueue with, the API key checker (for the ``wa.api.*`` entry points) and the media
    store (inline media of those sends, and their expiry)."""

    settings: Settings
    db: sessionmaker
    redis: redis.Redis
    celery: Celery
    keys: KeyChecker
    media_store: MediaStore


def build_control(settings: Settings, app: Celery) -> ControlWiring:
    """The control worker's wiring from ``settings``; ``app`` is the Celery app it enqueues with."""
    db = make_sessionmaker(make_engine(settings.database_url))
    client = redis.Redis.from_url(settings.redis_url)
    return ControlWiring(settings=settings, db=db, redis=client, celery=app,
                         keys=KeyChecker(db, client, settings.api_key_cache_seconds,
                                         settings.auth_failures_per_minute),
                         media_store=make_media_store(settings))


def control(app: Celery) -> ControlWiring:
    """This process's control wiring, built on first use from ``app.wa_settings``."""
    with _lock:
        wiring = getattr(app, "wa_control", None)
        if wiring is None:
            wiring = app.wa_control = build_control(app.wa_settings, app)
        return wiring


def build_slot(settings: Settings) -> SlotRuntime:
    """A slot worker's runtime from ``settings``, started (its monitor and heartbeat run)."""
    from workers.slot_runtime import SlotRuntime  # Selenium and the driver: slot workers only

    runtime = SlotRuntime(settings)
    runtime.start()
    return runtime


def slot(app: Celery) -> SlotRuntime:
    """This slot worker's runtime, built and started on first use from ``app.wa_settings``."""
    with _lock:
        runtime = getattr(app, "wa_slot", None)
        if runtime is None:
            runtime = app.wa_slot = build_slot(app.wa_settings)
        return runtime


def running_slot(app: Celery) -> SlotRuntime | None:
    """The slot runtime if this process started one, else None (never builds one)."""
    return getattr(app, "wa_slot", None)


def forget_connections(app: Celery) -> None:
    """After a fork: the child builds its own wiring (a database pool must not be shared)."""
    app.wa_control = None
