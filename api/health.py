"""/webjs/health and /metrics: how the API, its database, Redis, the slots and the profile
store are doing. Both are public (no API key) and answer even when a dependency is down.

Public answers carry aggregate figures only: no session id (a user id, often a phone
number) and no slot's host name. An operator (``is_operator``: ``Authorization: Bearer
<METRICS_TOKEN>`` or an admin API key) gets them too: each slot's ``host`` in health, the
``host`` label of ``wa_slot_up`` and ``wa_browser_memory_bytes`` per session in metrics.

/webjs/health keeps the seed's fields; what they mean here:

- ``status``: "healthy" (200) when the database, Redis and the profile store all answer;
  "degraded" (200) when only Redis does not: sends are still accepted (the rows are
  durable and the sweeper dispatches them when Redis is back) and every worker waits for
  Redis with its browsers and sessions; "unhealthy" (503, the same body) when the
  database or the profile store does not answer.
- ``s3_connection`` and ``auth_folder_status``: both are the profile store's ``check()``,
  the place where sessions' logins are kept (the S3 bucket when S3_BUCKET is set, else the
  local folder). The seed checked its S3 client and its local auth folder separately; here
  there is one store, so a seed client watching either field sees whether it is usable.
- ``network_connectivity``: Redis answers and at least one slot worker is alive, i.e. a
  session could be started right now.
- ``active_sessions``: sessions holding a place on a slot; ``total_sessions``: all rows
  (both null when the database does not answer).
- ``memory_usage``: ``rss`` of this API process; the seed's Node.js heap figures are null;
  ``browsers`` is the browsers' memory (PSS) summed over the live slots' heartbeats.
- ``uptime``: whole seconds since the app was created.

/metrics is computed at scrape time from the database and Redis by a collector on the
app's own registry; families whose source does not answer are left out, and
``wa_dependency_up`` says which source that was. Counts of rows now are gauges (they go
down: jobs are deleted); rates come from the counters the recorder keeps in Redis
(``messaging.send_metrics``: ``wa_sends_total``, ``wa_send_duration_seconds``).
"""
from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import redis
from flask import Flask, Request, Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from api.schemas import seed_timestamp
from messaging import send_metrics, slots as slot_registry
from models import make_engine, make_sessionmaker, normalize_url
from models.sends import stuck_sessions
from models.states import MessageStatus, SessionStatus
from models.tables import Message, WebhookDelivery, WhatsAppSession, placed_and_live, utcnow
from models.webhooks import DeliveryStatus
from services.keys import KeyChecker, TooManyFailures
from settings import CONTROL_QUEUE, slot_queue
from storage.profiles import make_profile_store

log = logging.getLogger("api.health")
blp = Blueprint("health", __name__, description="Health and metrics (public: no API key; an admin key or "
                                                "METRICS_TOKEN shows per-session figures and host names)")

LATENCY_WINDOW = timedelta(minutes=15)
LATENCY_MAX_ROWS = 5000
LATENCY_QUANTILES = (0.5, 0.95)
DB_CONNECT_TIMEOUT_S = 2
DB_STATEMENT_TIMEOUT_MS = 3000
REDIS_ERRORS = (redis.RedisError, OSError)
DB_ERRORS = (SQLAlchemyError, OSError)


# --- per-app state ----------------------------------------------------------------------

