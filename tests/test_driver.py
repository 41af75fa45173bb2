"""The slot's driver against every state and event of the simulated WhatsApp Web.

Each test runs a SlotRuntime in this process (its monitor thread, no Celery) with a
bus that keeps the events, drives a real headless Chromium, and causes the event on
the simulator's control API.

Every test runs on both page profiles: ``2026`` (the page as served in 2025-26, read
through its own modules) and ``legacy`` (the 2021-23 page, DOM only). Tests marked
``@every_route`` also run on ``2026-dom``: the 2026 page with its modules withheld (as
when WhatsApp renames them), so the DOM fallback of the current page is tested too.
"""
from __future__ import annotations

import io
import os
import secrets
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import WebDriverException
from PIL import Image

from browser.qr import read_qr_data_url
from browser.whatsapp import MediaRejected, NumberNotOnWhatsApp, message_key
from models.states import MessageStatus
from messaging.events import MemoryBus
from tests.helpers import ROOT, Proc, free_port, port_open, serving, wait_until
from workers.browser_session import MediaUnavailable, SessionOffline
from workers.media import MediaLimits
from workers.slot_runtime import SlotRuntime

OWN = "919800000001"
PEER = "919876543210"
OTHER = "919876500000"


class Sim:
    def __init__(self, base: str):
        self.base = base

    def post(self, path: str, body: dict | None = None) -> dict:
        r = requests.post(self.base + path, json=body or {}, timeout=5)
        assert r.ok, r.text
        return r.json()

    def get(self, path: str):
        r = requests.get(self.base + path, timeout=5)
        assert r.ok, r.text
        return r.json()

    def messages(self, to: str | None = None) -> list[dict]:
        return self.get("/sim/control/messages" + (f"?to={to}" if to else ""))


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = Proc("simulator", ["-m", "simulator", "--port", str(port), "--quiet"], env,
                tmp_path_factory.mktemp("sim")).start()
    try:
        wait_until(lambda: port_open(port), 20, what="simulator")
        yield Sim(f"http://127.0.0.1:{port}")
    finally:
        proc.stop()


PROFILES = {
    "2026": {"profile": "2026", "modules": True},
    "2026-dom": {"profile": "2026", "modules": False},
    "legacy": {"profile": "legacy"},
}
every_route = pytest.mark.profiles("2026", "2026-dom", "legacy")
on_2026 = pytest.mark.profiles("2026")
# Screens are told apart by the socket state with the modules, by their text without.
on_2026_both_routes = pytest.mark.profiles("2026", "2026-dom")


def pytest_generate_tests(metafunc):
    if "profile" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("profiles")
        metafunc.parametrize("profile", marker.args if marker else ("2026", "legacy"), indirect=True)


