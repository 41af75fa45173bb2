"""How many READY sessions this machine holds, and what each costs (issue 5).

Starts the simulator, the recorder and one slot worker (SLOT_CAPACITY = --sessions)
against a fresh PostgreSQL database and Redis, links --sessions sessions by QR, one after
the other, and then measures, with all of them READY:

* browser memory per session: the PSS of each Chrome's whole process tree, as the slot
  reports it in its heartbeat (mean, max, total);
* idle CPU: the CPU time of the slot worker and every Chrome over --idle seconds;
* restore -> READY for --restores sessions: the browser is stopped (login saved to the
  profile store), its local profile deleted (as on another host), and initialize times
  until READY (the login comes back from the archive, no QR);
* the archive of a simulator login: its size, against the login parts unpacked and the
  whole Chrome profile.

The simulator serves its default page profile (2026). ``--page-heap-mb`` gives each page
the weight of the real app (SIM_PAGE_HEAP_MB: that much live JavaScript memory, touched
every second; public figures put a WhatsApp Web tab at 250-400 MB), so that the figures
predict production rather than the light simulator page; 0 measures the bare page.

    python bench/capacity.py [--sessions 40] [--idle 30] [--restores 10] [--page-heap-mb 150]
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench.common import World, arguments, cpu_seconds, du, fresh_world, owned_pids  # noqa: E402
from browser.qr import read_qr_data_url  # noqa: E402
from messaging import dispatch, slots  # noqa: E402
from settings import Settings  # noqa: E402
from storage.profiles import LOGIN_PARTS, LocalProfileStore  # noqa: E402
from tests.helpers import Proc, free_port, port_open, wait_until  # noqa: E402


def main() -> None:
    args = arguments(__doc__, sessions=(40, "READY sessions on the one slot"),
                     idle=(30.0, "seconds they sit idle while measured"),
                     restores=(10, "sessions restored from their saved login"),
                     page_heap_mb=(150.0, "the simulated app's heap per page"),
                     boot_seconds=(4.0, "the simulated app's boot per page load"))

    with fresh_world("capacity") as world:
        run(args, world)


def run(args, world: World) -> None:
    work, logs, db_url, redis_url = world.work, world.logs, world.database_url, world.redis_url
    client = redis.Redis.from_url(redis_url)
    sim_port = free_port()
    slot = "capacity"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url, "REDIS_URL": redis_url,
           "WA_WEB_URL": f"http://127.0.0.1:{sim_port}/", "BROWSER_WORK_DIR": str(work / "browsers"),
           "PROFILE_DIR": str(work / "profiles"), "SLOT_NAME": slot, "SLOT_CAPACITY": str(args.sessions),
           "LOG_LEVEL": "WARNING", "SIM_SYNC_DELAY": "0.5", "SIM_PAGE_HEAP_MB": str(args.page_heap_mb),
           "SIM_BOOT_SECONDS": str(args.boot_seconds)}
    procs = [Proc("simulator", ["-m", "simulator", "--port", str(sim_port), "--quiet"], env, logs),
             Proc("recorder", ["-m", "workers.recorder"], env, logs),
             Proc("slot", ["-m", "workers.slot"], env, logs)]
    try:
        for p in procs:
            p.start()
        wait_until(lambda: port_open(sim_port), 20, what="simulator")
        wait_until(lambda: slots.live_slots(client), 60, what="the slot")
        from api import create_app
        from api.keys import create_key

        app = create_app(replace(Settings.from_env(), database_url=db_url, redis_url=redis_url))
        svc = app.extensions["wa"]
        _, key = create_key(svc.db, "bench", admin=True)
        api = app.test_client()
        api.environ_base["HTTP_X_API_KEY"] = key

        def status(session: str) -> dict:
            return api.get(f"/webjs/sessions/{session}/status").json

        started = time.monotonic()
        sessions = []
        for i in range(args.sessions):
            user = f"cap_{i}"
            assert api.post("/webjs/sessions", json={"user_id": user}).status_code == 201
            r = api.post(f"/webjs/sessions/{user}/initialize")
            if r.status_code != 200:
                print(f"session {i + 1}: initialize answered {r.status_code} {r.json}", flush=True)
                break
            try:
                payload = read_qr_data_url(api.get(f"/webjs/sessions/{user}/qr").json["qr_code"])
            except ValueError:  # no QR within the API's QR wait: the machine is full
                print(f"session {i + 1}: no QR within {Settings.from_env().qr_wait_seconds:.0f} s; "
                      f"measuring the {len(sessions)} READY ones", flush=True)
                break
            requests.post(f"http://127.0.0.1:{sim_port}/sim/phone/scan",
                          json={"payload": payload, "phone": f"91960000{i:04d}"}, timeout=5).raise_for_status()
            wait_until(lambda u=user: status(u)["status"] == "READY", 90, what=f"{user} READY")
            sessions.append(user)
            if (i + 1) % 10 == 0:
                print(f"{i + 1} sessions READY after {time.monotonic() - started:.0f} s", flush=True)
        print(f"{len(sessions)} concurrent READY sessions on one slot (page heap {args.page_heap_mb:.0f} MB, "
              f"boot {args.boot_seconds:.1f} s)", flush=True)

        time.sleep(10)  # settle: first backups, page loads done
        wait_until(lambda: len(slots.live_slots(client)[0].sessions) == len(sessions), 30)
        memory = list(slots.live_slots(client)[0].sessions.values())
        mb = [m / 2**20 for m in memory]
        print(f"browser memory per session (process tree PSS): mean {statistics.mean(mb):.0f} MB, "
              f"max {max(mb):.0f} MB, total {sum(mb) / 1024:.2f} GiB", flush=True)
        worker_pid = procs[2].popen.pid
        pids = owned_pids(slot, worker_pid)
        before, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(args.idle)
        used = cpu_seconds(owned_pids(slot, worker_pid)) - before
        elapsed = time.monotonic() - t0
        print(f"idle CPU with {len(sessions)} READY sessions: {100 * used / elapsed:.0f} % of one core "
              f"({100 * used / elapsed / len(sessions):.1f} % per session), over {elapsed:.0f} s", flush=True)

        store = LocalProfileStore(work / "profiles")
        profile = work / "browsers" / "profiles" / sessions[0]
        whole = du(profile)
        login = sum(du(profile / part) for part in LOGIN_PARTS if (profile / part).exists())

        times = []
        for user in sessions[:args.restores]:
            dispatch.stop_session(svc.celery, slot=slot, session_id=user, epoch=2**62, forget=False)
            wait_until(lambda u=user: u not in slots.live_slots(client)[0].sessions, 30, what="stopped")
            # As on another host: only the archive. (Chrome may still be writing as it exits.)
            local = work / "browsers" / "profiles" / user
            wait_until(lambda p=local: shutil.rmtree(p, ignore_errors=True) or not p.exists(), 30,
                       what="the local profile removed")
            with svc.db.begin() as s:  # as after a redeploy
                from models import WhatsAppSession

                row = s.query(WhatsAppSession).filter_by(session_id=user).one()
                row.status, row.status_reason = "DISCONNECTED", "BENCH"
            t0 = time.monotonic()
            assert api.post(f"/webjs/sessions/{user}/initialize").status_code == 200
            wait_until(lambda u=user: status(u)["status"] == "READY", 60, interval=0.05, what="READY again")
            times.append(time.monotonic() - t0)
        archive = store.latest(sessions[0])
        size = (store.root / archive).stat().st_size if archive else 0
        print(f"restore -> READY (n={len(times)}): p50 {statistics.median(times):.2f} s, max {max(times):.2f} s",
              flush=True)
        print(f"archive of a simulator login: {size / 1024:.1f} KiB (login parts unpacked {login / 1024:.0f} KiB; "
              f"whole Chrome profile {whole / 2**20:.1f} MiB)", flush=True)
    finally:
        for p in reversed(procs):
            p.stop(timeout=120)
        subprocess.run(["pkill", "-f", f"wa-owner={slot}"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