class Probes:
    """What health and metrics keep per app: the start time, the profile store and its
    last check, a database engine with short timeouts, and the Prometheus registry."""

    store_check_ttl = 5.0  # seconds a profile store check result is reused

    def __init__(self, app: Flask):
        self.app = app
        self.started = time.monotonic()
        self.registry = CollectorRegistry()  # public: aggregate figures
        self.registry.register(ServiceCollector(self, detail=False))
        self.operator_registry = CollectorRegistry()  # also per session and host names
        self.operator_registry.register(ServiceCollector(self, detail=True))
        self._lock = threading.Lock()
        self._store = None
        self._store_ok: tuple[bool, float] | None = None  # (result, monotonic time of the check)
        self._db: sessionmaker | None = None
        self._keys: KeyChecker | None = None

    @property
    def services(self):
        """The app's Services, read on every use."""
        return self.app.extensions["wa"]  # read on every use: tests swap its redis

    def uptime(self) -> int:
        """Seconds since this API process started (whole seconds, monotonic clock)."""
        return int(time.monotonic() - self.started)

    def db(self) -> sessionmaker:
        """Sessions on a small engine of their own that gives up quickly on a database that
        does not answer (the app's engine waits as long as the OS lets a connect take)."""
        with self._lock:
            if self._db is None:
                settings = self.services.settings
                url = normalize_url(settings.database_url)
                if url.startswith("postgresql"):
                    engine = make_engine(url, pool_size=1, max_overflow=2, pool_timeout=DB_CONNECT_TIMEOUT_S,
                                         connect_args={"connect_timeout": DB_CONNECT_TIMEOUT_S,
                                                       "options": f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"})
                    self._db = make_sessionmaker(engine)
                else:  # a local SQLite file: nothing to wait for over a network
                    self._db = self.services.db
            return self._db

    def keys(self) -> KeyChecker:
        """API keys, checked on ``db()``: a database that hangs must not hang health."""
        db = self.db()
        with self._lock:
            if self._keys is None:
                settings = self.services.settings
                self._keys = KeyChecker(db, self.services.redis, settings.api_key_cache_seconds,
                                        settings.auth_failures_per_minute)
            return self._keys

    def profile_store(self):
        """The profile store, made on first use; None while it cannot be made."""
        with self._lock:
            if self._store is None:
                try:
                    self._store = make_profile_store(self.services.settings)
                except Exception as exc:  # S3 configuration or bucket creation; tried again later
                    log.warning("profile store unavailable: %s", exc)
            return self._store

    def store_ok(self) -> bool:
        """The profile store's check, reused for ``store_check_ttl`` seconds."""
        cached = self._store_ok
        if cached is not None and time.monotonic() - cached[1] < self.store_check_ttl:
            return cached[0]
        store = self.profile_store()
        ok = False if store is None else check_store(store)
        self._store_ok = (ok, time.monotonic())
        return ok


def check_store(store) -> bool:
    """The profile store's ``check()``; False when it raises."""
    try:
        return bool(store.check())
    except Exception as exc:  # check() should not raise; health must answer regardless
        log.warning("profile store check failed: %s", exc)
        return False


@blp.record_once
def _attach(state) -> None:
    state.app.extensions["wa_health"] = Probes(state.app)


def probes() -> Probes:
    """The current app's Probes."""
    return current_app.extensions["wa_health"]


def is_operator(req: Request) -> bool:
    """Whether ``req`` may see session ids and host names: it carries ``Authorization:
    Bearer <METRICS_TOKEN>``, or an admin API key (``X-API-Key: <key>`` or ``Authorization:
    Bearer <key>``). Anything else, a wrong token included, gets the public answer."""
    auth = req.headers.get("Authorization", "")
    bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    token = current_app.extensions["wa"].settings.metrics_token
    if token and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return True
    key = req.headers.get("X-API-Key") or bearer
    if not key:
        return False
    try:
        scope = probes().keys().check(key, req.remote_addr)
    except TooManyFailures:  # guessing keys here is limited as everywhere: the public answer
        return False
    except DB_ERRORS as exc:  # health answers without the database
        log.warning("api key not checked, database unavailable: %s", exc)
        return False
    return scope is not None and scope.admin


# --- readings ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RedisView:
    """What health reads from Redis in one go: the live slots, every registered slot name,
    and each queue's depth (queue name -> waiting tasks)."""

    live: list[slot_registry.SlotInfo]
    known: set[str]
    queue_depth: dict[str, int]


def read_redis(client: redis.Redis) -> RedisView | None:
    """Slots and queue depths, or None when Redis does not answer (its client's timeouts)."""
    try:
        live = slot_registry.live_slots(client)
        known = slot_registry.known_slots(client) | {s.name for s in live}
        queues = [CONTROL_QUEUE, *sorted(slot_queue(name) for name in known)]
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        return RedisView(live, known, dict(zip(queues, pipe.execute())))
    except REDIS_ERRORS as exc:
        log.warning("redis unavailable: %s", exc)
        return None


def placed_per_slot(db: sessionmaker) -> tuple[int, dict[str, int]] | None:
    """(all sessions, {slot: sessions placed and live there}), or None when the database
    does not answer."""
    try:
        with db() as s:
            total = s.scalar(select(func.count()).select_from(WhatsAppSession))
            rows = s.execute(select(WhatsAppSession.slot, func.count()).where(placed_and_live())
                             .group_by(WhatsAppSession.slot)).all()
        return total, {slot: n for slot, n in rows}
    except DB_ERRORS as exc:
        log.warning("database unavailable: %s", exc)
        return None


def not_sending(db: sessionmaker, stuck_after: timedelta) -> dict[str, object] | None:
    """READY sessions that cannot send (``models.sends.stuck_sessions``), or None when the
    database does not answer."""
    try:
        with db() as s:
            return stuck_sessions(s, stuck_after)
    except DB_ERRORS as exc:
        log.warning("database unavailable: %s", exc)
        return None


def slot_rows(live: list[slot_registry.SlotInfo], known: set[str], used: dict[str, int],
              hosts: bool = False) -> list[dict]:
    """One row per slot that is registered, alive, or has sessions placed on it; with
    ``hosts`` (an operator asks) each row names its host."""
    by_name = {s.name: s for s in live}
    rows = []
    for name in sorted(known | set(by_name) | set(used)):
        info = by_name.get(name)
        row = {
            "name": name, "alive": info is not None,
            "capacity": info.capacity if info else None, "used": used.get(name, 0),
            "sessions_running": len(info.sessions) if info else 0,
            "browser_memory_bytes": sum(info.sessions.values()) if info else 0,
        }
        if hosts:
            row["host"] = info.host if info else None
        rows.append(row)
    return rows


def rss_bytes() -> int | None:
    """This process's resident memory (Linux), or None where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError):
        pass
    return None


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list; NaN for an empty one."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def iso_now() -> str:
    """The seed's timestamp format, as every timestamp of the API: 2024-01-15T12:00:00Z."""
    return seed_timestamp(utcnow())


# --- /webjs/health ----------------------------------------------------------------------

class MemoryUsageSchema(Schema):
    """``memoryUsage`` of /webjs/health: the seed's fields (bytes) and the browsers' memory."""

    rss = fields.Integer(allow_none=True, metadata={"description": "This API process's resident memory, bytes."})
    heap_total = fields.Integer(data_key="heapTotal", allow_none=True,
                                metadata={"description": "Always null (the seed's Node.js heap)."})
    heap_used = fields.Integer(data_key="heapUsed", allow_none=True,
                               metadata={"description": "Always null (the seed's Node.js heap)."})
    external = fields.Integer(allow_none=True, metadata={"description": "Always null (the seed's Node.js heap)."})
    browsers = fields.Integer(allow_none=True, metadata={
        "description": "Browsers' memory (PSS) summed over the live slots, bytes; null when Redis does not answer."})


class SlotHealthSchema(Schema):
    """One browser slot in /webjs/health."""

    name = fields.String()
    host = fields.String(allow_none=True, metadata={
        "description": "Only for an operator (admin API key or METRICS_TOKEN); null when the slot is not alive."})
    alive = fields.Boolean(metadata={"description": "Its heartbeat is fresh."})
    capacity = fields.Integer(allow_none=True, metadata={"description": "Null when the slot is not alive."})
    used = fields.Integer(metadata={"description": "Sessions placed there, per the database."})
    sessions_running = fields.Integer(metadata={"description": "Browsers its last heartbeat reported."})
    browser_memory_bytes = fields.Integer(metadata={"description": "Their memory (PSS), summed."})


class HealthSchema(Schema):
    """The body of GET /webjs/health."""

    status = fields.String(validate=validate.OneOf(["healthy", "degraded", "unhealthy"]), metadata={
        "description": "healthy when the database, Redis and the profile store answer; degraded (still 200) when "
                       "only Redis does not (sends are accepted and go out when it is back) or a READY session "
                       "cannot send (see not_sending_sessions); unhealthy (503) when the database or the "
                       "profile store does not."})
    timestamp = fields.String(metadata={"description": "ISO 8601, UTC."})
    active_sessions = fields.Integer(allow_none=True, metadata={
        "description": "Sessions holding a place on a slot (a browser runs or starts for them)."})
    total_sessions = fields.Integer(allow_none=True)
    s3_connection = fields.Boolean(metadata={
        "description": "The profile store (S3 bucket, or the local folder without S3_BUCKET) is usable."})
    network_connectivity = fields.Boolean(metadata={
        "description": "Redis answers and at least one slot worker is alive."})
    auth_folder_status = fields.Boolean(metadata={"description": "Same as s3_connection: where logins are kept."})
    memory_usage = fields.Nested(MemoryUsageSchema)
    uptime = fields.Integer(metadata={"description": "Seconds since the API started."})
    slots = fields.List(fields.Nested(SlotHealthSchema))
    queue_depth = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Tasks waiting per queue: control and every registered slot's; empty when Redis does "
                       "not answer."})
    database = fields.Boolean()
    redis = fields.Boolean()
    not_sending_sessions = fields.Integer(allow_none=True, metadata={
        "description": "READY sessions with a message waiting unsent for STUCK_TIMEOUT_SECONDS and nothing sent "
                       "meanwhile (their /status says NOT_SENDING); null when the database does not answer."})


