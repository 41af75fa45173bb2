"""API keys: made by a CLI command, stored as SHA-256 digests, checked on every request.

    python -m api.keys create NAME   # prints the key once
    python -m api.keys revoke PREFIX
    python -m api.keys list
"""
from __future__ import annotations

import hashlib
import secrets
import sys
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from models import ApiKey, utcnow

KEY_PREFIX = "wak_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(db: sessionmaker, name: str) -> tuple[ApiKey, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[: len(KEY_PREFIX) + 6], key_hash=digest(key))
    with db.begin() as s:
        s.add(row)
    return row, key


def revoke_key(db: sessionmaker, prefix: str) -> int:
    with db.begin() as s:
        rows = s.execute(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))).scalars().all()
        for row in rows:
            row.revoked_at = utcnow()
        return len(rows)


class KeyChecker:
    """Checks a presented key; valid digests are remembered for a short while so that
    the hot path does not hit the database on every request."""

    def __init__(self, db: sessionmaker, cache_seconds: float = 30.0):
        self.db = db
        self.cache_seconds = cache_seconds
        self._valid: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_valid(self, key: str | None) -> bool:
        if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
            return False
        h = digest(key)
        now = time.monotonic()
        with self._lock:
            if self._valid.get(h, 0) > now:
                return True
        with self.db() as s:
            found = s.execute(
                select(ApiKey.id).where(ApiKey.key_hash == h, ApiKey.revoked_at.is_(None))
            ).first()
        if found:
            with self._lock:
                self._valid[h] = now + self.cache_seconds
        return bool(found)


def main(argv: list[str]) -> int:
    from models import make_engine, make_sessionmaker
    from settings import Settings

    db = make_sessionmaker(make_engine(Settings.from_env().database_url))
    if len(argv) >= 2 and argv[0] == "create":
        row, key = create_key(db, " ".join(argv[1:]))
        print(key)
        print(f"created API key {row.prefix}… ({row.name}); store it now, it is not shown again",
              file=sys.stderr)
        return 0
    if len(argv) == 2 and argv[0] == "revoke":
        print(f"revoked {revoke_key(db, argv[1])} key(s)")
        return 0
    if argv[:1] == ["list"]:
        with db() as s:
            for row in s.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars():
                state = "revoked" if row.revoked_at else "active"
                print(f"{row.prefix}…\t{state}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.name}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
