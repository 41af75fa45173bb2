"""Run the simulator: python -m simulator [--host 127.0.0.1] [--port 3100] [--profile 2026|legacy] [--quiet]."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from werkzeug.serving import make_server

from .app import create_app
from .config import SimConfig


class _DropPolls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "/sim/api/poll" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="WhatsApp Web simulator")
    parser.add_argument("--host", default=os.environ.get("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SIM_PORT", "3100")))
    parser.add_argument("--profile", default=None, choices=["2026", "legacy"],
                        help="page profile (default: SIM_PROFILE, else 2026)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {"host": args.host, "port": args.port}
    if args.profile:
        overrides["profile"] = args.profile
    try:
        config = SimConfig.from_env().updated(overrides)
    except ValueError as exc:
        parser.error(str(exc))
    app = create_app(config)
    wlog = logging.getLogger("werkzeug")
    if args.quiet:
        wlog.setLevel(logging.WARNING)
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        wlog.addFilter(_DropPolls())
    server = make_server(config.host, config.port, app, threaded=True)
    print(f"WhatsApp Web simulator ({config.profile} page) on http://{config.host}:{server.server_port}/",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
