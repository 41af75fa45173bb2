"""The Celery app of the slot workers, the control worker and beat: the one module-level
object (Celery finds it at import, ``celery -A workers.app``), made from the settings
read once for the process. What the tasks use is built from those settings by
``workers.wiring``.

Run a control worker: ``celery -A workers.app worker -Q control``
Run a slot worker:    ``python -m workers.slot`` (consumes only its own queue)
"""
from __future__ import annotations

from celery.signals import setup_logging as celery_setup_logging, worker_process_init

from logs import setup_logging
from messaging.celery_app import make_celery
from settings import Settings
from workers import wiring

celery = make_celery(Settings.from_env())
celery.conf.include = ["workers.slot_tasks", "workers.control_tasks", "workers.webhooks", "workers.api_tasks"]


@worker_process_init.connect
def _fresh_connections(**_):
    wiring.forget_connections(celery)


@celery_setup_logging.connect
def _logging(loglevel=None, **_):
    """Workers and beat log as the other processes do (LOG_FORMAT, bound ids); Celery
    leaves logging alone when this signal has a receiver."""
    settings = celery.wa_settings
    setup_logging(loglevel or settings.log_level, settings.log_format)
