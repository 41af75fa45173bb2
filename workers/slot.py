"""A slot worker: one Celery worker that consumes only its own queue and owns the
Chrome of every session placed on it.

Commands for a session (initialize, send, stop) arrive on ``slot.<name>`` and run one
at a time, in order (solo pool).  A monitor thread watches every open page and
publishes each state change; a heartbeat thread keeps the slot registered.  The
worker holds no database connection: everything it learns goes out as events.

Run: ``SLOT_NAME=slot-1 python -m workers.slot``
"""
from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import redis
from selenium.common.exceptions import WebDriverException

from browser.chrome import close_gracefully, launch_chrome
from browser.qr import qr_data_url
from browser.whatsapp import PageSnapshot, PageState, WhatsAppWeb
from models.states import NOT_READY_MESSAGE, SessionStatus
from settings import Settings
from storage.profiles import LOGIN_PARTS, make_profile_store
from workers import slots
from workers.events import EventBus

log = logging.getLogger("slot")

DISCONNECTED = "Session is disconnected"


@dataclass
class BrowserSession:
    session_id: str
    epoch: int
    page: WhatsAppWeb
    lock: threading.RLock = field(default_factory=threading.RLock)
    state: PageState = PageState.OPENING
    qr: str | None = None
    qr_reloads: int = 0

    @property
    def driver(self):
        return self.page.driver


class SlotRuntime:
    """Everything a slot worker process owns. One per process, started lazily."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.settings = settings
        self.redis = client or redis.Redis.from_url(settings.redis_url)
        self.bus = EventBus(self.redis)
        self.store = make_profile_store(settings)
        self.sessions: dict[str, BrowserSession] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._beat()
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._monitor_loop, "monitor")):
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

    def _beat(self) -> None:
        slots.heartbeat(self.redis, self.settings.slot_name, self.settings.slot_capacity,
                        self.settings.slot_heartbeat_ttl)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(max(1.0, self.settings.slot_heartbeat_ttl / 3)):
            try:
                self._beat()
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)

    # --- commands ---------------------------------------------------------------------
    def initialize(self, session_id: str, epoch: int) -> None:
        current = self.sessions.get(session_id)
        if current is not None:
            if current.epoch >= epoch and self._alive(current):
                log.info("session=%s epoch=%s already running; initialize is a no-op", session_id, epoch)
                return
            self._close(session_id)
        profile_dir = self._profile_dir(session_id)
        if not any((profile_dir / part).exists() for part in LOGIN_PARTS):
            # A new host or a wiped disk: bring the saved login back before Chrome starts.
            if self.store.restore(session_id, profile_dir):
                log.info("session=%s login restored from the profile store", session_id)
        try:
            driver = launch_chrome(
                chromium_path=self.settings.chromium_path, chromedriver_path=self.settings.chromedriver_path,
                profile_dir=profile_dir, work_dir=Path(self.settings.browser_work_dir),
                user_agent=self.settings.user_agent, headless=self.settings.headless,
            )
        except Exception as exc:
            log.exception("session=%s chrome failed to start", session_id)
            self.bus.session(session_id, epoch, SessionStatus.DISCONNECTED, reason="BROWSER_FAILED",
                             error=str(exc)[:500])
            return
        page = WhatsAppWeb(driver, self.settings.wa_web_url)
        bs = BrowserSession(session_id, epoch, page)
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
        self._close(session_id, forget=forget, save=not forget)

    def session_for_send(self, session_id: str, epoch: int) -> BrowserSession:
        """The READY browser of a session, or an error message saying why there is none."""
        bs = self.sessions.get(session_id)
        if bs is None or bs.epoch != epoch:
            raise LookupError(DISCONNECTED)
        if bs.state != PageState.CONNECTED:
            raise LookupError(NOT_READY_MESSAGE)
        return bs

    # --- watching pages ---------------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.settings.page_probe_interval):
            for bs in list(self.sessions.values()):
                if not bs.lock.acquire(blocking=False):
                    continue  # a command is using the page; look next round
                try:
                    self.observe(bs)
                except Exception:
                    log.exception("session=%s monitor error", bs.session_id)
                finally:
                    bs.lock.release()

    def observe(self, bs: BrowserSession) -> None:
        """Read the page once and publish what changed."""
        try:
            snap = bs.page.snapshot()
        except Exception as exc:  # WebDriverException, or chromedriver itself gone (urllib3 errors)
            if self._stop.is_set():
                return
            log.warning("session=%s browser unreachable: %s", bs.session_id, str(exc).splitlines()[0][:200])
            self._publish(bs, SessionStatus.DISCONNECTED, reason="BROWSER_CRASHED")
            self._close(bs.session_id)
            return
        self._on_snapshot(bs, snap)

    def _on_snapshot(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        previous, bs.state = bs.state, snap.state
        if snap.state == PageState.UNPAIRED:
            if snap.qr != bs.qr:
                bs.qr = snap.qr
                # The image is made once, here; the recorder and the API's QR wait use it as is.
                self._publish(bs, SessionStatus.QR_READY, qr=snap.qr, qr_code=qr_data_url(snap.qr))
        elif snap.state == PageState.UNPAIRED_IDLE:
            if bs.qr_reloads < self.settings.max_qr_reloads:
                bs.qr_reloads += 1
                bs.page.reload_qr()
            else:
                self._publish(bs, SessionStatus.DISCONNECTED, reason="QR_TIMEOUT")
                self._close(bs.session_id)
        elif snap.state == PageState.PAIRING and previous != PageState.PAIRING:
            self._publish(bs, SessionStatus.AUTHENTICATED)
        elif snap.state == PageState.CONNECTED and previous != PageState.CONNECTED:
            bs.qr, bs.qr_reloads = None, 0
            self._publish(bs, SessionStatus.READY, phone_number=snap.phone_number)
        elif snap.state == PageState.LOGGED_OUT:
            self._publish(bs, SessionStatus.DISCONNECTED, reason="LOGOUT")
            self._close(bs.session_id, forget=True)

    def _publish(self, bs: BrowserSession, status: SessionStatus, **fields) -> None:
        log.info("session=%s epoch=%s -> %s %s", bs.session_id, bs.epoch, status.value,
                 fields.get("reason") or "")
        self.bus.session(bs.session_id, bs.epoch, status.value, **fields)

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _alive(bs: BrowserSession) -> bool:
        try:
            bs.driver.current_url  # noqa: B018 - a cheap round trip to the browser
            return True
        except WebDriverException:
            return False

    def _profile_dir(self, session_id: str) -> Path:
        return Path(self.settings.browser_work_dir) / "profiles" / session_id

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
        elif save and bs is not None and bs.state == PageState.CONNECTED:
            try:
                key = self.store.save(session_id, self._profile_dir(session_id))
                log.info("session=%s login saved (%s)", session_id, key)
            except OSError as exc:
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
    from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

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
    celery.worker_main([
        "worker", "--pool=solo", "--concurrency=1", f"--queues={settings.slot_queue}",
        f"--hostname={settings.slot_name}@%h", f"--loglevel={settings.log_level}", "--without-gossip",
        "--without-mingle",
    ])


if __name__ == "__main__":
    main()
