"""Managing API keys from the command line (the keys themselves: ``services.keys``).

    python -m api.keys create NAME --admin               # prints the key once
    python -m api.keys create NAME --scope PREFIX...     # a tenant: user ids starting so
    python -m api.keys create NAME --user-id ID...       # a tenant: these user ids
    python -m api.keys revoke PREFIX_OR_ID
    python -m api.keys list
"""
from __future__ import annotations

import argparse
import sys

import redis
from sqlalchemy import select

from models import ApiKey
from services.keys import KeyChecker, TooManyFailures, create_key, revoke_key  # noqa: F401 - re-exported


def main(argv: list[str]) -> int:
    """The key CLI (``python -m api.keys create|list|revoke``); returns the exit status."""
    from models import make_engine, make_sessionmaker
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m api.keys", description="Manage API keys.")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="make a key and print it once")
    create.add_argument("name", nargs="+")
    kind = create.add_mutually_exclusive_group(required=True)
    kind.add_argument("--admin", action="store_true", help="every session, and key management")
    kind.add_argument("--scope", nargs="+", metavar="PREFIX", default=[], help="user-id prefixes it may use")
    kind.add_argument("--user-id", nargs="+", metavar="ID", default=[], dest="user_ids", help="user ids it may use")
    revoke = sub.add_parser("revoke", help="revoke by prefix (wak_xxxxxx) or id")
    revoke.add_argument("prefix")
    sub.add_parser("list", help="every key, active and revoked")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    db = make_sessionmaker(make_engine(settings.database_url))
    if args.command == "create":
        row, key = create_key(db, " ".join(args.name), admin=args.admin, prefixes=args.scope,
                              user_ids=args.user_ids)
        print(key)
        print(f"created API key {row.prefix}… ({row.name}); store it now, it is not shown again",
              file=sys.stderr)
        return 0
    if args.command == "revoke":
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        print(f"revoked {revoke_key(db, args.prefix, client)} key(s)")
        return 0
    with db() as s:
        for row in s.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars():
            state = "revoked" if row.revoked_at else "active"
            scope = "admin" if row.admin else "scope " + ",".join(
                [f"{p}*" for p in (row.scope or {}).get("prefixes", [])] + (row.scope or {}).get("user_ids", []))
            print(f"{row.prefix}…\t{state}\t{row.created_at:%Y-%m-%d %H:%M}\t{scope}\t{row.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
