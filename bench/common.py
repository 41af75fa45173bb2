"""What the end-to-end benchmarks share: a fresh database, an empty Redis database and a
work folder, on the local services (BENCH_DATABASE_URL, BENCH_REDIS_URL)."""
from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class World:
    database_url: str
    redis_url: str
    work: Path

    @property
    def logs(self) -> Path:
        return self.work / "logs"


@contextmanager
def fresh_world(label: str):
    """A new PostgreSQL database (migrated), a flushed Redis database and a work folder;
    the database is dropped afterwards."""
    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    redis.Redis.from_url(redis_url).flushdb()
    name = f"wa_bench_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    world = World(admin.rsplit("/", 1)[0] + "/" + name, redis_url, Path(f"/tmp/wa-bench-{label}-{secrets.token_hex(3)}"))
    world.logs.mkdir(parents=True)
    try:
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "DATABASE_URL": world.database_url, "PYTHONPATH": str(ROOT)})
        yield world
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


CLK_TCK = os.sysconf("SC_CLK_TCK")


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            continue
    return total / CLK_TCK


def owned_pids(slot: str, worker_pid: int) -> list[int]:
    """The slot worker and every process of its Chromes (their groups; each Chrome runs in a
    session of its own, tagged with its slot's name)."""
    mark = f"--wa-owner={slot}".encode()
    leaders = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "cmdline").read_bytes().split(b"\0"):
                    leaders.add(os.getpgid(int(entry.name)))
            except OSError:
                continue
    pids = [worker_pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) in leaders:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def arguments(doc: str, **options: tuple) -> argparse.Namespace:
    """A benchmark's command line: ``--<name>`` for each ``name=(default, help)`` (its type
    the default's, underscores written as dashes), described by the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, (default, text) in options.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default, help=text)
    return parser.parse_args()
