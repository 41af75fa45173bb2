"""A slot worker's runtime: the Chrome of every session placed on the slot, and the
threads that watch them. The worker process itself is ``workers.slot``.

Commands for a session (initialize, send, stop) arrive on ``slot.<name>`` and run one
at a time, in order (solo pool).  A monitor thread watches every open page and
publishes each state change; a heartbeat thread keeps the slot registered.  The
worker holds no database connection: everything it learns goes out as events.
"""
from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from selenium.common.exceptions import WebDriverException

from browser.chrome import (
    close_gracefully, kill_browser, kill_orphans, launch_chrome, process_trees_pss, remove_driver_copy,
)
from browser.whatsapp import PageState, WhatsAppWeb
from messaging import slots
from messaging.events import EventBus
from messaging.optouts import OptOutMirror
from messaging.pacing import CircuitBreaker, Claims, Pacer, PacingPolicy
from models.states import NOT_READY_MESSAGE, DisconnectReason, SessionStatus
from settings import Settings
from storage.media import make_media_store
from storage.profiles import LOGIN_PARTS, make_profile_store, session_name
from workers.acks import AckFollower
from workers.browser_session import DISCONNECTED, LOGGED_IN, OFFLINE, BrowserSession, SessionOffline
from workers.contacts import NumberChecks
from workers.delivery import Delivery
from workers.incoming import IncomingFollower
from workers.outage import ride_out_client
from workers.page_monitor import PageMonitor
from workers.send_rules import Availability, Restriction, restriction_reason

log = logging.getLogger("slot")

MEMORY_EVERY = 15.0  # seconds between measurements of the browsers' memory