# No credentials, or an admin API key / METRICS_TOKEN for the full answer.
OPTIONAL_OPERATOR = [{}, {"ApiKey": []}, {"Bearer": []}]


@blp.route("/webjs/health")
class Health(MethodView):
    """GET /webjs/health."""

    @blp.doc(security=OPTIONAL_OPERATOR)
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database or the profile store does not "
                                                            "answer: the same body, status unhealthy.")
    def get(self):
        """The service's health: the seed's fields, plus slots, queues, database and Redis."""
        p = probes()
        counts = placed_per_slot(p.db())
        view = read_redis(p.services.redis)
        store_ok = p.store_ok()
        total, used = counts if counts else (None, {})
        essential = counts is not None and store_ok  # without these nothing can be accepted or kept
        stuck = not_sending(p.db(), timedelta(seconds=p.services.settings.stuck_timeout_seconds))
        status = "unhealthy" if not essential else "healthy" if view is not None and not stuck else "degraded"
        body = {
            "status": status,
            "timestamp": iso_now(),
            "active_sessions": sum(used.values()) if counts else None,
            "total_sessions": total,
            "s3_connection": store_ok,
            "network_connectivity": bool(view and view.live),
            "auth_folder_status": store_ok,
            "memory_usage": {
                "rss": rss_bytes(), "heap_total": None, "heap_used": None, "external": None,
                "browsers": sum(sum(s.sessions.values()) for s in view.live) if view else None,
            },
            "uptime": p.uptime(),
            "slots": slot_rows(view.live if view else [], view.known if view else set(), used,
                               hosts=is_operator(request)),
            "queue_depth": view.queue_depth if view else {},
            "database": counts is not None,
            "redis": view is not None,
            "not_sending_sessions": None if stuck is None else len(stuck),
        }
        return body, 503 if status == "unhealthy" else 200


