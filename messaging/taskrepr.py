"""What a task's arguments and result look like outside the task: ids, never contents.

Sends carry phone numbers, message texts (one-time codes among them) and inline media.
Flower, and anything else that reads task events, a worker's ``inspect`` answers or the
task messages' headers, shows a task's ``argsrepr``/``kwargsrepr`` and its result's repr.
So both sides of the broker write those from ``redact`` instead of ``repr``:

* ``RedactedAMQP`` (the app's message builder): every task message this app sends, by
  ``send_task``, ``apply_async`` or a task's own ``retry``, carries redacted reprs in its
  headers (and in its task-sent event, should those be turned on).
* ``RedactedTask`` (the base of every task of the app) with ``RedactedRequest``: a worker
  recomputes the reprs from the arguments it received, so a message from another producer
  (a Python service calling ``wa.api.send_message``) shows no more; ``inspect scheduled``
  / ``reserved`` / ``active`` answer the reprs instead of the arguments; the result of
  task-succeeded events is redacted the same way and runs of digits in errors are masked.

Keys named in ``SHOWN`` keep their value when it is a short scalar; every other value is
replaced by what it is (``'<hidden>'``, ``'<3 items>'``).
"""
from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from celery import Task
from celery.app.amqp import AMQP
from celery.worker.request import Request

# Ids and figures, never contents. session_id is the client's user id: an id Flower may show.
SHOWN = frozenset({
    "session_id", "message_id", "job_id", "epoch", "attempt", "forget", "slot",
    "success", "status", "total_messages", "successful_sends", "failed_sends", "duration",
})
HIDDEN = "<hidden>"
SCALAR_MAX = 100  # characters of a shown string value
_NUMBER_RUN = re.compile(r"\d{7,}")


def redact(value, key: str | None = None):
    """``value`` with everything but ids and figures replaced.

    ``value``: a task's kwargs (a dict), args (a list) or result, as JSON decodes them;
    ``key``: the name ``value`` is found under in its dict, if any. A dict keeps its keys;
    a value under a key in ``SHOWN`` is kept when it is None, a bool, a number or a short
    string; a list anywhere else becomes ``'<N items>'``, anything else ``'<hidden>'``.
    A bare number or bool (a control task's count) is kept; a bare string is hidden.
    """
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if value is None or isinstance(value, bool):
        return value
    if key is None and isinstance(value, (int, float)):
        return value
    if key in SHOWN and (isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= SCALAR_MAX)):
        return value
    if isinstance(value, (list, tuple)):
        return f"<{len(value)} items>"
    return HIDDEN


def args_repr(args) -> str:
    """``repr`` of positional args ``[value, ...]``: each one hidden (names are not known)."""
    return repr(tuple(redact(a, key="") for a in args or ()))


def kwargs_repr(kwargs) -> str:
    """``repr`` of ``{name: value}`` keyword args, redacted (see ``redact``)."""
    return repr(redact(dict(kwargs or {})))


def result_repr(result) -> str:
    """A task result for its task-succeeded event: the worker hands over ``repr(result)``
    (a str, possibly cut short); it is read back and redacted, or hidden when unreadable."""
    if isinstance(result, str):
        try:
            result = ast.literal_eval(result)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return repr(HIDDEN)
    return repr(redact(result))


def mask_numbers(text: str) -> str:
    """Runs of 7 or more digits (phone numbers) masked, e.g. in an error's text."""
    return _NUMBER_RUN.sub(lambda m: m.group()[:2] + "…" + m.group()[-2:], text)


class RedactedAMQP(AMQP):
    """The app's message builder: task messages carry redacted ``argsrepr``/``kwargsrepr``
    whatever the sender passed."""

    def as_task_v2(self, task_id, name, args=None, kwargs=None, *more, **options):
        """Celery's task message, with ``argsrepr`` and ``kwargsrepr`` redacted."""
        options["argsrepr"] = args_repr(args)
        options["kwargsrepr"] = kwargs_repr(kwargs)
        return super().as_task_v2(task_id, name, args, kwargs, *more, **options)


class RedactedRequest(Request):
    """A received task as the worker reports it in events and ``inspect`` answers: with
    the reprs recomputed from the arguments (another producer's headers are not trusted),
    the result redacted and numbers in errors masked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._argsrepr = args_repr(self._args)
        self._kwargsrepr = kwargs_repr(self._kwargs)

    def info(self, safe: bool = False) -> dict:
        """Always the safe form (reprs, never the raw arguments)."""
        return super().info(safe=True)  # inspect scheduled/reserved ask for the raw arguments

    def send_event(self, type, **fields):
        """Send a task event with its result redacted and numbers masked in its error."""
        if "result" in fields:
            fields["result"] = result_repr(fields["result"])
        for name in ("exception", "traceback"):
            if isinstance(fields.get(name), str):
                fields[name] = mask_numbers(fields[name])
        super().send_event(type, **fields)


class RedactedTask(Task):
    """Base of every task of the app (``Celery(task_cls=...)``)."""

    Request = "messaging.taskrepr:RedactedRequest"