class SlotRuntime:
    """Everything a slot worker process owns. One per process, started lazily.

    Its parts: the page monitor (``monitor``, a thread), the ack follower (``acks``),
    delivery (``delivery``), number checks and chat reads (``checks``); the runtime itself keeps the browsers' lifecycle (start,
    stop, crash restarts, recycling, backups of the login) and the slot's registration.
    """

    def __init__(self, settings: Settings, client: redis.Redis | None = None, bus: EventBus | None = None):
        self.settings = settings
        # Commands wait out a Redis outage (a send that went out records its outcome when
        # Redis is back); a slot that is stopping does not wait.
        self.redis = client or ride_out_client(settings.redis_url, give_up=lambda: self.stopped.is_set())
        self.bus = bus or EventBus(self.redis)
        self.store = make_profile_store(settings)
        self.pacer = Pacer(self.redis)
        self.breaker = CircuitBreaker(self.redis, settings.breaker_threshold, settings.breaker_cooldown)
        self.claims = Claims(self.redis)
        self.default_pacing = PacingPolicy(settings.pacing_min_gap, settings.pacing_max_gap,
                                           settings.hourly_cap, settings.daily_cap)
        self.sessions: dict[str, BrowserSession] = {}
        self.acks = AckFollower(self.redis, self.bus)
        self.incoming = IncomingFollower(self.redis, self.bus)
        self.delivery = Delivery(settings, self.redis, self.session_for_send, make_media_store(settings))
        self.checks = NumberChecks(settings, self.redis, self.session_for_send)
        self.opt_outs = OptOutMirror(self.redis)
        self.monitor = PageMonitor(self)
        self._crashes: dict[str, list[float]] = {}  # session id -> monotonic times of its browser's crashes
        self._stopped: dict[str, int] = {}  # session id -> the newest placement (epoch) told to stop
        self._lock = threading.Lock()
        self.stopped = threading.Event()  # set when the slot stops: the monitor stops probing
        self._memory: dict[str, int] = {}  # the last measurement, sent with each heartbeat
        # This life of the slot: placements older than it died with an earlier one, and
        # a send claim held by an earlier life of this slot is a dead one.
        self.started_ms = time.time_ns() // 1_000_000
        self.boot_id = secrets.token_hex(4)
        # Page probes run here, so that a hung Chrome costs the monitor a timeout, not its life.
        self.probes = ThreadPoolExecutor(max_workers=settings.slot_capacity + 2, thread_name_prefix="probe")
        # Backups, closes and restarts: they take seconds, off the monitor's thread.
        self.backups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup")

    # --- lifecycle --------------------------------------------------------------------
    def start(self, heartbeat: bool = True) -> None:
        """Register the slot (unless ``heartbeat`` is False: a canary or a test) and watch pages."""
        loops = [(self.monitor.run, "monitor")]
        orphans = kill_orphans(self.settings.slot_name)
        remove_driver_copy(Path(self.settings.browser_work_dir))  # those of runs killed before they could
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
        """The stop signal arrived: the loops stop probing now (chromedriver got the signal
        too), before ``shutdown`` closes the browsers."""
        self.stopped.set()

    def shutdown(self) -> None:
        """A clean stop: the slot leaves, its sessions say so, browsers close."""
        self.stopped.set()
        try:
            slots.unregister(self.redis, self.settings.slot_name)
            for bs in list(self.sessions.values()):
                self.publish(bs, SessionStatus.DISCONNECTED, reason="WORKER_STOPPED")
        except redis.RedisError as exc:  # the control worker's reaper reports them instead
            log.warning("could not report the stop: %s", exc)
        for session_id in list(self.sessions):
            self.close(session_id, save=True)
        self.probes.shutdown(wait=False, cancel_futures=True)
        self.backups.shutdown(wait=True)
        remove_driver_copy(Path(self.settings.browser_work_dir))  # 25 MB a life of the slot

    def _beat(self) -> None:
        # The heartbeat goes first, with the last measurement: a busy machine must not
        # make a live slot look dead.
        running = list(self.sessions.values())
        if any(not self._memory.get(bs.session_id) for bs in running):  # started since the last measurement
            try:
                self.memory()
            except Exception:  # a measurement must never stop the heartbeat
                log.exception("memory measurement failed")
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
                    self.backups.submit(self.recycle, bs)
        return usage

    def recycle(self, bs: BrowserSession) -> None:
        """A fresh browser for the same placement: the login is saved, Chrome restarted, restored."""
        try:
            with bs.lock:
                if not self._may_restart(bs):
                    return
                self.close(bs.session_id, save=True)
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
        while not self.stopped.wait(every):
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
        """Start a browser for placement ``epoch`` of the session (a no-op when that or a newer
        one already runs), restoring its saved login first when the disk has none; a Chrome
        that does not start is reported as DISCONNECTED BROWSER_FAILED."""
        current = self.sessions.get(session_id)
        if current is not None:
            if current.epoch >= epoch and self._alive(current):
                log.info("session=%s epoch=%s already running; initialize is a no-op", session_id, epoch)
                return
            self.close(session_id, save=True)  # an older placement of it: its login is kept
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
                owner=self.settings.slot_name, sandbox=self.settings.chrome_sandbox,
            )
        except Exception as exc:
            log.exception("session=%s chrome failed to start", session_id)
            self.bus.session(session_id, epoch, SessionStatus.DISCONNECTED, reason="BROWSER_FAILED",
                             error=str(exc)[:500])
            return
        page = WhatsAppWeb(driver, self.settings.wa_web_url)
        bs = BrowserSession(session_id, epoch, page)
        bs.acks = self.acks.saved(session_id)
        with bs.lock:
            with self._lock:
                self.sessions[session_id] = bs
            try:
                page.open()
            except WebDriverException as exc:
                log.warning("session=%s page failed to open: %s", session_id, exc)
        log.info("session=%s epoch=%s browser started", session_id, epoch)

    def stop(self, session_id: str, epoch: int, forget: bool) -> None:
        """Stop the session's browser unless a newer placement runs; ``forget`` deletes its
        saved login, else the login is saved first."""
        current = self.sessions.get(session_id)
        if current is not None and current.epoch > epoch:
            log.info("session=%s stop for epoch %s ignored (running %s)", session_id, epoch, current.epoch)
            return
        self._stopped[session_id] = max(epoch, self._stopped.get(session_id, 0))
        self.close(session_id, forget=forget, save=not forget)

    def _may_restart(self, bs: BrowserSession) -> bool:
        """Whether a browser this runtime replaces by itself (after a crash, a memory
        ceiling, an unknown page) may still be started: the slot is not stopping, no stop
        came for its placement meanwhile, and no newer placement runs."""
        current = self.sessions.get(bs.session_id)
        return (not self.stopped.is_set() and self._stopped.get(bs.session_id, -1) < bs.epoch
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

    def availability(self, session_id: str, epoch: int) -> tuple[Availability, Restriction | None]:
        """Whether a send for this placement of the session may go now (see
        ``send_rules.before_send``), and the restriction holding it when there is one."""
        bs = self.sessions.get(session_id)
        if bs is None or bs.epoch != epoch:
            return Availability.GONE, None
        restriction = bs.restriction
        if restriction is not None and (bs.restriction_source == "page" or time.time() < restriction.until):
            if time.time() >= restriction.until:  # still said by the page: look again later
                restriction = bs.restriction = Restriction(restriction.kind, self._recheck_at())
            return Availability.RESTRICTED, restriction
        if bs.state in (PageState.TIMEOUT, PageState.CONFLICT):
            return Availability.OFFLINE, None
        if bs.state != PageState.CONNECTED:
            return Availability.GONE, None
        return Availability.READY, None

    def _recheck_at(self) -> float:
        return time.time() + self.settings.restriction_recheck_seconds

    def restrict(self, bs: BrowserSession, kind: str, *, source: str) -> Restriction:
        """Pause the session's sends: WhatsApp restricts it (``kind``), as the page said
        (``source`` "page") or as a refused send showed ("send"). A new restriction goes
        out as an event (the ``session.restricted`` webhook)."""
        new = bs.restriction is None or bs.restriction.kind != kind
        bs.restriction, bs.restriction_source = Restriction(kind, self._recheck_at()), source
        if new:
            log.warning("session=%s restricted by WhatsApp (%s): sends pause", bs.session_id, kind)
            try:
                self.bus.restriction(bs.session_id, bs.epoch, kind, restricted=True, reason=restriction_reason(kind))
            except redis.RedisError as exc:
                log.warning("session=%s restriction not reported: %s", bs.session_id, exc)
        return bs.restriction

    def lift_restriction(self, bs: BrowserSession) -> None:
        """The page allows sending again (its flag is gone, or a send went out)."""
        if bs.restriction is None:
            return
        kind = bs.restriction.kind
        log.info("session=%s restriction %s lifted: sends resume", bs.session_id, kind)
        try:
            self.bus.restriction(bs.session_id, bs.epoch, kind, restricted=False, reason=restriction_reason(kind))
        except redis.RedisError as exc:  # it is said again at the next change
            log.warning("session=%s end of restriction not reported: %s", bs.session_id, exc)
            return
        bs.restriction = bs.restriction_source = None

    def deliver(self, session_id: str, epoch: int, message_id: str, to: str, text: str,
                media: list[dict] | None = None, *, earlier: dict | None = None) -> str:
        """Send one message (see ``Delivery.deliver``); a send that went out ends a
        restriction a refused send had started."""
        wa_id = self.delivery.deliver(session_id, epoch, message_id, to, text, media, earlier=earlier)
        bs = self.sessions.get(session_id)
        if bs is not None and bs.restriction is not None and bs.restriction_source == "send":
            self.lift_restriction(bs)
        return wa_id

    def recipient_wid(self, session_id: str, to: str) -> str | None:
        """The id WhatsApp answered with for ``to`` when the session's page last opened its chat."""
        return self.delivery.recipient_wid(self.sessions.get(session_id), to)

    def watch_acks(self, session_id: str, wa_id: str, message_id: str, job_id: str, peer: str) -> None:
        """Follow a sent message's acks (see ``AckFollower.watch``)."""
        self.acks.watch(self.sessions.get(session_id), session_id, wa_id, message_id, job_id, peer)

    def claim_holder(self, task_id: str) -> str:
        """This task's name as a send claim's holder: ``<slot>|<boot id>|<task id>``."""
        return f"{self.settings.slot_name}|{self.boot_id}|{task_id}"

    def claim_is_dead(self, holder: str) -> bool:
        """A claim by an earlier life of this slot: that process is gone (one per slot name)."""
        slot, _, rest = holder.partition("|")
        boot = rest.partition("|")[0]
        return slot == self.settings.slot_name and bool(boot) and boot != self.boot_id

    def request_pairing_code(self, session_id: str, epoch: int, phone: str) -> str:
        """Switch the login page to "link with phone number"; the code also goes out as an event."""
        bs = self.sessions.get(session_id)
        if bs is None or bs.epoch != epoch:
            raise LookupError(DISCONNECTED)
        with bs.lock:
            code = bs.page.request_pairing_code(phone, timeout=self.settings.send_timeout)
            self.on_pairing_code(bs, code)
        return code

    # --- browsers that die ------------------------------------------------------------
    def crashed(self, bs: BrowserSession) -> None:
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
            self.publish(bs, SessionStatus.DISCONNECTED, reason=reason)
        except redis.RedisError as exc:  # the control worker's reaper reports the session instead
            log.warning("session=%s crash not reported: %s", bs.session_id, exc)
        if restart:
            log.warning("session=%s browser crashed (%d in the last hour); starting it again", bs.session_id,
                        len(recent))
            self.backups.submit(self._restart_after_crash, bs)

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

    # --- what the monitor asks for ----------------------------------------------------
    def backup(self, bs: BrowserSession) -> None:
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

    def on_pairing_code(self, bs: BrowserSession, code: str) -> None:
        """A pairing code on the page: reported as QR_READY with it, once per new code."""
        if code != bs.pairing_code:
            bs.pairing_code, bs.qr = code, None
            self.publish(bs, SessionStatus.QR_READY, pairing_code=code)

    def publish(self, bs: BrowserSession, status: SessionStatus, **fields) -> None:
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

    def close(self, session_id: str, forget: bool = False, save: bool = False) -> None:
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
            self.acks.forget(session_id)
            self.incoming.forget(session_id)
        elif save and bs is not None and (bs.state in LOGGED_IN or bs.had_login):
            try:
                key = self.store.save(session_id, self._profile_dir(session_id))
                log.info("session=%s login saved (%s)", session_id, key)
                if key:
                    self.bus.backup(session_id, bs.epoch, key)
            except Exception as exc:  # OSError, or the S3 store's errors
                log.warning("session=%s login not saved: %s", session_id, exc)
