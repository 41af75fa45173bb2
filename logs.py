"""One log line per event, with the ids of what it concerns as key=value pairs.

A record is one line: control characters in its message (a newline in a user_id, a
path) are escaped, so input cannot forge a line; a traceback that follows is indented.
"""
from __future__ import annotations

import copy
import logging
import re

# Keys and tokens must never reach a log line.
_SECRET = re.compile(r"(wak_[A-Za-z0-9_\-]{8})[A-Za-z0-9_\-]+")
# What would break a line or hide in it: control characters, line separators, lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def escape(text: str) -> str:
    """'a\\nb' -> 'a\\\\nb': one line, every character still readable."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _RedactingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record = copy.copy(record)
        record.message = escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = super().format(record).split("\n")  # rest: a traceback or stack
        return _SECRET.sub(r"\1…", "\n".join([first, *("  " + escape(line) for line in rest)]))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
