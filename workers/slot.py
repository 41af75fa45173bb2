"""A slot worker: one Celery worker that consumes only its own queue and owns the
Chrome of every session placed on it.

Commands for a session (initialize, send, stop) arrive on ``slot.<name>`` and run one
at a time, in order (solo pool).  A monitor thread watches every open page and
publishes each state change; a heartbeat thread keeps the slot registered.  The
worker holds no database connection: everything it learns goes out as events.

Run: ``SLOT_NAME=slot-1 python -m workers.slot``
"""
from __future__ import annotations

import json
import logging
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ProbeTimeout
from dataclasses import dataclass, field
from pathlib import Path

import redis
from selenium.common.exceptions import WebDriverException

from browser.chrome import close_gracefully, kill_browser, kill_orphans, launch_chrome, process_trees_pss
from browser.qr import qr_data_url
from browser.whatsapp import (
    ACK_LEVELS,
    PageSnapshot,
    PageState,
    SendError,
    WhatsAppWeb,
    ack_rank,
    message_key,
    unknown_dialogs,
)
from models.states import NOT_READY_MESSAGE, DisconnectReason, MessageStatus, SessionStatus
from settings import Settings
from storage.profiles import LOGIN_PARTS, make_profile_store, session_name
from workers import slots
from workers.events import EventBus
from workers.media import Media, MediaError, MediaLimits, fetch_media, media_from_base64
from workers.netguard import AllowList
from workers.outage import ride_out_client
from workers.pacing import CircuitBreaker, Claims, Pacer, PacingPolicy

log = logging.getLogger("slot")

DISCONNECTED = "Session is disconnected"
OFFLINE = "WhatsApp is not connected (the phone or the network is offline)"
DONE_TTL = 7 * 24 * 3600
MAX_ACK_WATCHES = 1000  # per session; the oldest are dropped first
FIRST_BACKUP_DELAY = 5.0  # seconds after READY
MEMORY_EVERY = 15.0  # seconds between measurements of the browsers' memory
LOGGED_IN = frozenset({PageState.CONNECTED, PageState.TIMEOUT, PageState.CONFLICT})
ACK_STATUS = {"delivered": MessageStatus.DELIVERED, "read": MessageStatus.READ}
MAX_FAILED_PROBES = 20  # probes failing in a row on a browser that still answers (navigations)
# Screens the session waits out with its browser running (READY again when they go).
WAIT_OUT = {PageState.TEMP_BANNED: DisconnectReason.TEMP_BANNED, PageState.APP_LOCKED: DisconnectReason.APP_LOCKED}
# Screens that need a person or another browser: the session stops, its login is kept.
GIVE_UP = {PageState.TOS_BLOCKED: DisconnectReason.TOS_BLOCKED,
           PageState.UNSUPPORTED_BROWSER: DisconnectReason.UNSUPPORTED_BROWSER,
           PageState.NEEDS_UPDATE: DisconnectReason.NEEDS_UPDATE}


def acks_key(session_id: str) -> str:
    """Redis hash of a session's sent messages whose delivered / read acks are still to
    come (serialized WhatsApp id -> AckWatch as JSON): they outlive the slot's process."""
    return f"wa:acks:{session_id}"


class SessionOffline(Exception):
    """The session is logged in but cannot send right now; trying later can help."""


class MediaUnavailable(SendError):
    def __init__(self, error: MediaError):
        super().__init__(str(error))
        self.permanent = error.permanent


@dataclass
class AckWatch:
    """A sent message whose delivered / read acks are still to come."""

    message_id: str
    job_id: str
    peer: str
    level: str = "sent"
    at: float = 0.0  # when it was sent (epoch seconds): the order of a session's watches


@dataclass
class BrowserSession:
    session_id: str
    epoch: int
    page: WhatsAppWeb
    lock: threading.RLock = field(default_factory=threading.RLock)
    state: PageState = PageState.OPENING
    reported: SessionStatus | None = None
    qr: str | None = None
    pairing_code: str | None = None
    qr_reloads: int = 0
    takeovers: int = 0
    acks: dict[str, AckWatch] = field(default_factory=dict)
    next_backup: float | None = None  # monotonic time of the next backup while READY
    next_probe: float = 0.0  # monotonic time of the next look at the page
    backing_up: bool = False
    reason: str | None = None  # the reason last published with DISCONNECTED
    web_version: str | None = None  # the page's build (window.Debug.VERSION)
    had_login: bool = False  # the page was READY once: its profile holds a login worth saving
    unknown_since: float | None = None  # monotonic time the page stopped matching any known state
    failed_probes: int = 0  # probes failing in a row while the browser still answers
    update_reloads: int = 0  # reloads tried on NEEDS_UPDATE
    reported_dialogs: set[str] = field(default_factory=set)  # unknown dialogs already reported

    @property
    def driver(self):
        return self.page.driver