# --- /metrics ---------------------------------------------------------------------------

class ServiceCollector(Collector):
    """Reads the database and Redis on every scrape; a source that does not answer leaves
    its families out (and ``wa_dependency_up`` at 0) instead of failing the scrape. With
    ``detail`` (the operators' registry) slots carry their host and browsers their session."""

    def __init__(self, probes: Probes, detail: bool = False):
        self.probes = probes
        self.detail = detail

    def collect(self):
        """The families of one scrape: ``wa_dependency_up`` per dependency, then the database's
        and Redis's families when each answered."""
        up = GaugeMetricFamily("wa_dependency_up", "1 when the dependency answered this scrape.",
                               labels=["dependency"])
        db_families = self._database()
        redis_families = self._redis()
        up.add_metric(["database"], float(db_families is not None))
        up.add_metric(["redis"], float(redis_families is not None))
        up.add_metric(["profile_store"], float(self.probes.store_ok()))
        yield up
        yield from db_families or []
        yield from redis_families or []

    def _database(self) -> list | None:
        try:
            db = self.probes.db()
            with db() as s:
                sessions = dict(s.execute(select(WhatsAppSession.status, func.count())
                                          .group_by(WhatsAppSession.status)).all())
                messages = s.execute(select(Message.status, func.count(), func.count(Message.sent_at))
                                     .group_by(Message.status)).all()
                recent = s.execute(select(Message.created_at, Message.sent_at)
                                   .where(Message.sent_at >= utcnow() - LATENCY_WINDOW)
                                   .order_by(Message.sent_at.desc()).limit(LATENCY_MAX_ROWS)).all()
                waiting = s.execute(select(Message.wait_reason, func.count())
                                    .where(Message.status == MessageStatus.SCHEDULED.value)
                                    .group_by(Message.wait_reason)).all()
                stuck = stuck_sessions(s, timedelta(seconds=self.probes.services.settings.stuck_timeout_seconds))
                families = [*_session_families(sessions), *_message_families(messages),
                            *_latency_families(recent), _waiting_family(waiting),
                            GaugeMetricFamily("wa_sessions_not_sending", "READY sessions with a message waiting "
                                              "unsent for STUCK_TIMEOUT_SECONDS and nothing sent meanwhile.",
                                              value=len(stuck))]
                try:
                    deliveries = dict(s.execute(select(WebhookDelivery.status, func.count())
                                                .group_by(WebhookDelivery.status)).all())
                except SQLAlchemyError as exc:  # a database migrated before the webhook outbox
                    log.debug("webhook_deliveries unreadable: %s", exc)
                else:
                    families.append(_by_status("wa_webhook_deliveries", "Webhook deliveries by status.",
                                               [d.value for d in DeliveryStatus], deliveries))
            return families
        except DB_ERRORS as exc:
            log.warning("metrics: database unavailable: %s", exc)
            return None

    def _redis(self) -> list | None:
        view = read_redis(self.probes.services.redis)
        if view is None:
            return None
        depth = GaugeMetricFamily("wa_queue_depth", "Tasks waiting in the queue.", labels=["queue"])
        for queue, n in view.queue_depth.items():
            depth.add_metric([queue], n)
        live = {s.name: s for s in view.live}
        slot_up = GaugeMetricFamily("wa_slot_up", "1 while the slot's heartbeat is fresh.",
                                    labels=["slot", "host"] if self.detail else ["slot"])
        for name in sorted(view.known):
            host = [live[name].host if name in live else ""] if self.detail else []
            slot_up.add_metric([name, *host], float(name in live))
        capacity = GaugeMetricFamily("wa_slot_capacity", "Browsers the live slot can run.", labels=["slot"])
        slot_memory = GaugeMetricFamily("wa_slot_browser_memory_bytes", "Memory (PSS) of the slot's browsers, "
                                        "from its last heartbeat.", labels=["slot"])
        memory = GaugeMetricFamily("wa_browser_memory_bytes", "Memory (PSS) of a session's browser, "
                                   "from its slot's last heartbeat.", labels=["slot", "session"])
        for info in view.live:
            capacity.add_metric([info.name], info.capacity)
            slot_memory.add_metric([info.name], sum(info.sessions.values()))
            for session_id, pss in sorted(info.sessions.items()):
                memory.add_metric([info.name, session_id], pss)
        return [depth, slot_up, capacity, slot_memory, *([memory] if self.detail else []),
                *_send_counter_families(self.probes.services.redis)]


