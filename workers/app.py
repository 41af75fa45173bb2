"""The Celery app shared by the slot workers, the control worker, beat and the API.

Run a control worker: ``celery -A workers.app worker -Q control``
Run a slot worker:    ``python -m workers.slot`` (consumes only its own queue)
"""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

import celeryconfig
from settings import Settings
from workers.broker import transport_for


def make_celery(settings: Settings | None = None) -> Celery:
    # Task messages, events and inspect answers show ids, never texts, numbers or media
    # (see workers.taskrepr): Flower shows what they show.
    app = Celery("wa", amqp="workers.taskrepr:RedactedAMQP", task_cls="workers.taskrepr:RedactedTask")
    app.config_from_object(celeryconfig)
    app.conf.include = ["workers.slot_tasks", "workers.control_tasks", "workers.webhooks", "workers.api_tasks"]
    if settings is not None:  # an explicit settings object wins over the environment
        app.conf.broker_url = settings.redis_url
        app.conf.broker_transport = transport_for(settings.redis_url)
        app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout}
    return app


celery = make_celery()


@worker_process_init.connect
def _fresh_connections(**_):
    # A forked child must not share its parent's database pool.
    from workers import control_tasks

    control_tasks.reset_resources()