class SlotRuntime:
    """Everything a slot worker process owns. One per process, started lazily."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None, bus: EventBus | None = None):
        self.settings = settings
        # Commands wait out a Redis outage (a send that went out records its outcome when
        # Redis is back); a slot that is stopping does not wait.
        self.redis = client or ride_out_client(settings.redis_url, give_up=lambda: self._stop.is_set())
        self.bus = bus or EventBus(self.redis)
        self.store = make_profile_store(settings)
        self.media_limits = MediaLimits(media_bytes=settings.media_max_mb * 1024 * 1024,
                                        document_bytes=settings.document_max_mb * 1024 * 1024,
                                        timeout=settings.media_fetch_timeout)
        self.media_allow = AllowList.parse(settings.media_allow_networks)
        self.pacer = Pacer(self.redis)
        self.breaker = CircuitBreaker(self.redis, settings.breaker_threshold, settings.breaker_cooldown)
        self.claims = Claims(self.redis)
        self.default_pacing = PacingPolicy(settings.pacing_min_gap, settings.pacing_max_gap,
                                           settings.hourly_cap, settings.daily_cap)
        self.sessions: dict[str, BrowserSession] = {}
        self._crashes: dict[str, list[float]] = {}  # session id -> monotonic times of its browser's crashes
        self._stopped: dict[str, int] = {}  # session id -> the newest placement (epoch) told to stop
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # This life of the slot: placements older than it died with an earlier one, and
        # a send claim held by an earlier life of this slot is a dead one.
        self._memory: dict[str, int] = {}  # the last measurement, sent with each heartbeat
        self.started_ms = time.time_ns() // 1_000_000
        self.boot_id = secrets.token_hex(4)
        # Page probes run here, so that a hung Chrome costs the monitor a timeout, not its life.
        self._probes = ThreadPoolExecutor(max_workers=settings.slot_capacity + 2, thread_name_prefix="probe")
        self._backups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup")

    # --- lifecycle --------------------------------------------------------------------
    def start(self, heartbeat: bool = True) -> None:
        """Register the slot (unless ``heartbeat`` is False: a canary or a test) and watch pages."""
        loops = [(self._monitor_loop, "monitor")]
        orphans = kill_orphans(self.settings.slot_name)
        if orphans:
            log.warning("killed %d Chrome processes left by a previous run of %s", orphans, self.settings.slot_name)
        if heartbeat:
            self.bus.slot_started(self.settings.slot_name, self.started_ms)
            self._beat()
            loops.append((self._heartbeat_loop, "heartbeat"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=f"{self.settings.slot_name}-{name}", daemon=True)
            thread.start()
        log.info("slot %s started (capacity %d)", self.settings.slot_name, self.settings.slot_capacity)

    def stopping(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """A clean stop: the slot leaves, its sessions say so, browsers close."""
        self._stop.set()
        try:
            slots.unregister(self.redis, self.settings.slot_name)
            for bs in list(self.sessions.values()):
                self._publish(bs, SessionStatus.DISCONNECTED, reason="WORKER_STOPPED")
        except redis.RedisError as exc:  # the control worker's reaper reports them instead
            log.warning("could not report the stop: %s", exc)
        for session_id in list(self.sessions):
            self._close(session_id, save=True)
        self._probes.shutdown(wait=False, cancel_futures=True)
        self._backups.shutdown(wait=True)

    def _beat(self) -> None:
        # The heartbeat goes first, with the last measurement: a busy machine must not
        # make a live slot look dead.
        running = list(self.sessions.values())
        sessions = {bs.session_id: self._memory.get(bs.session_id, 0) for bs in running}
        versions = {bs.session_id: bs.web_version for bs in running if bs.web_version}
        slots.heartbeat(self.redis, self.settings.slot_name, self.settings.slot_capacity,
                        self.settings.slot_heartbeat_ttl, host=self.settings.slot_host, sessions=sessions,
                        web_versions=versions)

    def memory(self) -> dict[str, int]:
        """Each running session's browser memory (its whole process tree, PSS bytes)."""
        browsers = {bs.session_id: getattr(bs.driver, "browser_pid", None) for bs in list(self.sessions.values())}
        trees = process_trees_pss([pid for pid in browsers.values() if pid])
        usage = {sid: trees.get(pid, 0) if pid else 0 for sid, pid in browsers.items()}
        self._memory = usage
        ceiling = self.settings.memory_ceiling_mb * 1024 * 1024
        if ceiling:
            for session_id, used in usage.items():
                bs = self.sessions.get(session_id)
                if used > ceiling and bs is not None and bs.state == PageState.CONNECTED and not bs.backing_up:
                    bs.backing_up = True
                    log.warning("session=%s browser uses %d MB, over %d MB: recycling it", session_id,
                                used // 2**20, self.settings.memory_ceiling_mb)
                    self._backups.submit(self._recycle, bs)
        return usage

    def _recycle(self, bs: BrowserSession) -> None:
        """A fresh browser for the same placement: the login is saved, Chrome restarted, restored."""
        try:
            with bs.lock:
                if not self._may_restart(bs):
                    return
                self._close(bs.session_id, save=True)
            if self._may_restart(bs):
                self.initialize(bs.session_id, bs.epoch)
        except Exception:
            log.exception("session=%s recycle failed", bs.session_id)

    def _heartbeat_loop(self) -> None:
        """Beat every third of the TTL. Through a Redis outage a beat waits for Redis (see
        ride_out_client) or fails and the next one tries again; the first beat after it
        registers the slot again, also in a Redis that restarted empty."""
        last_measure = 0.0
        every = max(1.0, self.settings.slot_heartbeat_ttl / 3)
        failing = False
        while not self._stop.wait(every):
            try:
                started = time.monotonic()
                self._beat()
                if failing or time.monotonic() - started > every:  # it waited for Redis
                    log.info("heartbeat back after a Redis outage: slot %s registered with %d sessions",
                             self.settings.slot_name, len(self.sessions))
                failing = False
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
                failing = True
            if time.monotonic() - last_measure >= MEMORY_EVERY:
                last_measure = time.monotonic()
                try:
                    self.memory()
                except Exception:  # a measurement must never stop the heartbeat
                    log.exception("memory measurement failed")

    # --- commands ---------------------------------------------------------------------
    def initialize(self, session_id: str, epoch: int) -> None:
        current = self.sessions.get(session_id)
        if current is not None:
            if current.epoch >= epoch and self._alive(current):
                log.info("session=%s epoch=%s already running; initialize is a no-op", session_id, epoch)
                return
            self._close(session_id, save=True)  # an older placement of it: its login is kept
        profile_dir = self._profile_dir(session_id)
        if not any((profile_dir / part).exists() for part in LOGIN_PARTS):
            # A new host or a wiped disk: bring the saved login back before Chrome starts.
            try:
                if self.store.restore(session_id, profile_dir):
                    log.info("session=%s login restored from the profile store", session_id)
            except OSError as exc:  # the store is unreachable: start anyway; the page shows a QR
                log.warning("session=%s login not restored (%s); it will need a QR scan", session_id, exc)
        try:
            driver = launch_chrome(
                chromium_path=self.settings.chromium_path, chromedriver_path=self.settings.chromedriver_path,
                profile_dir=profile_dir, work_dir=Path(self.settings.browser_work_dir),
                user_agent=self.settings.user_agent, headless=self.settings.headless,
                owner=self.settings.slot_name,
            )
        except Exception as exc:
            log.exception("session=%s chrome failed to start", session_id)
            self.bus.session(session_id, epoch, SessionStatus.DISCONNECTED, reason="BROWSER_FAILED",
                             error=str(exc)[:500])
            return
        page = WhatsAppWeb(driver, self.settings.wa_web_url)
        bs = BrowserSession(session_id, epoch, page)
        bs.acks = self._saved_ack_watches(session_id)
        with bs.lock:
            with self._lock:
                self.sessions[session_id] = bs
            try:
                page.open()
            except WebDriverException as exc:
                log.warning("session=%s page failed to open: %s", session_id, exc)
        log.info("session=%s epoch=%s browser started", session_id, epoch)

    def stop(self, session_id: str, epoch: int, forget: bool) -> None:
        current = self.sessions.get(session_id)
        if current is not None and current.epoch > epoch:
            log.info("session=%s stop for epoch %s ignored (running %s)", session_id, epoch, current.epoch)
            return
        self._stopped[session_id] = max(epoch, self._stopped.get(session_id, 0))
        self._close(session_id, forget=forget, save=not forget)

    def _may_restart(self, bs: BrowserSession) -> bool:
        """Whether a browser this runtime replaces by itself (after a crash, a memory
        ceiling, an unknown page) may still be started: the slot is not stopping, no stop
        came for its placement meanwhile, and no newer placement runs."""
        current = self.sessions.get(bs.session_id)
        return (not self._stop.is_set() and self._stopped.get(bs.session_id, -1) < bs.epoch
                and (current is None or current is bs))

    def session_for_send(self, session_id: str, epoch: int) -> BrowserSession:
        """The READY browser of a session; LookupError (for good) or SessionOffline (for now)."""
        bs = self.sessions.get(session_id)
        if bs is None or bs.epoch != epoch:
            raise LookupError(DISCONNECTED)
        if bs.state in (PageState.TIMEOUT, PageState.CONFLICT):
            raise SessionOffline(OFFLINE)
        if bs.state != PageState.CONNECTED:
            raise LookupError(NOT_READY_MESSAGE)
        return bs

    def deliver(self, session_id: str, epoch: int, message_id: str, to: str, text: str,
                media: list[dict] | None = None, *, resume: bool = False) -> str:
        """Send one message (text, or media with the text as caption of the first file);
        return its WhatsApp id. Media is fetched and checked before the page is touched.

        Each send step records, just before it commits, the newest row of the chat
        (``wa:msg:<id>:commit:<part>``). With ``resume`` (an earlier attempt of this
        message may have died mid-send) a part whose commit is recorded is first looked
        for in the chat, and only sent if it is not there.

        Raises LookupError (session gone or not ready), SessionOffline, or SendError.
        """
        bs = self.session_for_send(session_id, epoch)
        with tempfile.TemporaryDirectory(prefix="wa-media-", dir=self._media_dir()) as tmp:
            files = [self._media_file(item, Path(tmp)) for item in media or []]
            parts = files or [None]
            ids: list[str] = []
            with bs.lock:
                for i, item in enumerate(parts):
                    part_key, commit_key = f"wa:msg:{message_id}:part:{i}", f"wa:msg:{message_id}:commit:{i}"
                    done = self.redis.get(part_key)
                    if done:  # a retry after a partial send skips the parts that went out
                        ids.append(done.decode())
                        continue
                    caption = text if i == 0 else ""
                    committed = self.redis.get(commit_key) if resume else None
                    wa_id = None
                    if committed is not None:
                        wa_id = bs.page.find_sent(to, text=caption, after_row=committed.decode() or None,
                                                  timeout=self.settings.send_timeout)
                        if wa_id:
                            log.info("message=%s part %d was sent before the crash (%s)", message_id, i,
                                     message_key(wa_id))

                    def on_commit(after_row: str | None, key=commit_key) -> None:
                        self.redis.set(key, after_row or "", ex=DONE_TTL)

                    if wa_id is None and item is None:
                        wa_id = bs.page.send_text(to, text, timeout=self.settings.send_timeout, on_commit=on_commit)
                    elif wa_id is None:
                        wa_id = bs.page.send_file(to, item.path, as_media=item.kind == "media", caption=caption,
                                                  timeout=self.settings.send_timeout + self.settings.media_fetch_timeout,
                                                  on_commit=on_commit)
                    self.redis.set(part_key, wa_id, ex=DONE_TTL)
                    ids.append(wa_id)
            return ids[0]

    def _media_dir(self) -> Path:
        path = Path(self.settings.browser_work_dir) / "media"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _media_file(self, item: dict, dest: Path) -> Media:
        try:
            if item.get("url"):
                return fetch_media(item["url"], dest, limits=self.media_limits, allow=self.media_allow)
            return media_from_base64(item.get("filename") or "file", item.get("mimetype") or "",
                                     item.get("data") or "", dest, self.media_limits)
        except MediaError as exc:
            raise MediaUnavailable(exc) from exc

    def recipient_wid(self, session_id: str, to: str) -> str | None:
        """The id WhatsApp answered with for ``to`` (``<digits>@c.us``) when the session's page
        last opened its chat; None when unknown."""
        bs = self.sessions.get(session_id)
        return bs.page.recipients.get(to) if bs is not None else None

    def claim_holder(self, task_id: str) -> str:
        return f"{self.settings.slot_name}|{self.boot_id}|{task_id}"

    def claim_is_dead(self, holder: str) -> bool:
        """A claim by an earlier life of this slot: that process is gone (one per slot name)."""
        slot, _, rest = holder.partition("|")
        boot = rest.partition("|")[0]
        return slot == self.settings.slot_name and bool(boot) and boot != self.boot_id

    def watch_acks(self, session_id: str, wa_id: str, message_id: str, job_id: str, peer: str) -> None:
        """Follow a sent message's acks; the monitor reports delivered and read. The watch
        is kept in Redis too, so a restarted slot (or another one after a failover) goes on
        following it."""
        watch = AckWatch(message_id, job_id, peer, at=time.time())
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(acks_key(session_id), wa_id, json.dumps(vars(watch)))
            pipe.expire(acks_key(session_id), DONE_TTL)
            pipe.execute()
        except redis.RedisError as exc:  # followed in memory all the same, until a restart
            log.warning("session=%s ack watch of message=%s not kept: %s", session_id, message_id, exc)
        bs = self.sessions.get(session_id)
        if bs is None:
            return
        with bs.lock:
            bs.acks[wa_id] = watch
            while len(bs.acks) > MAX_ACK_WATCHES:
                self._unwatch(bs, next(iter(bs.acks)))

    def _saved_ack_watches(self, session_id: str) -> dict[str, AckWatch]:
        """The watches an earlier browser of the session left, oldest first (newest
        MAX_ACK_WATCHES kept)."""
        try:
            saved = self.redis.hgetall(acks_key(session_id))
        except redis.RedisError as exc:
            log.warning("session=%s ack watches not read: %s", session_id, exc)
            return {}
        watches = []
        for wa_id, body in saved.items():
            try:
                watches.append(((wa_id.decode() if isinstance(wa_id, bytes) else wa_id), AckWatch(**json.loads(body))))
            except (TypeError, ValueError):
                continue
        watches.sort(key=lambda item: item[1].at)
        return dict(watches[-MAX_ACK_WATCHES:])

    def _unwatch(self, bs: BrowserSession, wa_id: str) -> None:
        bs.acks.pop(wa_id, None)
        try:
            self.redis.hdel(acks_key(bs.session_id), wa_id)
        except redis.RedisError as exc:  # the watch comes back after a restart, and is done again
            log.warning("session=%s ack watch not dropped: %s", bs.session_id, exc)

    def request_pairing_code(self, session_id: str, epoch: int, phone: str) -> str:
        """Switch the login page to "link with phone number"; the code also goes out as an event."""
        bs = self.sessions.get(session_id)
        if bs is None or bs.epoch != epoch:
            raise LookupError(DISCONNECTED)
        with bs.lock:
            code = bs.page.request_pairing_code(phone, timeout=self.settings.send_timeout)
            self._on_pairing_code(bs, code)
        return code

    # --- watching pages ---------------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.settings.page_probe_interval):
            for bs in list(self.sessions.values()):
                now = time.monotonic()
                if now < bs.next_probe:
                    continue
                if not bs.lock.acquire(blocking=False):
                    continue  # a command is using the page; look next round
                try:
                    self.observe(bs)
                except Exception:
                    log.exception("session=%s monitor error", bs.session_id)
                finally:
                    bs.lock.release()
                # A READY page changes slowly (acks, a banner): it is looked at less often, which
                # leaves the CPU to the sends. Logging in is watched closely.
                steady = bs.state == PageState.CONNECTED
                bs.next_probe = now + (self.settings.ready_probe_interval if steady else 0)

    def observe(self, bs: BrowserSession) -> None:
        """Read the page once (bounded by PROBE_TIMEOUT) and publish what changed."""
        probe = self._probes.submit(bs.page.snapshot, list(bs.acks))
        try:
            snap = probe.result(timeout=self.settings.probe_timeout)
        except ProbeTimeout:
            if not self._stop.is_set():
                log.warning("session=%s browser hangs (no answer in %.1f s)", bs.session_id,
                            self.settings.probe_timeout)
                self._crashed(bs)
            return
        except Exception as exc:  # WebDriverException, or chromedriver itself gone (urllib3 errors)
            if self._stop.is_set():
                return
            # A page that reloads itself (an update, the scheduled reload after linking)
            # fails a probe or two while the browser answers: followed, not a crash.
            bs.failed_probes += 1
            if bs.failed_probes < MAX_FAILED_PROBES and self._answers(bs):
                log.debug("session=%s probe failed during a navigation: %s", bs.session_id,
                          (str(exc).splitlines() or [""])[0][:200])
                return
            log.warning("session=%s browser unreachable: %s", bs.session_id,
                        (str(exc).splitlines() or [""])[0][:200])
            self._crashed(bs)
            return
        bs.failed_probes = 0
        self._on_snapshot(bs, snap)

    def _answers(self, bs: BrowserSession) -> bool:
        """Whether the browser itself still answers (a cheap round trip, bounded)."""
        try:
            self._probes.submit(lambda: bs.driver.current_url).result(timeout=self.settings.probe_timeout)
            return True
        except Exception:  # gone, hung, or chromedriver gone
            return False

    def _crashed(self, bs: BrowserSession) -> None:
        """A browser that died or hangs: killed, then started again from its saved login
        (up to MAX_CRASH_RESTARTS times an hour), else the session ends BROWSER_CRASHED."""
        now = time.monotonic()
        recent = [t for t in self._crashes.get(bs.session_id, []) if now - t < 3600] + [now]
        self._crashes[bs.session_id] = recent
        restart = bs.had_login and len(recent) <= self.settings.max_crash_restarts
        reason = DisconnectReason.BROWSER_RESTARTING if restart else DisconnectReason.BROWSER_CRASHED
        with self._lock:
            if self.sessions.get(bs.session_id) is bs:
                del self.sessions[bs.session_id]
        kill_browser(bs.driver)  # also ends a probe still waiting on it
        try:
            self._publish(bs, SessionStatus.DISCONNECTED, reason=reason)
        except redis.RedisError as exc:  # the control worker's reaper reports the session instead
            log.warning("session=%s crash not reported: %s", bs.session_id, exc)
        if restart:
            log.warning("session=%s browser crashed (%d in the last hour); starting it again", bs.session_id,
                        len(recent))
            self._backups.submit(self._restart_after_crash, bs)

    def _restart_after_crash(self, bs: BrowserSession) -> None:
        """A new browser for a crashed one, from the last verified backup of its login when
        there is one (a killed Chrome may leave its profile half written), else from what
        its profile holds."""
        if not self._may_restart(bs):
            log.info("session=%s stopped meanwhile: not restarted", bs.session_id)
            return
        try:
            if self.store.latest(bs.session_id):
                shutil.rmtree(self._profile_dir(bs.session_id), ignore_errors=True)
        except Exception as exc:  # the store is unreachable: the local profile it is
            log.warning("session=%s backups not listed (%s); restarting from the local profile", bs.session_id, exc)
        try:
            self.initialize(bs.session_id, bs.epoch)
        except Exception:
            log.exception("session=%s restart after a crash failed", bs.session_id)

    def _on_snapshot(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        bs.state = snap.state
        if snap.version:
            bs.web_version = snap.version
        if snap.dialogs:
            self._answer_dialogs(bs, snap)
        if snap.state == PageState.UNKNOWN:
            self._on_unknown_page(bs, snap)
            return
        bs.unknown_since = None
        if snap.state == PageState.UNPAIRED:
            if snap.qr and snap.qr != bs.qr:
                bs.qr, bs.pairing_code = snap.qr, None
                # The image is made once, here; the recorder and the API's QR wait use it as is.
                self._publish(bs, SessionStatus.QR_READY, qr=snap.qr, qr_code=qr_data_url(snap.qr))
            elif snap.pairing_code and snap.pairing_code != bs.pairing_code:
                self._on_pairing_code(bs, snap.pairing_code)  # re-issued by the page
        elif snap.state == PageState.UNPAIRED_IDLE:
            if bs.qr_reloads < self.settings.max_qr_attempts:
                bs.qr_reloads += 1
                bs.page.reload_qr()
            else:
                self._publish(bs, SessionStatus.DISCONNECTED, reason="QR_TIMEOUT")
                self._close(bs.session_id)
        elif snap.state == PageState.PAIRING:
            if bs.reported not in (SessionStatus.AUTHENTICATED, SessionStatus.READY):
                self._publish(bs, SessionStatus.AUTHENTICATED)
        elif snap.state == PageState.CONNECTED:
            bs.had_login = True
            if bs.reported != SessionStatus.READY:
                bs.qr, bs.pairing_code, bs.qr_reloads = None, None, 0
                self._publish(bs, SessionStatus.READY, phone_number=snap.phone_number)
                # A first backup soon (the page writes its login to disk meanwhile), then on the interval.
                bs.next_backup = time.monotonic() + FIRST_BACKUP_DELAY
            elif bs.next_backup is not None and time.monotonic() >= bs.next_backup and not bs.backing_up:
                bs.backing_up = True
                bs.next_backup = time.monotonic() + self.settings.backup_interval
                self._backups.submit(self._backup, bs)
        elif snap.state == PageState.TIMEOUT:
            if bs.reported == SessionStatus.READY:
                # The browser stays; READY follows when the page is back online.
                self._publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.CONNECTION_LOST)
        elif snap.state == PageState.CONNECTING:
            # The start-up popup: the page holds a login but its socket does not come up.
            # Its only button is Log out, so it is waited out; READY follows.
            if bs.reason != DisconnectReason.CONNECTION_LOST:
                self._publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.CONNECTION_LOST)
        elif snap.state in WAIT_OUT:
            # Never answered from here: these screens offer "Log out". The browser stays;
            # READY follows when the screen goes.
            if bs.reason != WAIT_OUT[snap.state]:
                log.warning("session=%s page shows %s", bs.session_id, snap.state.value)
                self._publish(bs, SessionStatus.DISCONNECTED, reason=WAIT_OUT[snap.state])
        elif snap.state == PageState.NEEDS_UPDATE and bs.update_reloads < 1:
            bs.update_reloads += 1
            log.info("session=%s the page asks for an update; reloading it once", bs.session_id)
            bs.page.start_loading(reload=True)
        elif snap.state in GIVE_UP:
            log.warning("session=%s page shows %s; stopping the session (login kept)", bs.session_id,
                        snap.state.value)
            self._publish(bs, SessionStatus.DISCONNECTED, reason=GIVE_UP[snap.state])
            self._backups.submit(self._close, bs.session_id, save=True)  # closing and saving take seconds
            return
        elif snap.state == PageState.CONFLICT:
            if self.settings.conflict_policy == "takeover" and bs.takeovers < self.settings.max_takeovers:
                bs.takeovers += 1
                log.info("session=%s open in another window; taking over (%d/%d)", bs.session_id,
                         bs.takeovers, self.settings.max_takeovers)
                bs.page.take_over()
            else:
                self._publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.CONFLICT)
                self._close(bs.session_id, save=True)
                return
        elif snap.state == PageState.LOGGED_OUT:
            self._publish(bs, SessionStatus.DISCONNECTED, reason="LOGOUT")
            self._close(bs.session_id, forget=True)
            return
        if snap.state in LOGGED_IN and bs.acks:
            self._follow_acks(bs, snap)

    def _answer_dialogs(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        """Press the allow-listed action of every dialog (Continue, OK, Got it, Accept): an
        unanswered "What's new" after linking precedes an unlink (rmyndharis/OpenWA#982).
        A dialog without one is left open, logged and reported once; the dialogs that are
        page states (a conflict, the connecting popup) are the state machine's."""
        bs.page.dismiss_dialogs(snap.dialogs)
        for dialog in unknown_dialogs(snap.dialogs):
            mark = dialog.text[:120]
            if mark in bs.reported_dialogs:
                continue
            log.warning("session=%s a dialog with no allowed action is open (buttons %s)", bs.session_id,
                        list(dialog.buttons))
            self.bus.page_notice(bs.session_id, bs.epoch, "unknown_dialog", text=dialog.text[:500],
                                 buttons=list(dialog.buttons))
            bs.reported_dialogs.add(mark)

    def _on_unknown_page(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        """A page matching no known state: reported after UNKNOWN_PAGE_GRACE (never taken
        for OPENING), recycled with its login saved after STUCK_TIMEOUT_SECONDS."""
        now = time.monotonic()
        if bs.unknown_since is None:
            bs.unknown_since = now
        unknown_for = now - bs.unknown_since
        if unknown_for >= self.settings.unknown_page_grace and bs.reason != DisconnectReason.UNKNOWN_PAGE:
            # The URL without its query: a /send?text= URL holds a message.
            log.warning("session=%s unknown page: title %r, url %s; loading the app again", bs.session_id,
                        snap.title[:100], snap.url.split("?", 1)[0][:200])
            self._publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.UNKNOWN_PAGE)
            bs.page.start_loading()
        if unknown_for >= self.settings.stuck_timeout_seconds and not bs.backing_up:
            log.warning("session=%s unknown page for %.0f s: recycling its browser", bs.session_id, unknown_for)
            bs.backing_up = True
            self._backups.submit(self._recycle, bs)

    def _backup(self, bs: BrowserSession) -> None:
        """Save the login of a READY session to the profile store (a new version)."""
        try:
            key = self.store.save(bs.session_id, self._profile_dir(bs.session_id))
            if key:
                log.info("session=%s backed up (%s)", bs.session_id, key)
                self.bus.backup(bs.session_id, bs.epoch, key)
        except Exception as exc:  # the store is down: the last good version stays; try next time
            log.warning("session=%s backup failed: %s", bs.session_id, exc)
        finally:
            bs.backing_up = False

    def _on_pairing_code(self, bs: BrowserSession, code: str) -> None:
        if code != bs.pairing_code:
            bs.pairing_code, bs.qr = code, None
            self._publish(bs, SessionStatus.QR_READY, pairing_code=code)

    def _follow_acks(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        """Report delivered / read for watched messages.

        A row of the open chat shows its own ack; the chat list shows the ack of each
        chat's last message. A chat's messages are delivered and read in order, so an
        ack seen on a newer message of ours holds for the older ones too.
        """
        floor: dict[str, int] = {}  # peer -> highest ack rank seen on a newer message
        for wa_id, watch in reversed(list(bs.acks.items())):
            seen = floor.get(watch.peer)
            if seen is None:  # the newest watched message of this chat
                seen = ack_rank(snap.chat_acks.get(watch.peer))
            rank = max(seen, ack_rank(snap.acks.get(message_key(wa_id))), ack_rank(watch.level))
            floor[watch.peer] = rank
            # Each step is reported, also when the page showed only the last one (read
            # implies delivered): job polling and webhooks see both.
            for level in ACK_LEVELS[ack_rank(watch.level) + 1:rank + 1]:
                self.bus.message(watch.message_id, watch.job_id, bs.session_id, ACK_STATUS[level].value)
                watch.level = level
            if watch.level == "read":
                self._unwatch(bs, wa_id)

    def _publish(self, bs: BrowserSession, status: SessionStatus, **fields) -> None:
        """Send a status event; the browser's record of what it reported changes only once
        the event is out (a Redis error leaves it to be sent again at the next probe)."""
        log.info("session=%s epoch=%s -> %s %s", bs.session_id, bs.epoch, status.value,
                 fields.get("reason") or "")
        self.bus.session(bs.session_id, bs.epoch, status.value, **fields)
        bs.reported = status
        bs.reason = fields.get("reason")

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _alive(bs: BrowserSession) -> bool:
        try:
            bs.driver.current_url  # noqa: B018 - a cheap round trip to the browser
            return True
        except WebDriverException:
            return False

    def _profile_dir(self, session_id: str) -> Path:
        return Path(self.settings.browser_work_dir) / "profiles" / session_name(session_id)

    def _close(self, session_id: str, forget: bool = False, save: bool = False) -> None:
        """Quit the browser; then keep its login (save) or drop it everywhere (forget)."""
        with self._lock:
            bs = self.sessions.pop(session_id, None)
        if bs is not None:
            try:
                close_gracefully(bs.driver)
            except Exception as exc:  # a crashed browser cannot quit cleanly
                log.info("session=%s quit: %s", session_id, exc)
        if forget:
            shutil.rmtree(self._profile_dir(session_id), ignore_errors=True)
            self.store.delete(session_id)
            self.redis.delete(acks_key(session_id))
        elif save and bs is not None and (bs.state in LOGGED_IN or bs.had_login):
            try:
                key = self.store.save(session_id, self._profile_dir(session_id))
                log.info("session=%s login saved (%s)", session_id, key)
                if key:
                    self.bus.backup(session_id, bs.epoch, key)
            except Exception as exc:  # OSError, or the S3 store's errors
                log.warning("session=%s login not saved: %s", session_id, exc)


_runtime: SlotRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> SlotRuntime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = SlotRuntime(Settings.from_env())
            _runtime.start()
        return _runtime


def main() -> None:
    """Run the slot worker; the process exits with the worker's exit code (non-zero
    after an unrecoverable error, so a supervisor sees the failure)."""
    from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down

    from workers.app import celery
    from workers.logs import setup_logging

    # Run as ``python -m workers.slot`` this file is ``__main__``; the tasks import
    # ``workers.slot``. Both must share that module's one runtime.
    import workers.slot as slot_module

    settings = Settings.from_env()
    setup_logging(settings.log_level)
    worker_ready.connect(lambda **_: slot_module.runtime(), weak=False)
    # Sent as the stop signal arrives: chromedriver gets the same signal, so the monitor
    # must stop probing now or it would report the browsers as crashed.
    worker_shutting_down.connect(lambda **_: slot_module._runtime and slot_module._runtime.stopping(),
                                 weak=False)
    worker_shutdown.connect(lambda **_: slot_module._runtime and slot_module._runtime.shutdown(), weak=False)
    workers = []  # the WorkController, whose exit code worker_main() does not pass on
    worker_init.connect(lambda sender, **_: workers.append(sender), weak=False)
    celery.worker_main([
        "worker", "--pool=solo", "--concurrency=1", f"--queues={settings.slot_queue}",
        f"--hostname={settings.slot_name}@%h", f"--loglevel={settings.log_level}", "--without-gossip",
        "--without-mingle",
    ])
    sys.exit(workers[0].exitcode if workers else 1)


if __name__ == "__main__":
    main()
