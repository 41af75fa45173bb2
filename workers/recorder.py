"""The recorder: the one process that writes worker events into the database.

It reads the events stream through a consumer group, applies each batch in one
transaction, and only then acknowledges (and deletes) the entries.  If it is stopped,
events wait in the stream; if it dies mid-batch, the unacknowledged entries are read
again on start (pending list first) and the transition rules make a replay harmless.

Run: ``python -m workers.recorder``
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time

import redis
from celery import Celery
from sqlalchemy.orm import sessionmaker

from logs import setup_logging
from messaging.celery_app import make_celery
from messaging.events import DEAD_LETTERS, GROUP, STREAM, live_channel
from messaging.optouts import OptOutMirror
from models import make_engine, make_sessionmaker
from messaging import send_metrics
from models.events import Event, MessageEvent, decode
from models.tables import Message
from models.optouts import OptOutRules
from models.recording import apply_event
from settings import CONTROL_QUEUE, Settings

log = logging.getLogger("recorder")

RETRY_FIRST, RETRY_MAX = 0.5, 5.0  # seconds between tries while Redis or the database is away


def _outcome_of(session, event: MessageEvent) -> tuple[str, float | None]:
    """The outcome a message event just recorded, and for a sent message its latency
    (acceptance to send, seconds) from the row it changed."""
    status = event.status.value
    if status != "sent":
        return status, None
    msg = session.get(Message, event.message_id)
    if msg is None or msg.sent_at is None or msg.created_at is None:
        return status, None
    return status, (msg.sent_at - msg.created_at).total_seconds()


FINISH_SECONDS = 10.0  # the longest a stopping recorder goes on applying what the stream holds


class Recorder:
    """Applies the event stream to PostgreSQL as consumer ``consumer`` of the ``recorder``
    group, ``batch`` entries per read, blocking up to ``block_ms`` milliseconds; ``celery``
    (optional) is asked for a sweep after a batch that may release messages."""

    def __init__(self, client: redis.Redis, db: sessionmaker, consumer: str = "recorder",
                 batch: int = 200, block_ms: int = 1000, celery: Celery | None = None,
                 opt_out_keywords: tuple[str, ...] = Settings.opt_out_keywords):
        self.redis = client
        self.db = db
        # Texts received that put their sender on the session's opt-out list; a new opt-out
        # is copied to Redis for the slots, so that messages accepted before it stop too.
        self.opt_outs = OptOutRules(tuple(opt_out_keywords), OptOutMirror(client))
        self.celery = celery  # asks the control worker for a sweep; None: beat's sweep only
        self.consumer = consumer
        self.batch = batch
        self.block_ms = block_ms
        self.stopping = threading.Event()

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist yet (BUSYGROUP is fine)."""
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def process(self, entries: list[tuple[str, dict]]) -> int:
        """Apply a batch in one transaction, then acknowledge it. Returns how many were applied."""
        if not entries:
            return 0
        applied: list[Event] = []
        dead: list[tuple[str, bytes | str]] = []  # (entry id, raw body)
        counted: list[tuple[str, float | None]] = []  # (outcome, latency of a sent message)
        with self.db.begin() as session:
            session.info.pop("released", None)
            for entry_id, fields in entries:
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                raw = fields.get(b"e") or fields.get("e") or b""
                try:
                    event = decode(raw)
                except ValueError as exc:  # not an event this recorder knows: kept aside, not applied
                    log.warning("event %s refused to the dead letters: %s", entry_id, str(exc)[:200])
                    dead.append((entry_id, raw))
                    continue
                try:
                    with session.begin_nested():
                        outcome = apply_event(session, entry_id, event, self.opt_outs)
                except Exception:  # one bad event must not block the stream
                    log.exception("event %s (%s) could not be applied", entry_id, event.type)
                    dead.append((entry_id, raw))
                    continue
                if outcome.applied:
                    applied.append(event)
                    if isinstance(event, MessageEvent) and event.status.value in send_metrics.OUTCOMES:
                        counted.append(_outcome_of(session, event))
                else:
                    log.info("refused event %s (%s %s): %s", entry_id, event.type, event.get("status"),
                             outcome.reason)
            released = session.info.pop("released", 0)
        ids = [e[0] for e in entries]
        pipe = self.redis.pipeline(transaction=True)
        for entry_id, raw in dead:
            pipe.xadd(DEAD_LETTERS, {"id": entry_id, "e": raw})
        pipe.xack(STREAM, GROUP, *ids)
        for outcome_name, latency in counted:  # with the ack: a replayed event is refused, not counted
            send_metrics.count(pipe, outcome_name, latency)
        pipe.xdel(STREAM, *ids)
        # Listeners that must read their own writes (send ?wait=N) wait for this copy.
        for event in applied:
            body = event.to_dict()
            pipe.publish(live_channel(body), json.dumps({**body, "recorded": True}, separators=(",", ":")))
        pipe.execute()
        if released:  # messages waiting for the one before them to the same number may go now
            self.request_sweep()
        return len(applied)

    def request_sweep(self) -> None:
        """Ask for a sweep now (messages released by the one before them may go)."""
        if self.celery is None:
            return
        try:
            self.celery.send_task("wa.control.sweep_messages", queue=CONTROL_QUEUE, retry=False)
        except Exception as exc:  # beat runs the sweep anyway, a few seconds later
            log.warning("could not request a sweep: %s", exc)

    def drain_pending(self) -> None:
        """Entries delivered to this consumer before a crash come first, in order."""
        self._read_until_empty("0")

    def _read_until_empty(self, start: str, deadline: float | None = None) -> None:
        """Read and process batches without waiting until none is left (or ``deadline``,
        monotonic seconds, passes): from ``start`` ("0": those delivered to this consumer
        and not acknowledged; ">": new ones)."""
        while deadline is None or time.monotonic() < deadline:
            resp = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: start}, count=self.batch)
            entries = resp[0][1] if resp else []
            if not entries:
                return
            self.process(entries)

    def claim_abandoned(self, min_idle_ms: int = 30000) -> None:
        """Take over entries another recorder consumer received but never acknowledged."""
        _next, entries, *_ = self.redis.xautoclaim(STREAM, GROUP, self.consumer, min_idle_ms, "0-0",
                                                    count=self.batch)
        if entries:
            self.process([e for e in entries if e and e[1] is not None])

    def finish(self) -> None:
        """What is already in the stream when the recorder is told to stop is applied
        before it exits: a slot stopped just before it reports its sessions as stopped,
        and that report must reach the database. At most FINISH_SECONDS: slots still
        running keep publishing, and a supervisor waits only so long for a stop; what is
        left stays in the stream for the next recorder."""
        deadline = time.monotonic() + FINISH_SECONDS
        self.ensure_group()
        self._read_until_empty("0", deadline)
        self._read_until_empty(">", deadline)

    def run_once(self) -> int:
        """Read one batch of new entries (waiting up to ``block_ms``) and process it; returns
        how many were applied. Raises Redis and database errors (``run`` rides them out)."""
        resp = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=self.batch,
                                     block=self.block_ms)
        entries = resp[0][1] if resp else []
        return self.process(entries)

    def run(self) -> None:
        """Read, apply, acknowledge, until stopped. Redis or the database going away
        pauses it: it tries again with backoff (RETRY_FIRST doubling to RETRY_MAX seconds
        apart) for as long as it takes. A Redis that came back empty has lost the stream
        and the consumer group (NOGROUP): the group is created again and reading goes on.
        Entries already read were applied (acknowledging them fails harmlessly); only an
        event Redis lost in the moment between its XADD and this read is gone."""
        log.info("recorder started (consumer %s)", self.consumer)
        recovering = True
        delay = 0.0
        while not self.stopping.is_set():
            try:
                if recovering:
                    # After a start or an error, what was delivered but not committed comes first.
                    self.ensure_group()
                    self.drain_pending()
                    self.claim_abandoned()
                    recovering = False
                self.run_once()
                if delay:
                    log.info("recorder resumed")
                    delay = 0.0
            except Exception as exc:  # Redis or the database is away: wait, then recover
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    # Redis restarted empty (or the stream was deleted): no need to wait.
                    log.warning("recorder: the consumer group %s is gone; creating it again", GROUP)
                    recovering = True
                    continue
                delay = min(RETRY_MAX, delay * 2 or RETRY_FIRST)
                log.warning("recorder paused (trying again in %.1f s): %s", delay, exc)
                recovering = True
                self.stopping.wait(delay)
        try:
            self.finish()
        except Exception as exc:  # Redis or the database is away: the entries wait in the stream
            log.warning("recorder: the stream was not read to its end before stopping: %s", exc)
        log.info("recorder stopped")


def main() -> None:
    """The recorder process (``python -m workers.recorder``): runs until SIGTERM or SIGINT."""
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.log_format)
    recorder = Recorder(redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10),
                        make_sessionmaker(make_engine(settings.database_url)),
                        consumer=f"recorder@{socket.gethostname()}", celery=make_celery(settings),
                        opt_out_keywords=settings.opt_out_keywords)
    signal.signal(signal.SIGTERM, lambda *_: recorder.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: recorder.stopping.set())
    recorder.run()


if __name__ == "__main__":
    main()
