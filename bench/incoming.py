"""Incoming latency end to end (issue 13): from the simulated phone sending a message to
the ``message.received`` webhook reaching the service.

Starts the simulator (its default 2026 page), the recorder, a control worker with beat
(it delivers webhooks) and one slot worker against a fresh PostgreSQL database and Redis;
links one session whose webhooks go to a receiver on loopback; then the phone sends N
messages, one every --every seconds (a fixed pace keeps the arrivals independent of the
probes). Each latency is the receiver's arrival time minus the time just before the
phone's send was posted to the simulator (one clock: this process).

    python bench/incoming.py [--messages 40] [--every 1.3] [--ready-probe 2.0]
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench.common import World, arguments, fresh_world  # noqa: E402
from browser.qr import read_qr_data_url  # noqa: E402
from messaging import slots  # noqa: E402
from settings import Settings  # noqa: E402
from tests.helpers import Proc, free_port, port_open, wait_until  # noqa: E402

PHONE = "919700000001"
PEER = "919812300777"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    args = arguments(__doc__, messages=(40, "messages the phone sends"),
                     every=(1.3, "seconds between two messages of the phone"),
                     ready_probe=(2.0, "READY_PROBE_INTERVAL of the slot"))
    with fresh_world("incoming") as world:
        run(args, world)


def run(args, world: World) -> None:
    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["type"] == "message.received":
                arrived.setdefault(body["data"]["whatsapp_message_id"], time.time())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"

    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": world.database_url, "REDIS_URL": world.redis_url,
           "WA_WEB_URL": f"{sim}/", "BROWSER_WORK_DIR": str(world.work / "browsers"),
           "PROFILE_DIR": str(world.work / "profiles"), "SLOT_CAPACITY": "1", "LOG_LEVEL": "WARNING",
           "SLOT_NAME": "bench-in", "WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
           "READY_PROBE_INTERVAL": str(args.ready_probe)}
    logs = world.logs
    procs = [Proc("simulator", ["-m", "simulator", "--port", str(sim_port), "--quiet"], env, logs),
             Proc("recorder", ["-m", "workers.recorder"], env, logs),
             Proc("control", ["-m", "celery", "-A", "workers.app", "worker", "--queues", "control", "--pool", "solo",
                              "--beat", "--schedule", str(logs / "beat"), "--without-gossip", "--without-mingle",
                              "--loglevel", "WARNING"], env, logs),
             Proc("slot", ["-m", "workers.slot"], env, logs)]
    client = redis.Redis.from_url(world.redis_url)
    try:
        for p in procs:
            p.start()
        wait_until(lambda: port_open(sim_port), 20, what="simulator")
        wait_until(lambda: len(slots.live_slots(client)) == 1, 120, what="slot")
        from dataclasses import replace

        from api import create_app
        from api.keys import create_key

        app = create_app(replace(Settings.from_env(), database_url=world.database_url, redis_url=world.redis_url))
        _, key = create_key(app.extensions["wa"].db, "bench", admin=True)
        api = app.test_client()
        api.environ_base["HTTP_X_API_KEY"] = key
        assert api.post("/webjs/sessions", json={"user_id": "bench_in", "callback_url": hook_url}).status_code == 201
        assert api.post("/webjs/sessions/bench_in/initialize").status_code == 200
        payload = read_qr_data_url(api.get("/webjs/sessions/bench_in/qr").json["qr_code"])
        requests.post(f"{sim}/sim/phone/scan", json={"payload": payload, "phone": PHONE}, timeout=5).raise_for_status()
        wait_until(lambda: api.get("/webjs/sessions/bench_in/status").json["status"] == "READY", 90, what="READY")
        sent: dict[str, float] = {}
        start = time.monotonic()
        for i in range(args.messages):
            time.sleep(max(0.0, start + i * args.every - time.monotonic()))
            at = time.time()
            r = requests.post(f"{sim}/sim/control/incoming", json={"from": PEER, "text": f"reply {i}", "to": PHONE},
                              timeout=5)
            r.raise_for_status()
            sent[r.json()["messages"][0]["id"]] = at
        wait_until(lambda: set(sent) <= set(arrived), 120, interval=0.2, what="every webhook")
        lat = [arrived[k] - sent[k] for k in sent]
        print(f"{len(lat)} messages, one every {args.every} s, READY pages probed every {args.ready_probe} s, "
              f"webhooks delivered by beat every 2 s")
        print(f"latency phone -> webhook: p50 {percentile(lat, 50):.2f} s, p95 {percentile(lat, 95):.2f} s, "
              f"min {min(lat):.2f} s, max {max(lat):.2f} s, mean {statistics.mean(lat):.2f} s")
    finally:
        for p in reversed(procs):
            p.stop()
        receiver.shutdown()


if __name__ == "__main__":
    main()
