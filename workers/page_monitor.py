"""The page monitor: one thread per slot that looks at every open page and publishes what
changed (QR codes, login, READY, whole screens, dialogs, restrictions, acks, messages received).

It holds a session's lock only while it looks, and skips a page a command is using. The
browser's lifecycle (crash restarts, recycling, closing) stays with the runtime; the
monitor asks for it.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as ProbeTimeout
from typing import TYPE_CHECKING

from browser.qr import qr_data_url
from browser.whatsapp import PageSnapshot, PageState, unknown_dialogs
from models.states import DisconnectReason, SessionStatus
from workers.browser_session import LOGGED_IN, BrowserSession

if TYPE_CHECKING:
    from workers.slot_runtime import SlotRuntime

log = logging.getLogger("slot.monitor")

FIRST_BACKUP_DELAY = 5.0  # seconds after READY
MAX_FAILED_PROBES = 20  # probes failing in a row on a browser that still answers (navigations)
# Screens the session waits out with its browser running (READY again when they go).
WAIT_OUT = {PageState.TEMP_BANNED: DisconnectReason.TEMP_BANNED, PageState.APP_LOCKED: DisconnectReason.APP_LOCKED}
# Screens that need a person or another browser: the session stops, its login is kept.
GIVE_UP = {PageState.TOS_BLOCKED: DisconnectReason.TOS_BLOCKED,
           PageState.UNSUPPORTED_BROWSER: DisconnectReason.UNSUPPORTED_BROWSER,
           PageState.NEEDS_UPDATE: DisconnectReason.NEEDS_UPDATE}
# Screens that are WhatsApp restricting the account: sends pause (``send_rules.Restriction``).
RESTRICTING = {PageState.TEMP_BANNED: "temporary_ban"}


class PageMonitor:
    """The slot's monitor thread: probes each page in turn and turns what it shows into
    session events, restarts and notices."""

    def __init__(self, runtime: "SlotRuntime"):
        self.rt = runtime
        self.settings = runtime.settings

    def run(self) -> None:
        """The monitor thread: each page in turn, until the slot stops."""
        while not self.rt.stopped.wait(self.settings.page_probe_interval):
            for bs in list(self.rt.sessions.values()):
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
        # The page is also asked what arrived (workers/incoming.py; read once it is logged in,
        # taken from its first READY look on, so nothing between READY and the next look is missed).
        inbox = self.rt.incoming.request(bs)
        probe = self.rt.probes.submit(bs.page.snapshot, list(bs.acks), inbox)
        try:
            snap = probe.result(timeout=self.settings.probe_timeout)
        except ProbeTimeout:
            if not self.rt.stopped.is_set():
                log.warning("session=%s browser hangs (no answer in %.1f s)", bs.session_id,
                            self.settings.probe_timeout)
                self.rt.crashed(bs)
            return
        except Exception as exc:  # WebDriverException, or chromedriver itself gone (urllib3 errors)
            if self.rt.stopped.is_set():
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
            self.rt.crashed(bs)
            return
        bs.failed_probes = 0
        self.on_snapshot(bs, snap)

    def _answers(self, bs: BrowserSession) -> bool:
        """Whether the browser itself still answers (a cheap round trip, bounded)."""
        try:
            self.rt.probes.submit(lambda: bs.driver.current_url).result(timeout=self.settings.probe_timeout)
            return True
        except Exception:  # gone, hung, or chromedriver gone
            return False

    def on_snapshot(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        """The session's state machine: one step per look at its page."""
        rt = self.rt
        bs.state = snap.state
        if snap.version:
            bs.web_version = snap.version
        if snap.dialogs:
            self._answer_dialogs(bs, snap)
        self._follow_restriction(bs, snap)
        if snap.state == PageState.UNKNOWN:
            self._on_unknown_page(bs, snap)
            return
        bs.unknown_since = None
        if snap.state == PageState.UNPAIRED:
            if snap.qr and snap.qr != bs.qr:
                bs.qr, bs.pairing_code = snap.qr, None
                # The image is made once, here; the recorder and the API's QR wait use it as is.
                rt.publish(bs, SessionStatus.QR_READY, qr=snap.qr, qr_code=qr_data_url(snap.qr))
            elif snap.pairing_code and snap.pairing_code != bs.pairing_code:
                rt.on_pairing_code(bs, snap.pairing_code)  # re-issued by the page
        elif snap.state == PageState.UNPAIRED_IDLE:
            if bs.qr_reloads < self.settings.max_qr_attempts:
                bs.qr_reloads += 1
                bs.page.reload_qr()
            else:
                rt.publish(bs, SessionStatus.DISCONNECTED, reason="QR_TIMEOUT")
                rt.close(bs.session_id)
        elif snap.state == PageState.PAIRING:
            if bs.reported not in (SessionStatus.AUTHENTICATED, SessionStatus.READY):
                rt.publish(bs, SessionStatus.AUTHENTICATED)
        elif snap.state == PageState.CONNECTED:
            bs.had_login = True
            if bs.reported != SessionStatus.READY:
                bs.qr, bs.pairing_code, bs.qr_reloads = None, None, 0
                rt.publish(bs, SessionStatus.READY, phone_number=snap.phone_number)
                # A first backup soon (the page writes its login to disk meanwhile), then on the interval.
                bs.next_backup = time.monotonic() + FIRST_BACKUP_DELAY
            elif bs.next_backup is not None and time.monotonic() >= bs.next_backup and not bs.backing_up:
                bs.backing_up = True
                bs.next_backup = time.monotonic() + self.settings.backup_interval
                rt.backups.submit(rt.backup, bs)
        elif snap.state == PageState.TIMEOUT:
            if bs.reported == SessionStatus.READY:
                # The browser stays; READY follows when the page is back online.
                rt.publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.CONNECTION_LOST)
        elif snap.state == PageState.CONNECTING:
            # The start-up popup: the page holds a login but its socket does not come up.
            # Its only button is Log out, so it is waited out; READY follows.
            if bs.reason != DisconnectReason.CONNECTION_LOST:
                rt.publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.CONNECTION_LOST)
        elif snap.state in WAIT_OUT:
            # Never answered from here: these screens offer "Log out". The browser stays;
            # READY follows when the screen goes.
            if bs.reason != WAIT_OUT[snap.state]:
                log.warning("session=%s page shows %s", bs.session_id, snap.state.value)
                rt.publish(bs, SessionStatus.DISCONNECTED, reason=WAIT_OUT[snap.state])
        elif snap.state == PageState.NEEDS_UPDATE and bs.update_reloads < 1:
            bs.update_reloads += 1
            log.info("session=%s the page asks for an update; reloading it once", bs.session_id)
            bs.page.start_loading(reload=True)
        elif snap.state in GIVE_UP:
            log.warning("session=%s page shows %s; stopping the session (login kept)", bs.session_id,
                        snap.state.value)
            rt.publish(bs, SessionStatus.DISCONNECTED, reason=GIVE_UP[snap.state])
            rt.backups.submit(rt.close, bs.session_id, save=True)  # closing and saving take seconds
            return
        elif snap.state == PageState.CONFLICT:
            if self.settings.conflict_policy == "takeover" and bs.takeovers < self.settings.max_takeovers:
                bs.takeovers += 1
                log.info("session=%s open in another window; taking over (%d/%d)", bs.session_id,
                         bs.takeovers, self.settings.max_takeovers)
                bs.page.take_over()
            else:
                rt.publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.CONFLICT)
                rt.close(bs.session_id, save=True)
                return
        elif snap.state == PageState.LOGGED_OUT:
            rt.publish(bs, SessionStatus.DISCONNECTED, reason="LOGOUT")
            rt.close(bs.session_id, forget=True)
            return
        if snap.state in LOGGED_IN and bs.acks:
            rt.acks.follow(bs, snap)
        if snap.state == PageState.CONNECTED and snap.inbox is not None:
            rt.incoming.follow(bs, snap.inbox)

    def _follow_restriction(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        """What the page says of a restriction: its modules' flag (a reach-out timelock, a
        new-chat cap) or a restricting screen (a temporary ban). Sends pause while it holds
        and resume when the page no longer says so."""
        said = RESTRICTING.get(snap.state) or snap.restriction
        if said:
            if bs.restriction is None or bs.restriction.kind != said or bs.restriction_source != "page":
                self.rt.restrict(bs, said, source="page")
        elif bs.restriction is not None and bs.restriction_source == "page" and snap.state == PageState.CONNECTED:
            self.rt.lift_restriction(bs)

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
            self.rt.bus.page_notice(bs.session_id, bs.epoch, "unknown_dialog", text=dialog.text[:500],
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
            self.rt.publish(bs, SessionStatus.DISCONNECTED, reason=DisconnectReason.UNKNOWN_PAGE)
            bs.page.start_loading()
        if unknown_for >= self.settings.stuck_timeout_seconds and not bs.backing_up:
            log.warning("session=%s unknown page for %.0f s: recycling its browser", bs.session_id, unknown_for)
            bs.backing_up = True
            self.rt.backups.submit(self.rt.recycle, bs)