@pytest.fixture
def profile(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def fresh_sim(sim, profile):
    sim.post("/sim/control/reset")
    knobs = {**PROFILES[profile], "sync_delay": 0.2, "deliver_delay": 0.3, "read_delay": 0.3, "restriction": "none",
             "link_limit": -1}
    if profile != "legacy":
        # PEER's chat is keyed by a hidden contact id (LID), OTHER's by the number.
        knobs.update(boot_seconds=0.2, onboarding_delay=0.3, lid_numbers=[PEER], pn_numbers=[OTHER])
    sim.post("/sim/control/config", knobs)


class ListBus(MemoryBus):
    """The events a slot publishes, kept in order, with a wait that fails the test."""

    def wait(self, what: str, timeout: float = 15.0, **match) -> dict:
        """The first event (oldest first) whose fields equal ``match``."""
        found = self.wait_for(lambda e: all(e.get(k) == v for k, v in match.items()), timeout)
        if found is None:
            raise AssertionError(f"no {what} event in {timeout}s; events: {self.statuses()}")
        return found

    def statuses(self) -> list[str]:
        return [f"{e['status']}{'/' + e['reason'] if e.get('reason') else ''}" for e in self.events
                if e["type"] == "session"]


@pytest.fixture
def make_runtime(settings, sim, redis_client, tmp_path):
    made: list[SlotRuntime] = []
    redis_client.delete("wa:acks:s1", "wa:incoming:s1")  # ack watches and incoming state an earlier test left

    def make(**overrides) -> SlotRuntime:
        s = replace(settings, **{"wa_web_url": sim.base + "/", "browser_work_dir": str(tmp_path / "browsers"),
                                 "profile_dir": str(tmp_path / "profiles"), "page_probe_interval": 0.1,
                                 "ready_probe_interval": 0.3, "slot_name": f"test-{secrets.token_hex(3)}",
                                 **overrides})
        rt = SlotRuntime(s, client=redis_client, bus=ListBus())
        rt.start(heartbeat=False)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.shutdown()


def link(rt: SlotRuntime, sim: Sim, session_id: str = "s1", phone: str = OWN, epoch: int = 1) -> dict:
    rt.initialize(session_id, epoch)
    qr = rt.bus.wait("QR_READY", status="QR_READY")
    assert read_qr_data_url(qr["qr_code"]) == qr["qr"]  # the image holds what the page shows
    sim.post("/sim/phone/scan", {"payload": qr["qr"], "phone": phone})
    return rt.bus.wait("READY", status="READY")


def mid() -> str:
    """A message id of its own: a sent part is remembered in Redis under the message id."""
    return f"msg_{secrets.token_hex(6)}"


def chrome_pid(rt: SlotRuntime, session_id: str = "s1") -> int:
    return rt.sessions[session_id].driver.browser_pid


# --- logging in -------------------------------------------------------------------------

def test_every_new_qr_is_an_event_then_reloads_run_out(make_runtime, sim):
    sim.post("/sim/control/config", {"qr_first_ttl": 0.8, "qr_ttl": 0.5, "qr_count": 2})
    rt = make_runtime(max_qr_attempts=1)
    rt.initialize("s1", 1)
    gone = rt.bus.wait("QR_TIMEOUT", timeout=30, status="DISCONNECTED")
    assert gone["reason"] == "QR_TIMEOUT"
    qrs = [e for e in rt.bus.events if e["status"] == "QR_READY"]
    # Two codes per series, one reload: four codes, each announced once, each its own image.
    assert len(qrs) == 4 and len({e["qr"] for e in qrs}) == 4
    assert [read_qr_data_url(e["qr_code"]) for e in qrs] == [e["qr"] for e in qrs]
    assert "s1" not in rt.sessions  # the browser is closed


@every_route
def test_scan_authenticates_then_ready_with_own_number(make_runtime, sim):
    # The sync screen lasts long enough for a probe to see it on a loaded machine too.
    sim.post("/sim/control/config", {"sync_delay": 1.0})
    rt = make_runtime()
    ready = link(rt, sim)
    assert ready["phone_number"] == OWN
    assert rt.bus.statuses() == ["QR_READY", "AUTHENTICATED", "READY"]


def test_pairing_code_links_and_is_reissued(make_runtime, sim):
    sim.post("/sim/control/config", {"pair_code_ttl": 1.5})
    rt = make_runtime()
    rt.initialize("s1", 1)
    rt.bus.wait("QR_READY", status="QR_READY")
    code = rt.request_pairing_code("s1", 1, OWN)
    assert len(code) == 9 and code[4] == "-"
    first = rt.bus.wait("pairing code", pairing_code=code)
    assert first["status"] == "QR_READY" and "qr_code" not in first
    # The page re-issues the code; the new one goes out too, and only it links.
    again = wait_until(lambda: next((e["pairing_code"] for e in rt.bus.events
                                     if e.get("pairing_code") not in (None, code)), None), 10, what="a new code")
    assert requests.post(sim.base + "/sim/phone/pair", json={"code": code, "phone": OWN}, timeout=5).status_code >= 400
    sim.post("/sim/phone/pair", {"code": again, "phone": OWN})
    assert rt.bus.wait("READY", status="READY")["phone_number"] == OWN


def test_pairing_code_for_a_bad_number_is_refused(make_runtime, sim):
    from browser.whatsapp import PairingError

    rt = make_runtime()
    rt.initialize("s1", 1)
    rt.bus.wait("QR_READY", status="QR_READY")
    with pytest.raises(PairingError):
        rt.request_pairing_code("s1", 1, "123")


def test_saved_login_is_restored_and_a_revoked_one_shows_the_qr(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    rt.stop("s1", 1, forget=False)  # a clean stop saves the login
    rt.bus.events.clear()
    rt.initialize("s1", 2)
    assert rt.bus.wait("READY", status="READY")["phone_number"] == OWN
    assert "QR_READY" not in rt.bus.statuses()  # no QR: the login came back

    rt.stop("s1", 2, forget=False)
    sim.post("/sim/phone/logout", {"phone": OWN})  # revoked on the phone while the browser was away
    rt.bus.events.clear()
    rt.initialize("s1", 3)
    rt.bus.wait("QR_READY", status="QR_READY")
    assert "READY" not in rt.bus.statuses()


def test_logout_from_the_phone_drops_the_login(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    profile = Path(rt.settings.browser_work_dir) / "profiles" / "s1"
    assert profile.exists()
    sim.post("/sim/phone/logout", {"phone": OWN})
    assert rt.bus.wait("LOGOUT", status="DISCONNECTED")["reason"] == "LOGOUT"
    wait_until(lambda: "s1" not in rt.sessions and not profile.exists(), 10, what="the profile dropped")
    assert rt.store.restore("s1", profile) is False  # nothing saved either
    rt.bus.events.clear()
    rt.initialize("s1", 2)
    rt.bus.wait("QR_READY", status="QR_READY")


# --- trouble while linked ---------------------------------------------------------------

@every_route
def test_conflict_is_taken_over(make_runtime, sim):
    rt = make_runtime(conflict_policy="takeover")
    link(rt, sim)
    sim.post("/sim/control/conflict", {"phone": OWN})
    wait_until(lambda: rt.sessions["s1"].takeovers == 1, 10, what="a takeover")
    wait_until(lambda: rt.sessions["s1"].state == "CONNECTED", 10, what="the page back")
    assert "DISCONNECTED" not in rt.bus.statuses()
    assert rt.deliver("s1", 1, mid(), PEER, "after the takeover")


def test_conflict_disconnects_when_told_to(make_runtime, sim):
    rt = make_runtime(conflict_policy="disconnect")
    link(rt, sim)
    sim.post("/sim/control/conflict", {"phone": OWN})
    assert rt.bus.wait("CONFLICT", status="DISCONNECTED")["reason"] == "CONFLICT"
    wait_until(lambda: "s1" not in rt.sessions, 10, what="the browser closed")


@every_route
def test_connection_loss_is_reported_and_recovers(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/connection", {"online": False, "kind": "phone"})
    assert rt.bus.wait("CONNECTION_LOST", status="DISCONNECTED")["reason"] == "CONNECTION_LOST"
    with pytest.raises(SessionOffline):
        rt.deliver("s1", 1, mid(), PEER, "while offline")
    assert "s1" in rt.sessions  # the browser stays
    sim.post("/sim/control/connection", {"online": True})
    wait_until(lambda: rt.bus.statuses()[-1] == "READY", 10, what="READY again")
    assert rt.bus.statuses()[-3:] == ["READY", "DISCONNECTED/CONNECTION_LOST", "READY"]


def test_a_killed_chrome_is_started_again_from_its_login(make_runtime, sim):
    rt = make_runtime(max_crash_restarts=1)
    link(rt, sim)
    rt.bus.wait("the first backup", status="session_backup")  # a crash comes later than a few seconds after linking
    os.kill(chrome_pid(rt), signal.SIGKILL)
    assert rt.bus.wait("restarting", status="DISCONNECTED")["reason"] == "BROWSER_RESTARTING"
    wait_until(lambda: rt.bus.statuses()[-1] == "READY", 30, what="READY again")
    assert rt.bus.statuses().count("QR_READY") == 1, "no new QR: the login was kept"
    assert rt.deliver("s1", 1, mid(), PEER, "after the crash")
    # Past MAX_CRASH_RESTARTS an hour the session stops for good.
    os.kill(chrome_pid(rt), signal.SIGKILL)
    assert rt.bus.wait("BROWSER_CRASHED", status="DISCONNECTED", reason="BROWSER_CRASHED")
    wait_until(lambda: "s1" not in rt.sessions, 10, what="no new browser")


def test_a_hung_chrome_is_detected_by_a_bounded_probe(make_runtime, sim):
    rt = make_runtime(probe_timeout=2.0, max_crash_restarts=0)
    link(rt, sim)
    pid = chrome_pid(rt)
    os.killpg(pid, signal.SIGSTOP)  # Chrome and its renderers stop answering
    try:
        event = rt.bus.wait("BROWSER_CRASHED", timeout=20, status="DISCONNECTED")
    finally:
        try:
            os.killpg(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert event["reason"] == "BROWSER_CRASHED"
    wait_until(lambda: not _alive(pid), 10, what="the hung Chrome killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead enough
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


# --- sending ----------------------------------------------------------------------------

@every_route
def test_text_acks_flow_back_as_delivered_then_read(make_runtime, sim, profile):
    rt = make_runtime()
    link(rt, sim)
    first = rt.deliver("s1", 1, mid(), PEER, "Hello\nsecond line")
    chat = f"{PEER}@c.us" if profile == "legacy" else sim.messages(PEER)[0]["chat"]
    assert first.startswith(f"true_{chat}_3EB0")
    assert profile == "legacy" or chat.endswith("@lid"), "PEER's chat is addressed by LID on the 2026 page"
    rt.watch_acks("s1", first, "m1", "j1", PEER)
    # A send to another chat leaves the first chat: its acks now come from the chat list.
    second = rt.deliver("s1", 1, mid(), OTHER, "Hi other")
    rt.watch_acks("s1", second, "m2", "j1", OTHER)
    for message_id in ("m1", "m2"):
        rt.bus.wait("delivered", message_id=message_id, status=MessageStatus.DELIVERED.value)
        rt.bus.wait("read", message_id=message_id, status=MessageStatus.READ.value)
    log = sim.messages(PEER)
    assert [m["text"] for m in log] == ["Hello\nsecond line"] and log[0]["serialized"] == first


def test_an_unregistered_number_fails_for_good(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    with pytest.raises(NumberNotOnWhatsApp) as err:
        rt.deliver("s1", 1, mid(), "919999999999", "hello?")
    assert err.value.permanent and "not on WhatsApp" in str(err.value)
    assert sim.messages() == []


# --- media ------------------------------------------------------------------------------

def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (120, 90), secrets.token_bytes(120 * 90 * 3)).save(buf, "PNG")  # ~32 KB
    return buf.getvalue()


@pytest.fixture(scope="module")
def media_server():
    files = {"/photo.png": ("image/png", _png_bytes()), "/agenda.pdf": ("application/pdf", b"%PDF-1.4\n" + b"x" * 5000),
             "/big.pdf": ("application/pdf", b"%PDF-1.4\n" + b"y" * 300_000)}

    with serving(files) as base:
        yield base, files


@every_route
def test_image_and_document_go_through_the_right_inputs_with_caption(make_runtime, sim, media_server):
    base, files = media_server
    rt = make_runtime(media_allow_networks="127.0.0.0/8")
    link(rt, sim)
    image_id = rt.deliver("s1", 1, mid(), PEER, "The photo", [{"url": base + "/photo.png"}])
    doc_id = rt.deliver("s1", 1, mid(), PEER, "The agenda", [{"url": base + "/agenda.pdf"}])
    inline_id = rt.deliver("s1", 1, mid(), PEER, "", [{
        "filename": "notes.txt", "mimetype": "text/plain", "data": "aGVsbG8gd29ybGQ="}])
    log = {m["serialized"]: m for m in sim.messages(PEER)}
    image, doc, inline = log[image_id], log[doc_id], log[inline_id]
    assert image["type"] == "image" and image["caption"] == "The photo"
    assert image["media"]["name"] == "photo.png" and image["media"]["size"] == len(files["/photo.png"][1])
    assert doc["type"] == "document" and doc["caption"] == "The agenda"
    assert doc["media"]["name"] == "agenda.pdf" and doc["media"]["size"] == len(files["/agenda.pdf"][1])
    assert inline["type"] == "document" and inline["media"]["name"] == "notes.txt" and inline["media"]["size"] == 11
    assert not any(m.get("sticker") for m in log.values()), "nothing went through the sticker-maker input"


def test_oversize_media_is_refused_before_the_page_is_touched(make_runtime, sim, media_server):
    base, _ = media_server
    rt = make_runtime(media_allow_networks="127.0.0.0/8")
    rt.delivery.media_limits = MediaLimits(media_bytes=1000, document_bytes=100_000)
    link(rt, sim)
    url_before = rt.sessions["s1"].driver.current_url
    for path in ("/photo.png", "/big.pdf"):
        with pytest.raises(MediaUnavailable) as err:
            rt.deliver("s1", 1, mid(), PEER, "too big", [{"url": base + path}])
        assert err.value.permanent and "limit" in str(err.value)
    assert rt.sessions["s1"].driver.current_url == url_before
    assert sim.messages() == []


def test_media_the_page_refuses_fails_for_good(make_runtime, sim, media_server):
    base, _ = media_server
    sim.post("/sim/control/config", {"doc_max_mb": 0.1})  # the page's own limit, below the file
    rt = make_runtime(media_allow_networks="127.0.0.0/8")
    link(rt, sim)
    with pytest.raises(MediaRejected) as err:
        rt.deliver("s1", 1, mid(), PEER, "big", [{"url": base + "/big.pdf"}])
    assert err.value.permanent and "larger than" in str(err.value)
    assert sim.messages() == []


def test_media_from_a_private_address_is_refused(make_runtime, sim, media_server):
    base, _ = media_server
    rt = make_runtime()  # no allow-list: loopback is refused like any private address
    link(rt, sim)
    with pytest.raises(MediaUnavailable) as err:
        rt.deliver("s1", 1, mid(), PEER, "x", [{"url": base + "/photo.png"}])
    assert err.value.permanent


# --- never twice ------------------------------------------------------------------------

@contextmanager
def worker_dies_during_send(*, after_it_went_out: bool):
    """The send's wait for the message on the page ends in UnconfirmedSend, as if the worker
    died there: after the message went out, or at the commit, before Enter did anything.
    Yields a MonkeyPatch whose changes are undone with this one's."""
    from browser.whatsapp import UnconfirmedSend, WhatsAppWeb

    real_wait_sent = WhatsAppWeb._wait_sent

    def dies(self, phone, before, deadline):
        if after_it_went_out:
            real_wait_sent(self, phone, before, deadline)  # it went out...
        raise UnconfirmedSend("the worker died before it saw the ack")  # ...but nobody knew

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WhatsAppWeb, "_wait_sent", dies)
        yield patch
    assert WhatsAppWeb._wait_sent is real_wait_sent


@every_route
def test_an_unconfirmed_send_is_found_in_the_chat_not_sent_again(make_runtime, sim):
    from browser.whatsapp import UnconfirmedSend

    rt = make_runtime()
    link(rt, sim)
    message_id = mid()
    with worker_dies_during_send(after_it_went_out=True), pytest.raises(UnconfirmedSend):
        rt.deliver("s1", 1, message_id, PEER, "exactly once, please")
    rt.deliver("s1", 1, mid(), PEER, "a later message in the same chat")
    wa_id = rt.deliver("s1", 1, message_id, PEER, "exactly once, please")
    texts = [m["text"] for m in sim.messages(PEER)]
    assert texts.count("exactly once, please") == 1
    assert wa_id == next(m["serialized"] for m in sim.messages(PEER) if m["text"] == "exactly once, please")


def test_a_send_that_never_left_is_sent_on_the_next_attempt(make_runtime, sim):
    from selenium.webdriver.common.keys import Keys

    from browser.whatsapp import UnconfirmedSend

    rt = make_runtime()
    link(rt, sim)
    message_id = mid()
    # Enter never reaches the page: the commit was recorded, the message did not leave.
    with worker_dies_during_send(after_it_went_out=False) as patch, pytest.raises(UnconfirmedSend):
        patch.setattr(Keys, "ENTER", "")
        rt.deliver("s1", 1, message_id, PEER, "did it go?")
    assert rt.redis.exists(f"wa:msg:{message_id}:commit:0")
    rt.deliver("s1", 1, message_id, PEER, "did it go?")
    assert [m["text"] for m in sim.messages(PEER)].count("did it go?") == 1


@every_route
def test_a_sent_message_redis_forgot_is_found_from_what_postgresql_knows(make_runtime, sim):
    """Redis restarted empty after the send: no marker says it went out, but the message
    had been dispatched before (PostgreSQL's ``earlier``), so the chat is looked at first."""
    rt = make_runtime()
    link(rt, sim)
    a_lost_send_is_found_again(rt, sim)


def redis_forgets(rt: SlotRuntime, message_id: str) -> None:
    """What Redis held of the message (part, commit and done marks, the claim) is gone."""
    for key in rt.redis.scan_iter(f"wa:msg:{message_id}:*"):
        rt.redis.delete(key)


def a_lost_send_is_found_again(rt: SlotRuntime, sim) -> None:
    """A message goes out and Redis forgets it; delivered again with its first dispatch as
    PostgreSQL's ``earlier``, it is found in the chat, not sent a second time."""
    dispatched, message_id = time.time(), mid()
    first = rt.deliver("s1", 1, message_id, PEER, "sent, but the news was lost")
    redis_forgets(rt, message_id)
    again = rt.deliver("s1", 1, message_id, PEER, "sent, but the news was lost",
                       earlier={"since": dispatched, "after_id": None})
    assert [m["text"] for m in sim.messages(PEER)].count("sent, but the news was lost") == 1
    assert message_key(again) == message_key(first)


NO_PACING = {"min_gap_seconds": 0, "max_gap_seconds": 0, "hourly_cap": 0, "daily_cap": 0}


def run_send_task(rt: SlotRuntime, kwargs: dict, *, redelivered: bool = False) -> dict | None:
    """One run of the real send task (``wa.slot.send_message``) on ``rt``, as a worker runs
    it, the broker's ``redelivered`` flag in its request; the kwargs of the retry it asks
    for, or None when it ended."""
    from celery.exceptions import Retry

    from workers import slot_tasks

    task, asked = slot_tasks.send_message, {}

    def retry(countdown=None, kwargs=None, **_):
        asked.update(kwargs)
        return Retry(when=countdown)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slot_tasks, "runtime", lambda: rt)
        patch.setattr(task, "retry", retry)
        task.push_request(id=f"task-{secrets.token_hex(4)}", called_directly=False, retries=0,
                          delivery_info={"redelivered": redelivered})
        try:
            task.run(**kwargs)
        except Retry:
            return asked
        finally:
            task.pop_request()
    return None


@every_route
@pytest.mark.parametrize("how", ["redelivered", "retried"])
def test_a_send_task_run_again_after_redis_forgot_its_send_does_not_send_twice(make_runtime, sim, how):
    """The broker redelivers the task (a worker lost with it unacknowledged), or the task is
    retried after its run reached the page (it went out, the confirmation did not come):
    Redis no longer knows the send, but the task carries its first dispatch, so the chat
    is looked at first and the message found there."""
    rt = make_runtime()
    link(rt, sim)
    for key in rt.redis.scan_iter("wa:pace:s1:*"):  # a pace an earlier test left
        rt.redis.delete(key)
    text, message_id = f"once, whatever Redis forgets {secrets.token_hex(3)}", mid()
    kwargs = dict(message_id=message_id, job_id="job_once", session_id="s1", epoch=1, to=PEER, text=text,
                  pacing=NO_PACING, first_dispatch=time.time())
    if how == "redelivered":
        assert run_send_task(rt, kwargs) is None
        redis_forgets(rt, message_id)
        again = run_send_task(rt, kwargs, redelivered=True)
    else:
        with worker_dies_during_send(after_it_went_out=True):
            retry = run_send_task(rt, kwargs)
        assert retry["attempt"] == 2 and retry["earlier"] == {"since": kwargs["first_dispatch"], "after_id": None}
        redis_forgets(rt, message_id)
        again = run_send_task(rt, retry)
    assert again is None
    sent = [m for m in sim.messages(PEER) if m["text"] == text]
    assert len(sent) == 1
    # Each run reports the one message it sent or found as sent (its delivered and read acks
    # may follow, from the ack follower).
    reported = [e for e in rt.bus.events if e.get("message_id") == message_id and e["status"] == "sent"]
    assert reported and {message_key(e["wa_message_id"]) for e in reported} == {message_key(sent[0]["serialized"])}


@every_route
def test_an_older_message_with_the_same_text_is_not_taken_for_the_one_to_send(make_runtime, sim):
    """Yesterday's reminder in the chat is not this one: rows up to the newest message
    PostgreSQL recorded as sent (``after_id``) and rows dated before the first dispatch
    (``since``) do not count."""
    rt = make_runtime()
    link(rt, sim)
    older = rt.deliver("s1", 1, mid(), PEER, "your appointment is tomorrow")
    rt.deliver("s1", 1, mid(), PEER, "your appointment is tomorrow",
               earlier={"since": time.time(), "after_id": older})
    assert [m["text"] for m in sim.messages(PEER)].count("your appointment is tomorrow") == 2


@pytest.mark.profiles("2026-dom", "legacy")
@pytest.mark.parametrize("zone", ["Asia/Kathmandu", "America/St_Johns"])
def test_on_the_dom_route_rows_are_dated_by_their_stamp_in_the_pages_time_zone(make_runtime, sim, zone):
    """Without the page's modules a row's only time is its stamp (``data-pre-plain-text``
    "[8:19 PM, 6/13/2026] You: "), to the minute, in the page's own time zone (here one
    far from the machine's, either way). An older identical text, from a minute before the
    message's first dispatch, is not taken for the lost message; the lost one, from the
    minute of its first dispatch on, is found."""
    rt = make_runtime()
    link(rt, sim)
    rt.sessions["s1"].driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": zone})
    rt.deliver("s1", 1, mid(), PEER, "your appointment is tomorrow")
    # The reminder to send now was first dispatched two minutes after that one went out (the
    # anchor is moved instead of waiting two minutes).
    rt.deliver("s1", 1, mid(), PEER, "your appointment is tomorrow",
               earlier={"since": time.time() + 120, "after_id": None})
    assert [m["text"] for m in sim.messages(PEER)].count("your appointment is tomorrow") == 2
    a_lost_send_is_found_again(rt, sim)


@on_2026_both_routes
@pytest.mark.parametrize("kind", ["reachout_timelock", "new_chat_cap"])
def test_a_restricted_account_is_not_taken_for_a_number_not_on_whatsapp(make_runtime, sim, profile, kind):
    """A new-chat restriction (the modules' flags, the restricted modal, a compose bar
    without a composer) raises SendRestricted: nothing goes out, the number is not failed;
    a chat with earlier messages can still be written to; off again, the new chat works."""
    from browser.whatsapp import SendRestricted

    rt = make_runtime()
    link(rt, sim)
    rt.deliver("s1", 1, mid(), PEER, "an earlier conversation")
    sim.post("/sim/control/config", {"restriction": kind})
    if profile == "2026":  # the page has heard of it: its modules say so
        rt.bus.wait("restriction", status="session_restriction", restricted=True)
    with pytest.raises(SendRestricted) as err:
        rt.deliver("s1", 1, mid(), OTHER, "a new chat")
    expected = {"2026": {kind}, "2026-dom": {"reachout_timelock", "compose_locked"}}[profile]
    assert err.value.kind in expected
    assert not isinstance(err.value, NumberNotOnWhatsApp)
    assert not sim.messages(OTHER)
    rt.deliver("s1", 1, mid(), PEER, "the old chat still works")
    sim.post("/sim/control/config", {"restriction": "none"})
    if profile == "2026":
        rt.bus.wait("restriction lifted", status="session_restriction", restricted=False)
    rt.deliver("s1", 1, mid(), OTHER, "a new chat")
    assert [m["text"] for m in sim.messages(OTHER)] == ["a new chat"]


@every_route
def test_a_registered_number_the_page_refuses_is_a_restriction_not_a_dead_number(make_runtime, sim, profile):
    """The existence query says the number is registered, but opening its chat shows the
    invalid-number dialog (new chats by link limited: the simulator's ``link_limit``):
    SendRestricted, nothing goes out, the number is not failed as not on WhatsApp; a chat
    with earlier messages still works, and once the limit is gone the new chat does too.
    Without the page's modules there is no existence query to tell the two apart: there
    the dialog means not on WhatsApp, as it always did (docs/whatsapp-web.md)."""
    from browser.whatsapp import SendRestricted

    rt = make_runtime()
    link(rt, sim)
    rt.deliver("s1", 1, mid(), PEER, "an earlier conversation")
    sim.post("/sim/control/config", {"link_limit": 0})
    assert sim.post("/sim/api/exists", {"phone": OTHER})["wid"] == f"{OTHER}@c.us"
    for _ in range(2):  # the next attempt is refused the same way
        if profile != "2026":
            with pytest.raises(NumberNotOnWhatsApp):
                rt.deliver("s1", 1, mid(), OTHER, "a new chat")
            continue
        with pytest.raises(SendRestricted) as err:
            rt.deliver("s1", 1, mid(), OTHER, "a new chat")
        assert err.value.kind == "new_chat_link_limit" and not err.value.permanent
        assert not isinstance(err.value, NumberNotOnWhatsApp)
    refused = [o for o in sim.get("/sim/control/counters")["chat_open_log"] if o["peer"] == OTHER]
    assert refused and not any(o["ok"] for o in refused), "the page opened the chat after all"
    assert not sim.messages(OTHER)
    rt.deliver("s1", 1, mid(), PEER, "the old chat still works")
    sim.post("/sim/control/config", {"link_limit": -1})
    rt.deliver("s1", 1, mid(), OTHER, "a new chat")
    assert [m["text"] for m in sim.messages(OTHER)] == ["a new chat"]


@on_2026
def test_the_monitor_pauses_a_session_the_page_says_is_restricted_and_resumes_it(make_runtime, sim):
    from workers.send_rules import Availability

    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/config", {"restriction": "reachout_timelock"})
    event = rt.bus.wait("restriction", status="session_restriction", restricted=True)
    assert event["kind"] == "reachout_timelock" and event["reason"].startswith("restricted: ")
    availability, restriction = rt.availability("s1", 1)
    assert availability == Availability.RESTRICTED and restriction.until > time.time()
    sim.post("/sim/control/config", {"restriction": "none"})
    rt.bus.wait("restriction lifted", status="session_restriction", restricted=False)
    assert rt.availability("s1", 1) == (Availability.READY, None)


def test_preparing_a_send_is_retried_on_transient_page_errors():
    import time as _time

    from browser.whatsapp import TransientSendError, WhatsAppWeb

    def tried(errors: list[Exception]) -> tuple[object, int]:
        """What preparing answered (or raised) when each try raises the next of ``errors``
        and succeeds once they run out, and how many tries it took."""
        calls = []

        def prepare():
            calls.append(1)
            if len(calls) <= len(errors):
                raise errors[len(calls) - 1]
            return "box"

        try:
            answer = WhatsAppWeb.__new__(WhatsAppWeb)._prepared(prepare, _time.monotonic() + 10)
        except Exception as exc:  # noqa: BLE001 - the test looks at what it was
            answer = exc
        return answer, len(calls)

    assert tried([TransientSendError("the chat did not open")] * 2) == ("box", 3)
    answer, tries = tried([TransientSendError("never")] * 5)
    assert isinstance(answer, TransientSendError) and tries == 3
    answer, tries = tried([NumberNotOnWhatsApp("no")])
    assert isinstance(answer, NumberNotOnWhatsApp) and tries == 1, "permanent errors are not retried"


# --- memory -----------------------------------------------------------------------------

def test_browser_memory_is_measured_and_a_browser_over_the_ceiling_is_recycled(make_runtime, sim):
    rt = make_runtime(memory_ceiling_mb=1)  # every Chrome is over 1 MB
    link(rt, sim)
    first_pid = chrome_pid(rt)
    rt.bus.events.clear()
    usage = rt.memory()
    assert usage["s1"] > 20 * 2**20, "a whole Chrome process tree, not one process"
    # Recycled: a new Chrome, the login saved and restored, READY again without a QR.
    wait_until(lambda: "s1" in rt.sessions and chrome_pid(rt) != first_pid, 30, what="a new browser")
    rt.bus.wait("READY", timeout=30, status="READY")
    assert "QR_READY" not in rt.bus.statuses()
    assert rt.bus.wait("backup", status="session_backup")["key"]


def test_an_ack_seen_only_as_read_is_reported_delivered_then_read(settings, redis_client):
    """The page may show a message read at its first look (the chat list, after a reload)."""
    from browser.whatsapp import PageSnapshot, PageState
    from workers.browser_session import BrowserSession

    rt = SlotRuntime(settings, client=redis_client, bus=ListBus())
    bs = BrowserSession("s1", 1, page=None)
    rt.sessions["s1"] = bs
    rt.watch_acks("s1", "true_older", "m1", "j1", PEER)
    rt.watch_acks("s1", "true_newer", "m2", "j1", PEER)
    rt.acks.follow(bs, PageSnapshot(PageState.CONNECTED, chat_acks={PEER: "read"}))
    got = [(e["message_id"], e["status"]) for e in rt.bus.events]
    assert sorted(got) == sorted([("m1", "delivered"), ("m1", "read"), ("m2", "delivered"), ("m2", "read")])
    assert got.index(("m1", "delivered")) < got.index(("m1", "read"))
    assert not bs.acks, "read messages are no longer followed"


# --- the 2026 page: whole screens, dialogs, reloads, locale ------------------------------



def no_logout_from_the_page(sim: Sim) -> None:
    clicks = sim.get("/sim/control/counters")["logout_clicks"]
    assert clicks == [], f"the driver pressed a Log out: {clicks}"


def within_a_probe(rt: SlotRuntime) -> float:
    """How long a state may take to be reported: a READY page's probe interval, and a few seconds."""
    return rt.settings.ready_probe_interval + 5.0


@on_2026_both_routes
@pytest.mark.parametrize("screen, reason", [("TEMP_BAN", "TEMP_BANNED"), ("APP_LOCKED", "APP_LOCKED")])
def test_screens_waited_out_are_reported_and_end_in_ready(make_runtime, sim, screen, reason):
    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/screen", {"screen": screen, "phone": OWN, "code": 104, "duration": "2 hours"})
    assert rt.bus.wait(reason, timeout=within_a_probe(rt), status="DISCONNECTED", reason=reason)
    with pytest.raises(LookupError):
        rt.deliver("s1", 1, mid(), PEER, "while banned")
    assert "s1" in rt.sessions, "the browser stays while the screen lasts"
    sim.post("/sim/control/screen", {"screen": None, "phone": OWN})
    wait_until(lambda: rt.bus.statuses()[-1] == "READY", within_a_probe(rt), what="READY again")
    no_logout_from_the_page(sim)


@on_2026_both_routes
def test_a_temporary_ban_pauses_sends_as_a_restriction_and_lifts_with_the_screen(make_runtime, sim):
    from workers.send_rules import Availability

    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/screen", {"screen": "TEMP_BAN", "phone": OWN, "code": 101, "duration": "1 hour"})
    event = rt.bus.wait("restricted", timeout=within_a_probe(rt), status="session_restriction", restricted=True)
    assert event["kind"] == "temporary_ban" and event["reason"] == "restricted: temporary ban"
    availability, restriction = rt.availability("s1", 1)
    assert availability == Availability.RESTRICTED and restriction.kind == "temporary_ban"
    sim.post("/sim/control/screen", {"screen": None, "phone": OWN})
    rt.bus.wait("lifted", timeout=within_a_probe(rt), status="session_restriction", restricted=False)
    assert rt.availability("s1", 1) == (Availability.READY, None)
    no_logout_from_the_page(sim)


@on_2026_both_routes
@pytest.mark.parametrize("screen, reason", [("TOS_BLOCK", "TOS_BLOCKED"), ("DEPRECATED_VERSION", "NEEDS_UPDATE")])
def test_screens_that_need_a_person_stop_the_session_with_the_login_kept(make_runtime, sim, screen, reason):
    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/screen", {"screen": screen, "phone": OWN})
    # NEEDS_UPDATE is given one reload first; the screen stays, so it is reported after it.
    assert rt.bus.wait(reason, timeout=within_a_probe(rt) + 3, status="DISCONNECTED", reason=reason)
    wait_until(lambda: "s1" not in rt.sessions, 10, what="the browser closed")
    no_logout_from_the_page(sim)
    sim.post("/sim/control/screen", {"screen": None, "phone": OWN})
    rt.bus.events.clear()
    rt.initialize("s1", 2)  # the login was saved: back without a QR
    rt.bus.wait("READY", status="READY")
    assert "QR_READY" not in rt.bus.statuses()


@on_2026
def test_an_unsupported_browser_is_reported_not_left_opening(make_runtime, sim):
    rt = make_runtime(user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                 "HeadlessChrome/156.0.0.0 Safari/537.36")
    rt.initialize("s1", 1)
    event = rt.bus.wait("UNSUPPORTED_BROWSER", timeout=15, status="DISCONNECTED")
    assert event["reason"] == "UNSUPPORTED_BROWSER"
    assert "QR_READY" not in rt.bus.statuses()


@on_2026
def test_the_other_window_conflict_is_taken_over_too(make_runtime, sim):
    rt = make_runtime(conflict_policy="takeover")
    link(rt, sim)
    sim.post("/sim/control/conflict", {"phone": OWN, "kind": "window"})  # "Use here" reloads the page
    wait_until(lambda: rt.sessions["s1"].takeovers == 1, within_a_probe(rt), what="a takeover")
    wait_until(lambda: rt.sessions["s1"].state == "CONNECTED", 15, what="the page back")
    assert "DISCONNECTED" not in "".join(rt.bus.statuses())
    assert rt.deliver("s1", 1, mid(), PEER, "after the takeover")
    no_logout_from_the_page(sim)


@on_2026
def test_the_onboarding_dialog_is_acknowledged_and_the_device_stays(make_runtime, sim):
    sim.post("/sim/control/config", {"onboarding_timeout": 3.0})
    rt = make_runtime()
    link(rt, sim)
    wait_until(lambda: any(d["onboarding"] == "acknowledged" for d in sim.get("/sim/control/state")["devices"]),
               within_a_probe(rt), what="Continue pressed")

    def past_the_timeout():  # on the simulator's own clock: an unanswered dialog would have unlinked us by then
        state = sim.get("/sim/control/state")
        device = next(d for d in state["devices"] if d["phone"] == OWN)
        shown = datetime.fromisoformat(device["onboarding_shown_at"])
        return datetime.fromisoformat(state["time"]) > shown + timedelta(seconds=3.0) and device

    device = wait_until(past_the_timeout, 10, what="the onboarding timeout passed")
    assert not device["revoked"]
    assert rt.bus.statuses()[-1] == "READY" and rt.deliver("s1", 1, mid(), PEER, "still linked")
    no_logout_from_the_page(sim)


@on_2026
def test_an_unknown_dialog_is_reported_once_and_never_answered(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    rt.sessions["s1"].driver.execute_script("""
        const wrap = document.createElement('div');
        wrap.innerHTML = '<div data-animate-modal-backdrop><div role="dialog" aria-modal="true">' +
          '<div data-animate-modal-popup><div data-animate-modal-body><h1>Something new</h1>' +
          '<div>Please choose.</div><button id="t-logout">Log out</button><button id="t-later">Later</button>' +
          '</div></div></div></div>';
        document.body.appendChild(wrap);
        window.__pressed = [];
        for (const b of wrap.querySelectorAll('button')) b.addEventListener('click', () => window.__pressed.push(b.id));
    """)
    notice = rt.bus.wait("page notice", timeout=within_a_probe(rt), status="session_notice")
    assert notice["kind"] == "unknown_dialog" and notice["buttons"] == ["Log out", "Later"]
    probes = {rt.sessions["s1"].next_probe}  # each look at the page sets the next one
    wait_until(lambda: probes.add(rt.sessions["s1"].next_probe) or len(probes) >= 3, within_a_probe(rt) * 2,
               what="two more looks at the page")
    assert len([e for e in rt.bus.events if e["status"] == "session_notice"]) == 1, "reported once"
    assert rt.sessions["s1"].driver.execute_script("return window.__pressed") == []


@on_2026
def test_a_page_that_reloads_itself_is_followed_not_crashed(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    linked = rt.bus.statuses()  # QR_READY, (AUTHENTICATED: a probe may miss it on a busy machine), READY
    assert linked[0] == "QR_READY" and linked[-1] == "READY"
    loads = sim.get("/sim/control/counters")["page_loads"]
    sim.post("/sim/control/reload", {"phone": OWN, "cause": "update"})
    wait_until(lambda: sim.get("/sim/control/counters")["page_loads"] > loads, 10, what="the self-reload")
    wait_until(lambda: rt.sessions["s1"].state == "CONNECTED", 15, what="the page back")
    assert rt.bus.statuses() == linked, "no crash, no disconnect"
    assert rt.deliver("s1", 1, mid(), PEER, "after the update")


@on_2026
def test_an_unknown_page_is_reported_and_loaded_again(make_runtime, sim):
    rt = make_runtime(unknown_page_grace=1.0)
    link(rt, sim)
    first_pid = chrome_pid(rt)
    with rt.sessions["s1"].lock:  # as if the page had wandered off somewhere unknown
        rt.sessions["s1"].driver.get(sim.base + "/sim/health")
    event = rt.bus.wait("UNKNOWN_PAGE", timeout=10, status="DISCONNECTED")
    assert event["reason"] == "UNKNOWN_PAGE"
    wait_until(lambda: rt.bus.statuses()[-1] == "READY", 15, what="READY again")
    assert chrome_pid(rt) == first_pid, "the same browser, the app loaded again"
    assert rt.deliver("s1", 1, mid(), PEER, "after the unknown page")


@on_2026
def test_a_page_that_stays_unknown_is_recycled_with_its_login(make_runtime, sim):
    rt = make_runtime(unknown_page_grace=1.0, stuck_timeout_seconds=4.0)
    link(rt, sim)
    first_pid = chrome_pid(rt)
    bs = rt.sessions["s1"]
    with bs.lock:  # loading the app again lands on an unknown page too
        bs.page.base_url = sim.base + "/sim/health"
        bs.driver.get(bs.page.base_url)
    rt.bus.wait("UNKNOWN_PAGE", timeout=10, status="DISCONNECTED")
    wait_until(lambda: "s1" in rt.sessions and chrome_pid(rt) != first_pid, 20, what="a new browser")
    wait_until(lambda: rt.bus.statuses()[-1] == "READY", 20, what="READY again")
    assert rt.bus.statuses().count("QR_READY") == 1, "the login was kept"


@on_2026
def test_the_page_version_goes_into_the_heartbeat(make_runtime, sim):
    from messaging import slots

    rt = make_runtime()
    link(rt, sim)
    wanted = sim.get("/sim/control/config")["version"]
    wait_until(lambda: rt.sessions["s1"].web_version == wanted, 10, what="the version read")
    rt._beat()
    mine = next(s for s in slots.live_slots(rt.redis) if s.name == rt.settings.slot_name)
    assert mine.web_versions == {"s1": wanted}
    slots.unregister(rt.redis, rt.settings.slot_name)


@every_route
def test_acks_of_messages_sent_before_a_slot_restart_are_still_followed(make_runtime, sim):
    sim.post("/sim/control/config", {"deliver_delay": -1, "read_delay": -1})  # acks come when we say
    rt = make_runtime()
    link(rt, sim)
    wa_id = rt.deliver("s1", 1, mid(), PEER, "before the restart")
    rt.watch_acks("s1", wa_id, "m1", "j1", PEER)
    rt.shutdown()  # the slot goes away; the login is saved

    again = make_runtime(slot_name=rt.settings.slot_name)
    again.initialize("s1", 2)
    again.bus.wait("READY", status="READY")
    sim.post("/sim/control/ack", {"ack": "delivered", "id": wa_id.split("_")[-1]})
    again.bus.wait("delivered", message_id="m1", status=MessageStatus.DELIVERED.value)
    sim.post("/sim/control/ack", {"ack": "read", "id": wa_id.split("_")[-1]})
    again.bus.wait("read", message_id="m1", status=MessageStatus.READ.value)
    got = [e["status"] for e in again.bus.events if e.get("message_id") == "m1"]
    assert got == ["delivered", "read"]
    wait_until(lambda: not again.redis.exists("wa:acks:s1"), 5, what="a read message no longer followed")


@pytest.mark.profiles("2026")
def test_a_portuguese_page_still_links_sends_and_sees_acks(make_runtime, sim):
    sim.post("/sim/control/config", {"locale": "pt-BR"})
    rt = make_runtime()
    link(rt, sim)
    wa_id = rt.deliver("s1", 1, mid(), PEER, "Olá")
    rt.watch_acks("s1", wa_id, "m1", "j1", PEER)
    rt.bus.wait("read", message_id="m1", status=MessageStatus.READ.value)
    assert rt.sessions["s1"].driver.execute_script("return document.documentElement.lang").startswith("pt")


@on_2026_both_routes
def test_a_login_that_cannot_connect_is_reported_and_recovers(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    rt.stop("s1", 1, forget=False)
    sim.post("/sim/control/connection", {"online": False, "kind": "computer"})
    rt.bus.events.clear()
    rt.initialize("s1", 2)  # boots with its login, but the socket cannot come up: "Connecting to WhatsApp"
    event = rt.bus.wait("CONNECTION_LOST", timeout=15, status="DISCONNECTED")
    assert event["reason"] == "CONNECTION_LOST"
    sim.post("/sim/control/connection", {"online": True})
    rt.bus.wait("READY", timeout=15, status="READY")
    no_logout_from_the_page(sim)


# --- sending without page loads (issue 9) -------------------------------------------------

TRICKY_TEXTS = [
    "Emoji 😀👍🏽 flags 🇮🇳🇧🇷 family 👨‍👩‍👧‍👦 keycap 1️⃣",  # outside the BMP, skin tones, ZWJ sequences
    "\u200fمرحبا بك\u200f and שלום \u202bRTL\u202c",  # right-to-left with direction marks
    "中文 日本語 한국어",
    "Combining: e\u0301 n\u0303 a\u030a; Devanagari नमस्ते; Tamil வணக்கம்",
    "line one\r\nline two\nline three\rline four",  # CRLF, LF and CR: line breaks, never an early send
    "*bold* _italic_ ~strike~ ```mono``` > quote - list 1. item",
    "   spaces around are trimmed   ",
    "Tab\there and <b>not html</b> &amp; 100% $HOME `x` \\n",
]


def _as_received(text: str) -> str:
    """What the network gets for a text: line breaks as LF, surrounding whitespace trimmed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


@every_route
def test_sends_open_chats_inside_the_app_without_page_loads(make_runtime, sim, profile):
    rt = make_runtime()
    link(rt, sim)
    device = lambda: next(d for d in sim.get("/sim/control/counters")["devices"] if d["phone"] == OWN)  # noqa: E731
    loads_before = device()["page_loads"]
    peers = [PEER, OTHER, "919876500011", PEER]
    for i, peer in enumerate(peers):
        rt.deliver("s1", 1, mid(), peer, f"in-app {i}")
    after = device()
    assert after["page_loads"] == loads_before, f"a send loaded the page: {after['loads'][-3:]}"
    assert after["deep_link_opens"] == 0
    assert after["chat_opens"] >= 3  # the same chat twice in a row stays open
    assert [m["text"] for m in sim.messages()] == [f"in-app {i}" for i in range(len(peers))]


@pytest.mark.profiles("2026", "legacy")
def test_any_text_a_person_can_type_arrives_as_typed(make_runtime, sim):
    rt = make_runtime()
    link(rt, sim)
    for i, text in enumerate(TRICKY_TEXTS):
        rt.deliver("s1", 1, mid(), PEER, text)
    got = [m["text"] for m in sim.messages(PEER)]
    assert got == [_as_received(t) for t in TRICKY_TEXTS]


@pytest.mark.profiles("2026")
def test_long_texts_and_captions_arrive_whole(make_runtime, sim, media_server):
    base, _ = media_server
    rt = make_runtime(media_allow_networks="127.0.0.0/8", send_timeout=60)
    link(rt, sim)
    hindi = ("नमस्ते दुनिया, यह एक लंबा संदेश है। " * 400)[:10_000]
    longest = ("x" * 99 + "\n") * 655 + "y" * 36  # 65,536 characters, 655 line breaks
    assert len(longest) == 65_536
    rt.deliver("s1", 1, mid(), PEER, hindi)
    rt.deliver("s1", 1, mid(), PEER, longest)
    rt.deliver("s1", 1, mid(), PEER, "Emoji caption 😀🇮🇳\nsecond line", [{"url": base + "/photo.png"}])
    got = sim.messages(PEER)
    assert [m["text"] for m in got[:2]] == [hindi.strip(), longest]
    assert got[2]["caption"] == "Emoji caption 😀🇮🇳\nsecond line", repr(got[2]["caption"])


@every_route
def test_any_text_a_person_can_type_arrives_as_a_caption(make_runtime, sim, media_server):
    """Each tricky text, and a non-Latin caption as long as the API takes (65,536
    characters, the limit of ``message``), as an image's caption: the network receives
    each message once, with the caption as typed (line breaks as LF, trimmed)."""
    base, _ = media_server
    rt = make_runtime(media_allow_networks="127.0.0.0/8", send_timeout=60)
    link(rt, sim)
    paragraph = "नमस्ते दुनिया, यह चित्र का एक लंबा विवरण है। " * 40 + "\n"
    longest = (paragraph * 40)[:65_536]  # about 36 line breaks (the simulator's editor redraws per line)
    assert len(longest) == 65_536
    captions = TRICKY_TEXTS + [longest]
    sent = [rt.deliver("s1", 1, mid(), PEER, caption, [{"url": base + "/photo.png"}]) for caption in captions]
    got = sim.messages(PEER)
    assert [m["serialized"] for m in got] == sent, "each caption went out exactly once"
    assert all(m["type"] == "image" and m["text"] is None for m in got)
    for caption, message in zip(captions, got):
        assert message["caption"] == _as_received(caption), (caption[:40], (message["caption"] or "")[:40])


@pytest.mark.profiles("2026")
def test_a_send_on_a_page_left_on_an_error_page_loads_the_app_first(make_runtime, sim):
    """A READY session's page wandered off the app (an error page, as an over-long URL once
    left it) just before a send: the send loads the app again and goes out."""
    rt = make_runtime(ready_probe_interval=30.0)  # before the monitor would notice
    link(rt, sim)
    with rt.sessions["s1"].lock:
        rt.sessions["s1"].driver.get(sim.base + "/no-such-page")
    assert rt.deliver("s1", 1, mid(), PEER, "after the error page")
    assert [m["text"] for m in sim.messages(PEER)] == ["after the error page"]


@every_route
@pytest.mark.parametrize("dialled, account", [
    ("5215534372942", "525534372942"),  # Mexico, written with the old "1"
    ("5511987654321", "551187654321"),  # Brazil: an older account known without the ninth digit
    ("552187654321", "5521987654321"),  # Brazil: dialled without it, the account has it
])
def test_a_number_reaches_the_account_whatsapp_answers_with(make_runtime, sim, dialled, account):
    sim.post("/sim/control/config", {"legacy_br_numbers": ["551187654321"]})
    rt = make_runtime()
    link(rt, sim)
    wa_id = rt.deliver("s1", 1, mid(), dialled, "to the account WhatsApp knows")
    assert rt.recipient_wid("s1", dialled) == f"{account}@c.us"
    assert [m["serialized"] for m in sim.messages(account)] == [wa_id]
    rt.deliver("s1", 1, mid(), dialled, "again")  # the chat stays open: no new navigation needed
    assert len(sim.messages(account)) == 2


# --- incoming messages --------------------------------------------------------------------

def incoming_events(rt: SlotRuntime) -> list[dict]:
    return [e for e in rt.bus.events if e["type"] == "incoming_message"]


@every_route
def test_replies_images_and_documents_arrive_without_opening_the_chat(make_runtime, sim, profile):
    """A reply quoting our message (its chat is open: our send opened it), an image with its
    caption and a document from another sender each become one incoming event; with the
    page's modules (2026) with its WhatsApp id, sender (a LID for PEER), media details and
    the id of ours it quotes; from the chat list alone (legacy, modules withheld) with its
    chat's number and preview. The other chat is never opened to read it."""
    rt = make_runtime()
    link(rt, sim)
    ours = rt.deliver("s1", 1, mid(), PEER, "Your appointment is at 10:00")
    quoted = sim.messages(PEER)[0]["id"]
    reply = sim.post("/sim/control/incoming", {"from": PEER, "text": "Can we make it 11?", "quote": quoted})
    first = rt.bus.wait("the reply", type="incoming_message", text="Can we make it 11?")
    sim.post("/sim/control/incoming", {"from": PEER, "type": "image", "text": "the form",
                                       "media": {"name": "form.png", "mimetype": "image/png", "size": 48213}})
    image = rt.bus.wait("the image", type="incoming_message", text="the form")
    sim.post("/sim/control/incoming", {"from": OTHER, "type": "document", "text": "minutes",
                                       "media": {"name": "minutes.pdf", "mimetype": "application/pdf", "size": 2048}})
    doc = rt.bus.wait("the document", type="incoming_message", text="minutes")
    assert first["sender_number"] == PEER and image["sender_number"] == PEER and doc["sender_number"] == OTHER
    if profile == "2026":
        assert first["route"] == "modules" and first["wa_message_id"] == reply["messages"][0]["id"]
        assert first["quoted_wa_message_id"] == message_key(ours)
        assert first["sender_wa_id"].endswith("@lid") and doc["sender_wa_id"] == f"{OTHER}@c.us"
        assert (image["msg_type"], image["media_kind"], image["media_mimetype"], image["media_filename"],
                image["media_size"]) == ("image", "image", "image/png", "form.png", 48213)
        assert (doc["msg_type"], doc["media_filename"], doc["media_size"]) == ("document", "minutes.pdf", 2048)
    else:
        assert {e["route"] for e in (first, image, doc)} == {"dom"}
        assert first["wa_message_id"] == f"dom-{PEER}-1" and image["wa_message_id"] == f"dom-{PEER}-2"
    assert len(incoming_events(rt)) == 3
    opened = [o for o in sim.get("/sim/control/counters")["chat_open_log"] if o.get("peer") == OTHER]
    assert opened == [], "a chat is never opened to read what arrived (opening marks it read)"


@every_route
def test_a_restarted_slot_does_not_report_old_messages_as_new_ones(make_runtime, sim, profile):
    """The same browser login in a new slot: on the DOM route nothing is reported again (its
    chat list state is in Redis); with the modules the page may hand a message over again,
    under the same WhatsApp id (the recorder keeps one row)."""
    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/incoming", {"from": PEER, "text": "before the restart"})
    before = rt.bus.wait("the message", type="incoming_message", text="before the restart")
    rt.shutdown()
    rt2 = make_runtime()
    rt2.initialize("s1", 2)
    rt2.bus.wait("READY again", status="READY")
    sim.post("/sim/control/incoming", {"from": OTHER, "text": "after the restart"})
    rt2.bus.wait("the next message", type="incoming_message", text="after the restart")
    again = [e for e in incoming_events(rt2) if e["text"] == "before the restart"]
    assert all(e["wa_message_id"] == before["wa_message_id"] for e in again)
    if profile != "2026":
        assert again == []


@every_route
def test_a_media_send_that_failed_in_its_editor_leaves_the_page_usable(make_runtime, sim, media_server):
    """Typing a caption fails once (as a page error would): the media editor that send left
    open is dropped with an app load, and the next media and text sends go out, each once;
    the failed one never reached the network."""
    base, _ = media_server
    rt = make_runtime(media_allow_networks="127.0.0.0/8", send_timeout=30)
    link(rt, sim)
    page = rt.sessions["s1"].page
    typed = page._type

    def failing(box, text):
        if text == "this caption fails":
            raise WebDriverException("the caption box went away")
        return typed(box, text)

    page._type = failing
    with pytest.raises(WebDriverException):
        rt.deliver("s1", 1, mid(), PEER, "this caption fails", [{"url": base + "/photo.png"}])
    sent = [rt.deliver("s1", 1, mid(), PEER, "the next photo", [{"url": base + "/photo.png"}]),
            rt.deliver("s1", 1, mid(), PEER, "and a text")]
    got = sim.messages(PEER)
    assert [m["serialized"] for m in got] == sent
    assert [m["caption"] or m["text"] for m in got] == ["the next photo", "and a text"]
