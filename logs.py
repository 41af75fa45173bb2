"""One log line per event, with the ids of what it concerns bound as context.

``bind(session_id=..., message_id=...)`` binds ids for the code that runs inside it (a
request, a task: ``contextvars``, so threads and requests do not mix theirs); every line
logged meanwhile carries them. ``LOG_FORMAT=text`` (the default) appends them as
``key=value``; ``LOG_FORMAT=json`` writes one JSON object per line (python-json-logger)
with them as fields.

A text record is one line: control characters in its message (a newline in a user_id,
a path) are escaped, so input cannot forge a line; a traceback that follows is indented.
In both formats API keys are cut short.

Celery's own lines about the periodic tasks (received, succeeded, beat's "Sending due
task") and its "retry in" lines for sends (a pacing wait is no failure: the task says
why it waits) are logged at DEBUG (``QuietCeleryLines``).
"""
from __future__ import annotations

import contextvars
import copy
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

# The ids a line may carry, in the order the text format writes them.
FIELDS = ("request_id", "session_id", "job_id", "message_id", "slot")
FORMATS = ("text", "json")

# Keys and tokens must never reach a log line.
_SECRET = re.compile(r"(wak_[A-Za-z0-9_\-]{8}|/link/)[A-Za-z0-9_\-.]+")
# What would break a line or hide in it: control characters, line separators, lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

_bound: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("wa_log_context", default={})


def escape(text: str) -> str:
    """'a\\nb' -> 'a\\\\nb': one line, every character still readable."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def bound() -> dict[str, str]:
    """The ids bound in this context (a copy)."""
    return dict(_bound.get())


def bind_context(**fields) -> contextvars.Token:
    """Bind ids (those in ``FIELDS``; None values are left out) on top of the bound ones;
    give the token to ``unbind`` to go back. For a scope, ``bind`` is simpler."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a log field: {sorted(unknown)}")
    return _bound.set({**_bound.get(), **{k: str(v) for k, v in fields.items() if v is not None}})


def unbind(token: contextvars.Token) -> None:
    """Go back to what was bound before ``bind_context`` returned ``token``."""
    _bound.reset(token)


@contextmanager
def bind(**fields) -> Iterator[None]:
    """Lines logged inside carry ``fields`` (see ``bind_context``)."""
    token = bind_context(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record (an id given in ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _bound.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value...``: one line, control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record = copy.copy(record)
        record.message = escape(record.message)
        ids = " ".join(f"{key}={escape(str(value))}" for key in FIELDS
                       if (value := getattr(record, key, None)) is not None)
        return super().formatMessage(record) + (" " + ids if ids else "")

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = super().format(record).split("\n")  # rest: a traceback or stack
        return _SECRET.sub(r"\1…", "\n".join([first, *("  " + escape(line) for line in rest)]))


_RedactingFormatter = TextFormatter  # its earlier name


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the bound ids, and
    ``exc_info`` for a traceback. JSON escapes what would break the line."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         json_ensure_ascii=False)

    # Only these keys: a record's other extras may hold what must not be logged (Celery
    # passes a task's arguments, message texts and numbers, as ``data``).
    KEYS = frozenset({"time", "level", "logger", "message", "exc_info", "stack_info", *FIELDS})

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        """The base fields and the bound ids, nothing else of the record."""
        super().add_fields(log_data, record, message_dict)
        for key in set(log_data) - self.KEYS:
            del log_data[key]

    def format(self, record: logging.LogRecord) -> str:
        return _SECRET.sub(r"\1…", super().format(record))


# Celery's lines that would flood INFO: (logger, what the record names) -> DEBUG.
PERIODIC_TASKS = frozenset({
    "wa.control.sweep_messages", "wa.control.deliver_webhooks", "wa.control.reap_lost_slots",
    "wa.control.expire_idempotency_keys", "wa.control.clean_sessions", "wa.control.expire_media",
})
RETRY_QUIET_TASKS = frozenset({"wa.slot.send_message"})  # the task logs why it waits, at its level


class QuietCeleryLines(logging.Filter):
    """Logs at DEBUG Celery's lines about the periodic tasks (each task logs at INFO what
    it did, when it did something) and its "retry in" lines for sends (the send logs why
    it waits: a pacing wait at DEBUG, a failed attempt at INFO); lines above INFO
    (failures) stay as they are. Attached to celery.app.trace, celery.worker.strategy and
    celery.beat by ``setup_logging``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and "return_value" in record.args:
            # "Task ... succeeded in ...s: <return value>": the wa.api.* tasks return the
            # send's 202 body, numbers included; only counts and ids are logged.
            record.args = {**record.args, "return_value": loggable_result(record.args["return_value"])}
        if record.levelno != logging.INFO or not self._quiet(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).getEffectiveLevel() <= logging.DEBUG

    @staticmethod
    def _quiet(record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "celery.beat":  # "Scheduler: Sending due task %s (%s)"
            return isinstance(args, tuple) and len(args) == 2 and args[1] in PERIODIC_TASKS
        if not isinstance(args, dict):
            return False
        name = args.get("name")
        if name in PERIODIC_TASKS:
            return True
        return name in RETRY_QUIET_TASKS and " retry: " in str(record.msg)


QUIET_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")
RESULT_IDS = frozenset({"job_id", "message_id", "session_id", "status"})


def loggable_result(value):
    """What of a task's return value a log line may show: numbers, and of a dict its numbers
    and ids (``RESULT_IDS``); a text or list (numbers, message texts) only by its type."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {k: v for k, v in value.items()
                if isinstance(v, (bool, int, float)) or (k in RESULT_IDS and isinstance(v, str))}
    return f"<{type(value).__name__}>"


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of ``LOG_FORMAT``: ``text`` or ``json``."""
    if log_format == "json":
        return JsonLineFormatter()
    if log_format == "text":
        return TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` (LOG_FORMAT), with the bound ids, and
    Celery's periodic lines at DEBUG. Safe to call again (Celery's setup_logging signal)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, QuietCeleryLines)]
        logger.addFilter(QuietCeleryLines())
