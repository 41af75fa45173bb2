"""Browser timings of the slot's driver against the simulator (issues 3 and 8).

Each run starts a fresh session on a real headless Chromium through the code a slot
worker runs (``workers.slot_runtime.SlotRuntime``, its monitor thread included) and measures:

* initialize -> first QR event (Chrome start, page load with its boot time, QR read, PNG made),
* scan -> READY event (the simulator's sync screen lasts SIM_SYNC_DELAY, default 1 s),
* one text send (open the chat in the app, insert the text, Enter, until the server has it; no pacing),
* one image send (download from a local server, attach, caption, upload, server ack),
* ack latency: from the simulated phone's delivered / read receipt (forced through the
  control API) to the slot's delivered / read event;
* full page loads per 100 sends (the simulator's counter; the target is none after a
  session's first load).

Each page profile of the simulator is measured in turn (``--profiles 2026,legacy``); the
2026 profile boots for SIM_BOOT_SECONDS on every full page load (``--boot-seconds``,
default the simulator's 4 s, from the public stage minimums and field boot times).

    python bench/browser.py [--runs 10] [--sends 3] [--profiles 2026,legacy] [--boot-seconds 4]

Prints every sample's p50 / p95 / max. Needs Redis (REDIS_URL, default
redis://127.0.0.1:6379/12) for the sent-part markers of media sends.
"""
from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402

from settings import Settings  # noqa: E402
from tests.helpers import free_port, serving  # noqa: E402
from workers.slot_runtime import SlotRuntime  # noqa: E402

PEER = "919876543210"


class TimedBus:
    """Session events with the monotonic time they were published."""

    def __init__(self):
        self.events: list[tuple[float, dict]] = []
        self._cond = threading.Condition()

    def session(self, session_id, epoch, status, **fields):
        with self._cond:
            self.events.append((time.monotonic(), {"session_id": session_id, "status": status, **fields}))
            self._cond.notify_all()

    def message(self, message_id, job_id, session_id, status, **fields):
        with self._cond:
            self.events.append((time.monotonic(), {"session_id": session_id, "message_id": message_id,
                                                   "status": status}))
            self._cond.notify_all()

    def page_notice(self, *args, **kwargs):
        pass

    def backup(self, *args):
        pass

    def notify_session(self, *args):
        pass

    def wait(self, session_id: str, status: str, timeout: float = 60.0, **match) -> tuple[float, dict]:
        def found():
            return next(((t, e) for t, e in self.events if e["session_id"] == session_id and e["status"] == status
                         and all(e.get(k) == v for k, v in match.items())), None)

        with self._cond:
            if not self._cond.wait_for(found, timeout):
                raise RuntimeError(f"{session_id}: no {status} in {timeout}s")
            return found()


def page_loads(base: str, phone: str) -> int:
    """Full page loads of the device linked by ``phone``, as the simulator counts them."""
    counters = requests.get(base + "/sim/control/counters", timeout=5).json()
    return sum(d["page_loads"] for d in counters.get("devices", []) if d["phone"] == phone)


def image_bytes() -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (640, 480), secrets.token_bytes(640 * 480 * 3)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{name:<28} n={len(samples):<3} p50={statistics.median(samples) * 1000:7.0f} ms  "
            f"p95={p95 * 1000:7.0f} ms  max={max(samples) * 1000:7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sends", type=int, default=3, help="text and image sends per run")
    parser.add_argument("--profiles", default="2026,legacy", help="simulator page profiles, in turn")
    parser.add_argument("--boot-seconds", type=float, default=None,
                        help="SIM_BOOT_SECONDS of the 2026 profile (default: the simulator's own)")
    args = parser.parse_args()

    photo = image_bytes()
    for profile in args.profiles.split(","):
        work = Path(tempfile.mkdtemp(prefix="wa-bench-browser-"))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SIM_PROFILE": profile}
        if args.boot_seconds is not None:
            env["SIM_BOOT_SECONDS"] = str(args.boot_seconds)
        sim = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port), "--quiet"], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            with serving({"/photo.jpg": ("image/jpeg", photo)}) as files:
                measure(args, work, base, files + "/photo.jpg", len(photo))
        finally:
            sim.terminate()
            sim.wait(10)