# What a scheduled message waits for, from its wait_reason (workers.send_rules writes them).
WAIT_KINDS = (("pacing", "pacing"), ("restricted: ", "restricted"), ("offline", "offline"),
              ("circuit open", "breaker"), ("retrying after", "retry"), ("another attempt", "busy"))


def wait_kind(reason: str | None) -> str:
    """'pacing: gap between sends' -> 'pacing'; what no kind names -> 'other'."""
    return next((kind for prefix, kind in WAIT_KINDS if (reason or "").startswith(prefix)), "other")


def _waiting_family(rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily("wa_messages_waiting", "Scheduled messages by what they wait for: pacing (gap, "
                               "hourly or daily cap), offline, restricted, breaker, retry, busy, other.",
                               labels=["reason"])
    counts = dict.fromkeys([kind for _prefix, kind in WAIT_KINDS] + ["other"], 0)
    for reason, n in rows:
        counts[wait_kind(reason)] += n
    for kind, n in counts.items():
        family.add_metric([kind], n)
    return family


def _send_counter_families(client: redis.Redis) -> list:
    """The recorder's counters (``messaging.send_metrics``): outcomes and latencies of sends."""
    try:
        outcomes, buckets, total = send_metrics.read(client)
    except REDIS_ERRORS as exc:  # went away since the slots were read: left out this scrape
        log.warning("redis unavailable: %s", exc)
        return []
    sends = CounterMetricFamily("wa_sends", "Messages that reached an outcome (sent, failed, cancelled), as "
                                "the recorder recorded them.", labels=["outcome"])
    for outcome, n in outcomes.items():
        sends.add_metric([outcome], n)
    latency = HistogramMetricFamily("wa_send_duration_seconds", "Acceptance to send (sent_at - created_at) of "
                                    "every message sent, pacing and waits included.",
                                    buckets=buckets, sum_value=total)
    return [sends, latency]


def _by_status(name: str, documentation: str, statuses: list[str], counts: dict[str, int]) -> GaugeMetricFamily:
    """Every known status (0 included), and any other found in the table."""
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in [*statuses, *sorted(set(counts) - set(statuses))]:
        family.add_metric([status], counts.get(status, 0))
    return family


def _session_families(counts: dict[str, int]) -> list:
    return [_by_status("wa_sessions", "Sessions by status.", [s.value for s in SessionStatus], counts)]


def _message_families(rows) -> list:
    counts = {status: n for status, n, _sent in rows}
    outcome = GaugeMetricFamily("wa_messages_outcome", "Messages sent (sent_at set), failed or cancelled, in the "
                                "table now (a gauge: deleted jobs drop out; for rates see wa_sends_total).",
                                labels=["outcome"])
    outcome.add_metric(["sent"], sum(sent for _status, _n, sent in rows))
    outcome.add_metric(["failed"], counts.get(MessageStatus.FAILED.value, 0))
    outcome.add_metric(["cancelled"], counts.get(MessageStatus.CANCELLED.value, 0))
    return [_by_status("wa_messages", "Messages by status.", [s.value for s in MessageStatus], counts), outcome]


def _latency_families(rows) -> list:
    latencies = sorted(max(0.0, (sent - created).total_seconds()) for created, sent in rows)
    window = f"{int(LATENCY_WINDOW.total_seconds() // 60)} minutes"
    summary = GaugeMetricFamily("wa_send_latency_seconds", f"Acceptance to send (sent_at - created_at) of the "
                                f"messages sent in the last {window} (at most {LATENCY_MAX_ROWS}); NaN when none.",
                                labels=["quantile"])
    for q in LATENCY_QUANTILES:
        summary.add_metric([str(q)], quantile(latencies, q))
    count = GaugeMetricFamily("wa_send_latency_seconds_count", "Messages the send latency quantiles are over.",
                              value=len(latencies))
    return [summary, count]


@blp.route("/metrics")
class Metrics(MethodView):
    """GET /metrics (Prometheus)."""

    @blp.doc(security=OPTIONAL_OPERATOR, responses={"200": {
        "description": "Prometheus text exposition format.", "content": {
            CONTENT_TYPE_LATEST.partition(";")[0]: {"schema": {"type": "string"}}}}})
    def get(self):
        """Prometheus metrics: sessions, messages, send latency, queues, slots, browsers, webhooks.

        Per-session browser memory and slot hosts only for an operator (admin API key or
        METRICS_TOKEN)."""
        p = probes()
        registry = p.operator_registry if is_operator(request) else p.registry
        response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
        response.vary.update(("Authorization", "X-API-Key"))
        return response
