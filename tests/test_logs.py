"""Log lines cannot be forged by input, and database errors do not carry SQL parameters."""
from __future__ import annotations

import logging
import secrets
import sys

import pytest
from sqlalchemy.exc import DataError

from models import WhatsAppSession


def test_log_lines_escape_what_they_quote():
    from logs import _RedactingFormatter

    formatter = _RedactingFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord("api.sessions", logging.INFO, __file__, 1,
                               "session=%s replaced by a new session for user %s",
                               ("a\nINFO api.sessions forged", "b\r\x00\u2028\ud800"), None)
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line
    assert line == ("INFO api.sessions session=a\\nINFO api.sessions forged replaced by a new session for user "
                    "b\\r\\x00\\u2028\\ud800")
    try:
        raise ValueError("bad\nINFO forged")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert lines[0] == "ERROR x failed" and all(line.startswith("  ") for line in lines[1:])


def test_database_errors_do_not_carry_sql_parameters(db):
    secret = f"secret-text-{secrets.token_hex(4)}"
    with pytest.raises(DataError) as caught:
        with db.begin() as s:
            s.add(WhatsAppSession(user_id="nul\x00", session_id=f"nul-{secrets.token_hex(4)}", session_name=secret))
    assert secret not in str(caught.value) and "parameters hidden" in str(caught.value)
