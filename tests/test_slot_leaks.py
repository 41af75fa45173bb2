"""A long-running slot leaks nothing (issue 12 item 5), with the real Chromium: no
``<defunct>`` chromedriver or Chrome after restarts and deletes, the slot's chromedriver
copy is removed when it stops, a running browser's memory is never reported as 0, and a
slot whose chromedriver is already gone says so in one line."""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from browser.chrome import DRIVER_COPY_PREFIX, processes
from messaging import slots
from tests.helpers import serving, wait_until
from workers.slot_runtime import SlotRuntime

RESTARTS = 5
PAGE = {"/": ("text/html", b"<!doctype html><title>blank</title><p>not WhatsApp</p>")}


class NoBus:
    """Events go nowhere: this test looks at processes and files."""

    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


def zombie_children() -> list[str]:
    """This process's children that exited and were not waited for: 'pid name'."""
    return [f"{pid} {name}" for pid, name, state, ppid in processes() if ppid == os.getpid() and state == "Z"]


def driver_copies(work_dir: Path) -> list[Path]:
    return sorted(work_dir.glob(f"{DRIVER_COPY_PREFIX}*"))


@pytest.fixture
def page_url():
    with serving(PAGE) as base:
        yield base + "/"


def test_a_slot_restarted_five_times_leaves_no_zombie_and_one_driver_copy_at_most(settings, redis_client, tmp_path,
                                                                                  page_url, caplog):
    work_dir = tmp_path / "browsers"
    s = replace(settings, wa_web_url=page_url, browser_work_dir=str(work_dir), profile_dir=str(tmp_path / "profiles"),
                slot_name=f"leaks-{secrets.token_hex(3)}", slot_heartbeat_ttl=60)
    dead_copy = work_dir / f"{DRIVER_COPY_PREFIX}999999999"  # of a worker killed before it could remove it
    work_dir.mkdir(parents=True)
    dead_copy.write_bytes(b"x")
    try:
        for restart in range(RESTARTS):
            rt = SlotRuntime(s, client=redis_client, bus=NoBus())
            rt.start(heartbeat=False)
            assert not dead_copy.exists()
            session_id = f"s{restart}"
            rt.initialize(session_id, 1)
            assert session_id in rt.sessions, "the browser started"
            assert len(driver_copies(work_dir)) == 1
            rt._beat()  # the first heartbeat after the start measures the new browser
            beat = next(i for i in slots.live_slots(redis_client) if i.name == s.slot_name)
            assert beat.sessions[session_id] > 10 * 2**20, "a running browser's memory is never 0"
            if restart % 2:  # a delete, then the slot stops with nothing running
                rt.stop(session_id, 1, forget=True)
            elif restart == RESTARTS - 1:  # its chromedriver dies first (a signal to the process group)
                rt.stopping()  # as the worker's stop signal does: the monitor no longer probes
                driver_process = rt.sessions[session_id].driver.service.process
                driver_process.kill()
                wait_until(lambda: driver_process.poll() is not None, 10, what="chromedriver gone")
                caplog.clear()
                caplog.set_level(logging.INFO)
            rt.shutdown()
            assert zombie_children() == [], f"after restart {restart + 1}"
            assert driver_copies(work_dir) == [], "the copy goes with the slot"
    finally:
        slots.unregister(redis_client, s.slot_name)
    # urllib3's "Connection pool is full" comes from two threads talking to one Chrome at
    # once (a probe and the stop), whether or not chromedriver is gone: not one of the lines.
    lines = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "slot"
             and not r.getMessage().startswith("Connection pool is full")]
    assert [r.name for r in lines] == ["browser.chrome"], [r.getMessage() for r in lines]
    assert "chromedriver already gone" in lines[0].getMessage()
