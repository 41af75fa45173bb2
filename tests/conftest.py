"""Fixtures on real services: a fresh PostgreSQL database per run (migrated with
Alembic), a Redis database flushed per run, and the project's own processes.

TEST_DATABASE_URL names the server (its database is only used to create ours) and
TEST_REDIS_URL the Redis database; both default to the services on 127.0.0.1.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import sessionmaker

from models import make_engine, make_sessionmaker
from settings import Settings
from tests.helpers import ROOT, keyed_client

pytest_plugins = ["tests.netguard"]  # the loopback_only fixture


def pytest_configure(config):
    config.addinivalue_line("markers", "profiles(*names): the simulator page profiles a driver test runs on")
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (left out of make test-fast)")
    config.addinivalue_line("markers", "stack: starts other processes of the project or a server (left out of "
                                       "make test-fast)")


# Whole modules that need a browser or other processes; single tests elsewhere carry the
# marker themselves. `make test-fast` runs the rest but the schema fuzzer:
# `-m "not browser and not stack" --ignore=tests/test_api_fuzz.py`.
BROWSER_MODULES = {"test_driver", "test_page_object", "test_simulator_page", "test_simulator_page_2026",
                   "test_chrome_sandbox", "test_slot_leaks", "test_link_page", "test_contacts_driver"}
STACK_MODULES = {"test_end_to_end", "test_sending_e2e", "test_incoming_e2e", "test_failover", "test_redis_outage",
                 "test_flower", "test_deployment", "test_taskrepr", "test_canary", "test_profiles_s3",
                 "test_link_page", "test_demo", "test_contacts_e2e", "test_api_fuzz"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if module in STACK_MODULES:
            item.add_marker(pytest.mark.stack)

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def _per_worker(url: str) -> str:
    """Under pytest-xdist each worker gets its own Redis database (the next numbers after
    TEST_REDIS_URL's): a worker flushes its database, and slots, queues and events must not
    meet another worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) + int(worker[2:])}"


REDIS_URL = _per_worker(REDIS_URL)


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def database_url():
    name = f"wa_test_{secrets.token_hex(4)}"
    admin = ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(admin, name)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, "head")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wa")


@pytest.fixture(scope="session")
def settings(database_url, redis_url, work_dir) -> Settings:
    return replace(
        Settings(),
        database_url=database_url,
        redis_url=redis_url,
        profile_dir=str(work_dir / "profiles"),
        browser_work_dir=str(work_dir / "browsers"),
        qr_wait_seconds=30.0,
        dispatch_grace_seconds=60,
        # The in-process API answers initialize at once (no slot worker runs for most
        # tests); tests of the wait for the first QR make an app with their own.
        initialize_qr_wait=0.0,
    )


@pytest.fixture(scope="session")
def db(settings):
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def redis_client(redis_url):
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def rolled_back_db(settings):
    """A sessionmaker inside one transaction that is rolled back at the end: the test's
    rows vanish with it and no other connection sees them. Code under test commits to
    savepoints (``join_transaction_mode="create_savepoint"``). Only for tests whose rows
    no other process or thread needs to see (a stack's processes, a threaded recorder)."""
    engine = make_engine(settings.database_url)
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
    finally:
        outer.rollback()
        connection.close()
        engine.dispose()


@pytest.fixture
def wire_control(db, redis_client, monkeypatch):
    """Wire the control worker's tasks in this process (``workers.wiring``) to the test's
    database and Redis, with ``settings`` (the test's by default): returns the wiring."""
    from messaging.celery_app import make_celery
    from services.keys import KeyChecker
    from storage.media import make_media_store
    from workers.app import celery
    from workers.wiring import ControlWiring

    def wire(settings, *, keys: KeyChecker | None = None):
        w = ControlWiring(settings=settings, db=db, redis=redis_client, celery=make_celery(settings),
                          keys=keys or KeyChecker(db, redis_client, settings.api_key_cache_seconds,
                                                  settings.auth_failures_per_minute),
                          media_store=make_media_store(settings))
        monkeypatch.setattr(celery, "wa_control", w, raising=False)
        return w

    return wire


@pytest.fixture
def ready_on_slot(db, redis_client, user_id):
    """A READY session on a slot of its own that no worker consumes: (its id, the slot's
    name). The slot's queue is emptied afterwards."""
    from settings import slot_queue
    from tests.factories import make_session

    slot = f"slot-{secrets.token_hex(4)}"
    with db.begin() as s:
        make_session(s, user_id, slot=slot)
    yield user_id, slot
    redis_client.delete(slot_queue(slot))


@pytest.fixture(scope="session")
def app(settings):
    from api import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
def api_key(app):
    from api.keys import create_key

    _row, key = create_key(app.extensions["wa"].db, "tests", admin=True)
    return key


@pytest.fixture
def client(app, api_key):
    """A Flask test client that sends the API key on every request."""
    return keyed_client(app, api_key)


@pytest.fixture
def anon_client(app):
    return app.test_client()


@pytest.fixture
def user_id():
    return f"user_{secrets.token_hex(5)}"


@pytest.fixture
def ready(db, user_id):
    """A READY session (committed: the API's own engine sees it) on a slot with no worker;
    its id, which is also its user's."""
    from tests.factories import make_session

    with db.begin() as s:
        make_session(s, user_id, slot="nowhere")
    return user_id


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (``tests.helpers.WebhookReceiver``)."""
    from tests.helpers import WebhookReceiver

    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _loopback_only_everywhere(loopback_only):
    """No test may open a connection off loopback (the machine's rule, and the SSRF tests')."""
    yield loopback_only
