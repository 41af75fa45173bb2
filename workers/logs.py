"""One log line per event, with the ids of what it concerns as key=value pairs."""
from __future__ import annotations

import logging
import re

# Keys and tokens must never reach a log line.
_SECRET = re.compile(r"(wak_[A-Za-z0-9_\-]{8})[A-Za-z0-9_\-]+")


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _SECRET.sub(r"\1…", super().format(record))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
