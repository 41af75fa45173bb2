"""Engine and session factory; the only module that knows about database URLs."""
from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for ``url``: "postgres://" and "postgresql://" get the psycopg 3
    driver ("postgresql+psycopg://"); other URLs (SQLite) are returned as they are."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url`` (normalised by ``normalize_url``; ``kwargs`` go to
    ``create_engine``) that keeps statement parameters out of error texts; SQLite runs in
    WAL mode so that several processes can share the demo's file."""
    url = normalize_url(url)
    # A database error's text must not carry the statement's parameters (message texts,
    # numbers) into logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # several processes share the demo file
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """Sessions on ``engine`` whose rows stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(engine, expire_on_commit=False)
