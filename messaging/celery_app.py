"""The Celery app factory, for every process that talks to the broker: the workers and
beat (``workers.app``) and the API's producer (``api.create_app``)."""
from __future__ import annotations

from celery import Celery

import celeryconfig
from messaging.broker import transport_for
from settings import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app on ``settings.redis_url`` with the project's configuration
    (``celeryconfig``). The settings ride on the app as ``app.wa_settings``: a worker's
    tasks build their resources from them (``workers.wiring``).

    Task messages, events and inspect answers show ids, never texts, numbers or media
    (``messaging.taskrepr``): Flower shows what they show.
    """
    app = Celery("wa", amqp="messaging.taskrepr:RedactedAMQP", task_cls="messaging.taskrepr:RedactedTask")
    app.config_from_object(celeryconfig)
    app.conf.broker_url = settings.redis_url
    app.conf.broker_transport = transport_for(settings.redis_url)
    app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.wa_settings = settings
    return app
