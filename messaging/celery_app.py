"""The Celery app factory, for every process that talks to the broker: the workers and
beat (``workers.app``) and the API's producer (``api.create_app``)."""
from __future__ import annotations

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

import celeryconfig
import logs
from messaging.broker import transport_for
from settings import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app on ``settings.redis_url`` with the project's configuration
    (``celeryconfig``). The settings ride on the app as ``app.wa_settings``: a worker's
    tasks build their resources from them (``workers.wiring``).

    Task messages, events and inspect answers show ids, never texts, numbers or media
    (``messaging.taskrepr``): Flower shows what they show. A task carries the request id
    it was enqueued under, and its log lines its ids (the signal handlers below).
    """
    app = Celery("wa", amqp="messaging.taskrepr:RedactedAMQP", task_cls="messaging.taskrepr:RedactedTask")
    app.config_from_object(celeryconfig)
    app.conf.broker_url = settings.redis_url
    app.conf.broker_transport = transport_for(settings.redis_url)
    app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.wa_settings = settings
    return app


# --- the ids of a task's log lines (logs.bind) --------------------------------------------

REQUEST_ID_HEADER = "wa_request_id"  # the API request a task came from (X-Request-ID)
TASK_LOG_FIELDS = ("session_id", "job_id", "message_id")  # bound from a task's kwargs
_task_tokens: dict[str, object] = {}  # task id -> its logs.bind_context token


@before_task_publish.connect(weak=False)
def _carry_request_id(headers=None, **_):
    """A task enqueued while a request id is bound (an API request, a task that came
    from one and retries) carries it in a header: the worker's lines about it carry it too."""
    request_id = logs.bound().get("request_id")
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def request_id_of(request) -> str | None:
    """The request id a running task's message carries (a worker puts custom headers on
    the request; ``apply`` keeps them in ``request.headers``)."""
    return getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(REQUEST_ID_HEADER)


@task_prerun.connect(weak=False)
def _bind_task_ids(task_id=None, task=None, kwargs=None, **_):
    """While a task runs, its lines carry its session, job and message ids, its request
    id and, on a slot worker, the slot."""
    fields = {k: v for k, v in (kwargs or {}).items() if k in TASK_LOG_FIELDS}
    settings = getattr(task.app, "wa_settings", None)
    if task.name.startswith("wa.slot.") and settings is not None:
        fields["slot"] = settings.slot_name
    _task_tokens[task_id] = logs.bind_context(request_id=request_id_of(task.request), **fields)


@task_postrun.connect(weak=False)
def _unbind_task_ids(task_id=None, **_):
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            logs.unbind(token)
        except ValueError:  # bound in another context: nothing of it is left in this one
            pass
