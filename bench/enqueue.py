"""Enqueue throughput: POST send-message through gunicorn at 64 concurrent clients.

Runs the API under gunicorn (the Procfile's settings) against PostgreSQL and Redis,
with one READY session placed on a slot nobody consumes, so only accepting is measured.
In the same run, a baseline endpoint that does one equivalent INSERT and nothing else.
Each request goes to its own recipient. Sends are measured with an admin key and with a
scoped key; prints requests/s, p50/p99 latency, sends accepted and tasks queued (wrk),
and the ratios.

    python bench/enqueue.py [--duration 20] [--connections 64]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from models import WhatsAppSession, make_engine, make_sessionmaker  # noqa: E402
from tests.helpers import free_port  # noqa: E402

# Each request to its own recipient: messages to one number wait for the one before them
# (per-recipient order), so a fixed number would measure almost no Celery enqueue.
# Numbers 919<thread><8-digit counter>: valid Indian mobiles, distinct across threads and runs.
LUA = """
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
init = function(args)
  id = tonumber(wrk.thread:get("id")) or 0
  n = %d  -- each run starts at its own offset: no number is used twice in one benchmark
end
request = function()
  n = n + 1
  local body = string.format('{"to": "919%%d%%08d", "message": "Hello from the benchmark"}', id %% 10, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-API-Key"] = "%s"}, body)
end
"""


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not open")


def parse_wrk(out: str) -> dict:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    failed = int(non2xx.group(1)) if non2xx else 0
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": failed, "accepted": total - failed,
            "socket_errors": errors.group(0) if errors else ""}


def run_wrk(url: str, script: Path, connections: int, duration: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("API_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("API_THREADS", 16)))
    parser.add_argument("--kinds", default="admin,scoped", help="API keys to measure sends with, in turn")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is missing (apt-get install wrk)")

    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    name = f"wa_bench_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = admin.rsplit("/", 1)[0] + "/" + name
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT),
           "LOG_LEVEL": "WARNING"}
    gunicorn = None
    try:
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        keys = {kind: subprocess.run([sys.executable, "-m", "api.keys", "create", "bench", *flags], cwd=ROOT,
                                     env=env, check=True, capture_output=True, text=True).stdout.strip()
                for kind, flags in (("admin", ["--admin"]), ("scoped", ["--scope", "bench_"]))
                if kind in args.kinds.split(",")}
        db = make_sessionmaker(make_engine(db_url))
        with db.begin() as s:
            s.add(WhatsAppSession(user_id="bench_user", session_id="bench_user", status="READY",
                                  is_ready=True, is_authenticated=True, slot="bench-slot", epoch=1))
        port = free_port()
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:api.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
             "--worker-class", "gthread",
             "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning",
             "--no-control-socket",  # the default path is shared by every gunicorn of the user
             "bench.app:app"], cwd=ROOT, env=env, start_new_session=True)
        wait_port(port)
        runs = iter(range(10))

        def script_for(key: str) -> Path:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(LUA % (next(runs) * 10_000_000, key))
                return Path(f.name)

        base = f"http://127.0.0.1:{port}"
        queue = redis.Redis.from_url(redis_url)
        send_url = f"{base}/webjs/sessions/bench_user/send-message"
        # Warm every path (connection pools, caches) before measuring.
        for key in keys.values():
            run_wrk(send_url, script_for(key), 8, 2)
        any_key = next(iter(keys.values()))
        run_wrk(f"{base}/bench/baseline", script_for(any_key), 8, 2)
        # Each kind twice, alternating, so that neither gains from running later.
        samples: dict[str, list[dict]] = {kind: [] for kind in keys}
        for kind in [*keys, *reversed(list(keys))]:
            before = queue.llen("slot.bench-slot")
            sample = run_wrk(send_url, script_for(keys[kind]), args.connections, args.duration)
            sample["queued"] = queue.llen("slot.bench-slot") - before
            samples[kind].append(sample)
        sends = {kind: {"rps": sum(x["rps"] for x in xs) / len(xs), "p50_ms": max(x["p50_ms"] for x in xs),
                        "p99_ms": max(x["p99_ms"] for x in xs), "accepted": sum(x["accepted"] for x in xs),
                        "queued": sum(x["queued"] for x in xs), "non_2xx": sum(x["non_2xx"] for x in xs)}
                 for kind, xs in samples.items()}
        base_r = run_wrk(f"{base}/bench/baseline", script_for(any_key), args.connections, args.duration)
        print(f"machine: {os.cpu_count()} cores; gunicorn gthread {args.workers}x{args.threads}; "
              f"{args.connections} connections, {args.duration}s each; one recipient per request")
        for kind, send in sends.items():
            print(f"send-message ({kind:6} key, 2 runs): {send['rps']:8.1f} req/s  p50 {send['p50_ms']:6.1f} ms  "
                  f"p99 {send['p99_ms']:6.1f} ms  accepted {send['accepted']}  tasks queued {send['queued']}  "
                  f"non-2xx {send['non_2xx']}")
        print(f"baseline              : {base_r['rps']:8.1f} req/s  p50 {base_r['p50_ms']:6.1f} ms  "
              f"p99 {base_r['p99_ms']:6.1f} ms  non-2xx {base_r['non_2xx']}")
        for kind, send in sends.items():
            print(f"ratio ({kind:6} key): {send['rps'] / base_r['rps']:.0%} of baseline throughput (target >= 50%)")
        if {"scoped", "admin"} <= set(sends):
            print(f"scoped / admin: {sends['scoped']['rps'] / sends['admin']['rps']:.1%} (target: within 5 %)")
        print(json.dumps({"send": samples, "baseline": base_r}))
        return 0
    finally:
        if gunicorn is not None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(20)
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