def measure(args, work: Path, base: str, image_url: str, image_size: int) -> None:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    settings = replace(Settings.from_env(), wa_web_url=base + "/", redis_url=redis_url,
                       browser_work_dir=str(work / "browsers"), profile_dir=str(work / "profiles"),
                       media_allow_networks="127.0.0.0/8", slot_name="bench-browser")
    bus = TimedBus()
    rt = SlotRuntime(settings, client=redis.Redis.from_url(redis_url), bus=bus)
    rt.start(heartbeat=False)
    first_qr, ready, text, image, delivered, read = [], [], [], [], [], []
    loads_during_sends, sends = 0, 0
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/sim/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        config = requests.get(base + "/sim/control/config", timeout=5).json()
        # Receipts come when this benchmark says, so that their latency is measured alone.
        requests.post(base + "/sim/control/config", json={"deliver_delay": -1, "read_delay": -1},
                      timeout=5).raise_for_status()
        boot = config.get("boot_seconds", 0) if config.get("profile", "legacy") != "legacy" else 0
        print(f"profile {config.get('profile', 'legacy')}: boot {boot}s per page load, "
              f"sync_delay={config['sync_delay']}s, page probe every {settings.page_probe_interval}s "
              f"({settings.ready_probe_interval}s once READY), {args.runs} runs x {args.sends} sends, "
              f"image {image_size // 1024} KiB")
        for run in range(args.runs):
            sid, phone = f"bench-{run}", f"9198000{run:05d}"
            started = time.monotonic()
            rt.initialize(sid, 1)
            t_qr, qr = bus.wait(sid, "QR_READY")
            first_qr.append(t_qr - started)
            scanned = time.monotonic()
            requests.post(base + "/sim/phone/scan", json={"payload": qr["qr"], "phone": phone}, timeout=5).raise_for_status()
            t_ready, _ = bus.wait(sid, "READY")
            ready.append(t_ready - scanned)
            loads_before = page_loads(base, phone)
            for i in range(args.sends):
                t0 = time.monotonic()
                message_id = f"bench-{secrets.token_hex(6)}"
                wa_id = rt.deliver(sid, 1, message_id, PEER, f"Benchmark text {run}.{i}")
                text.append(time.monotonic() - t0)
                rt.watch_acks(sid, wa_id, message_id, "bench", PEER)
                for level, samples in (("delivered", delivered), ("read", read)):
                    t0 = time.monotonic()
                    requests.post(base + "/sim/control/ack", json={"ack": level, "id": wa_id.split("_")[-1]},
                                  timeout=5).raise_for_status()
                    t_seen, _ = bus.wait(sid, level, message_id=message_id)
                    samples.append(t_seen - t0)
                t0 = time.monotonic()
                rt.deliver(sid, 1, f"bench-{secrets.token_hex(6)}", PEER, f"Benchmark image {run}.{i}",
                           [{"url": image_url}])
                image.append(time.monotonic() - t0)
            loads_during_sends += page_loads(base, phone) - loads_before
            sends += 2 * args.sends
            rt.stop(sid, 1, forget=True)
            print(f"run {run + 1}: qr {first_qr[-1]:.2f}s ready {ready[-1]:.2f}s "
                  f"text {statistics.median(text[-args.sends:]):.2f}s image {statistics.median(image[-args.sends:]):.2f}s",
                  flush=True)
    finally:
        rt.shutdown()
    print()
    print(summary("initialize -> first QR", first_qr))
    print(summary("scan -> READY", ready))
    print(summary("text send", text))
    print(summary("image send", image))
    print(summary("delivered receipt -> event", delivered))
    print(summary("read receipt -> event", read))
    print(f"full page loads per 100 sends: {100 * loads_during_sends / max(sends, 1):.1f} "
          f"({loads_during_sends} in {sends} sends, after each session's first load)")
    print()


if __name__ == "__main__":
    main()
