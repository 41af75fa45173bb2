"""Paced bulk sends end to end (issues 4 and 9).

Starts the simulator, the recorder, a control worker with beat and N slot workers (one
session each, SLOT_CAPACITY=1), against a fresh PostgreSQL database and Redis; links N
sessions by QR; then

1. one session sends a 50-message bulk alone: its time is compared with 50 x mean(G),
   G being the pacing gap (uniform in [--gap-min, --gap-max], the seed's 1-2 s by default);
2. the N sessions each send a 50-message bulk at once: the total time is compared with
   the single session's.

Times are the jobs' own: from created_at (accepted) to finished_at (the last message
recorded sent), as PostgreSQL holds them. CPU is the time the slot workers, their Chromes
and the simulator used during each phase (from /proc), per sent message. The simulator
serves its default page (2026, with its 4 s boot per full page load).

    python bench/bulk.py [--sessions 8] [--messages 50] [--gap-min 1 --gap-max 2]
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench.common import World, arguments, cpu_seconds, fresh_world, owned_pids  # noqa: E402
from browser.qr import read_qr_data_url  # noqa: E402
from messaging import slots  # noqa: E402
from models import Job, make_engine, make_sessionmaker  # noqa: E402
from settings import Settings  # noqa: E402
from tests.helpers import Proc, free_port, port_open, wait_until  # noqa: E402


def run_job(api, db, sessions: list[str], messages: int, tag: str) -> list[float]:
    """Each session sends a bulk at the same moment; returns each job's seconds."""
    jobs = []
    for i, session in enumerate(sessions):
        items = [{"to": f"9198{i:02d}{k:06d}", "message": f"{tag} {i}.{k}"} for k in range(messages)]
        r = api.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items})
        assert r.status_code == 202, r.json
        jobs.append(r.json["job_id"])

    def finished():
        with db() as s:
            rows = [s.get(Job, j) for j in jobs]
        return rows if all(r.finished_at for r in rows) else None

    rows = wait_until(finished, messages * 10 + 120, interval=0.5, what="the bulks to finish")
    for r in rows:
        assert r.status == "completed", (r.id, r.status)
    return [(r.finished_at - r.created_at).total_seconds() for r in rows], rows


def main() -> None:
    args = arguments(__doc__, sessions=(8, "sessions sending at once, one bulk each"),
                     messages=(50, "messages per bulk"), gap_min=(1.0, "pacing: the shortest gap, seconds"),
                     gap_max=(2.0, "pacing: the longest gap, seconds"),
                     sim_poll_ms=(200, "how often each simulated page polls its server (the real page is pushed to)"))

    with fresh_world("bulk") as world:
        run(args, world)


def run(args, world: World) -> None:
    logs, db_url, redis_url = world.logs, world.database_url, world.redis_url
    sim_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url, "REDIS_URL": redis_url,
           "WA_WEB_URL": f"http://127.0.0.1:{sim_port}/", "BROWSER_WORK_DIR": str(world.work / "browsers"),
           "PROFILE_DIR": str(world.work / "profiles"), "SLOT_CAPACITY": "1", "LOG_LEVEL": "WARNING",
           "DISPATCH_GRACE_SECONDS": "10", "HOURLY_CAP": "1000", "SIM_POLL_MS": str(args.sim_poll_ms)}
    slot_names = [f"bench-{i}" for i in range(args.sessions)]
    procs = [Proc("simulator", ["-m", "simulator", "--port", str(sim_port), "--quiet"], env, logs),
             Proc("recorder", ["-m", "workers.recorder"], env, logs),
             Proc("control", ["-m", "celery", "-A", "workers.app", "worker", "--queues", "control", "--pool", "solo",
                              "--beat", "--schedule", str(logs / "beat"), "--without-gossip", "--without-mingle",
                              "--loglevel", "WARNING"], env, logs)]
    procs += [Proc(n, ["-m", "workers.slot"], {**env, "SLOT_NAME": n}, logs) for n in slot_names]
    client = redis.Redis.from_url(redis_url)
    try:
        for p in procs:
            p.start()
        wait_until(lambda: port_open(sim_port), 20, what="simulator")
        wait_until(lambda: len(slots.live_slots(client)) == args.sessions, 120, what="slots")
        from dataclasses import replace

        from api import create_app
        from api.keys import create_key

        settings = replace(Settings.from_env(), database_url=db_url, redis_url=redis_url,
                           dispatch_grace_seconds=10)
        app = create_app(settings)
        _, key = create_key(app.extensions["wa"].db, "bench", admin=True)
        api = app.test_client()
        api.environ_base["HTTP_X_API_KEY"] = key
        db = make_sessionmaker(make_engine(db_url))
        pacing = {"min_gap_seconds": args.gap_min, "max_gap_seconds": args.gap_max, "hourly_cap": 1000,
                  "daily_cap": 0}
        sessions = []
        for i in range(args.sessions):
            user = f"bench_{i}"
            assert api.post("/webjs/sessions", json={"user_id": user, "pacing": pacing}).status_code == 201
            assert api.post(f"/webjs/sessions/{user}/initialize").status_code == 200, "placed"
            payload = read_qr_data_url(api.get(f"/webjs/sessions/{user}/qr").json["qr_code"])
            requests.post(f"http://127.0.0.1:{sim_port}/sim/phone/scan",
                          json={"payload": payload, "phone": f"91970000{i:04d}"}, timeout=5).raise_for_status()
            wait_until(lambda u=user: api.get(f"/webjs/sessions/{u}/status").json["status"] == "READY", 60)
            sessions.append(user)
        mean_gap = (args.gap_min + args.gap_max) / 2
        target = args.messages * mean_gap * 1.10
        print(f"{args.sessions} slots, {args.messages} messages per bulk, gap uniform "
              f"[{args.gap_min}, {args.gap_max}] s (mean {mean_gap} s), simulator polling every "
              f"{args.sim_poll_ms} ms", flush=True)

        def browser_cpu() -> float:
            """CPU seconds so far of every slot worker with its Chromes, and of the simulator."""
            pids = [pid for p in procs if p.name in slot_names for pid in owned_pids(p.name, p.popen.pid)]
            return cpu_seconds(pids + [procs[0].popen.pid])

        cpu0 = browser_cpu()
        (single,), _ = run_job(api, db, sessions[:1], args.messages, "alone")
        cpu_single = browser_cpu() - cpu0
        print(f"one session: {single:.1f} s for {args.messages} messages; target {args.messages} x {mean_gap} + 10 % "
              f"= {target:.1f} s: {'met' if single <= target else 'NOT met'}", flush=True)

        print(f"CPU (slot workers, their Chromes, the simulator) per sent message, one session: "
              f"{cpu_single / args.messages:.3f} s", flush=True)
        cpu0 = browser_cpu()
        times, rows = run_job(api, db, sessions, args.messages, "together")
        cpu_together = browser_cpu() - cpu0
        total = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
        print(f"{args.sessions} sessions in parallel: total {total:.1f} s (each {min(times):.1f}-{max(times):.1f} s); "
              f"{total / single:.2f} x one session's time; target within 15 %: "
              f"{'met' if total <= single * 1.15 else 'NOT met'}", flush=True)
        print(f"CPU per sent message, {args.sessions} sessions at once: "
              f"{cpu_together / (args.messages * args.sessions):.3f} s", flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        subprocess.run(["pkill", "-f", "wa-owner=bench-"], check=False)


if __name__ == "__main__":
    main()
