"""Flower, the operators' view of the workers, started only behind authentication.

    python -m workers.flower --address=127.0.0.1 --port=5555 [other Flower options]

Flower reads its options from the environment (``FLOWER_<OPTION>``). Authentication is
either HTTP basic auth, ``FLOWER_BASIC_AUTH=user:password[,user2:password2]``, or OAuth:
``FLOWER_AUTH`` (the e-mails allowed, a regexp) with ``FLOWER_AUTH_PROVIDER`` (e.g.
``flower.views.auth.GithubLoginHandler``) and ``FLOWER_OAUTH2_KEY``,
``FLOWER_OAUTH2_SECRET``, ``FLOWER_OAUTH2_REDIRECT_URI``. Without either, Flower starts
only on a loopback address (a developer's machine) and says so; on any other address it
refuses to start. Then it runs ``celery -A workers.app flower`` with the same options.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Mapping, Sequence

log = logging.getLogger("workers.flower")

LOOPBACK_NAMES = {"localhost"}


def option(argv: Sequence[str], env: Mapping[str, str], name: str) -> str | None:
    """A Flower option as Flower would read it: ``--name=value`` (tornado's only form,
    ``-`` and ``_`` alike) wins over ``FLOWER_NAME``; None when neither is given."""
    value = env.get(f"FLOWER_{name.upper()}")
    for arg in argv:
        key, sep, given = arg.lstrip("-").partition("=")
        if sep and key.replace("-", "_") == name:
            value = given
    return value


def basic_auth_ok(value: str | None) -> bool:
    """``user:password[,user:password]``, each with a user and a password."""
    if not value:
        return False
    pairs = [pair.partition(":") for pair in value.split(",")]
    return all(user and sep and password for user, sep, password in pairs)


def oauth_ok(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """OAuth needs the e-mails allowed, a login provider, and its client key and secret."""
    return all(option(argv, env, name) for name in ("auth", "auth_provider", "oauth2_key", "oauth2_secret"))


def is_local(address: str | None, unix_socket: str | None) -> bool:
    """Only this machine can connect: a Unix socket or a loopback address. Flower's
    default address (empty) is every interface."""
    if unix_socket:
        return True
    if not address:
        return False
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def refusal(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Why Flower must not start with these options and this environment, or None.

    ``argv``: Flower's options (``--name=value``); ``env``: the environment (``FLOWER_*``).
    """
    basic = option(argv, env, "basic_auth")
    if basic is not None and not basic_auth_ok(basic):
        return "FLOWER_BASIC_AUTH must be user:password[,user:password], each with a password"
    if basic_auth_ok(basic) or oauth_ok(argv, env):
        return None
    if option(argv, env, "auth"):
        return ("FLOWER_AUTH (OAuth) also needs FLOWER_AUTH_PROVIDER, FLOWER_OAUTH2_KEY and "
                "FLOWER_OAUTH2_SECRET")
    if is_local(option(argv, env, "address"), option(argv, env, "unix_socket")):
        return None
    return ("Flower shows every worker and task and can stop workers: set FLOWER_BASIC_AUTH=user:password "
            "(or OAuth: FLOWER_AUTH, FLOWER_AUTH_PROVIDER, FLOWER_OAUTH2_KEY, FLOWER_OAUTH2_SECRET), "
            "or bind it to 127.0.0.1 (--address=127.0.0.1)")


def main(argv: list[str]) -> int:
    """Start Flower with ``argv`` (``python -m workers.flower``) in place of this process, or
    return 2 when ``refusal`` says it would be open to anyone."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    why = refusal(argv, os.environ)
    if why:
        log.error("flower not started: %s", why)
        return 2
    if not (option(argv, os.environ, "basic_auth") or option(argv, os.environ, "auth")):
        log.warning("flower without authentication, on a loopback address: anyone on this machine can open it")
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", "flower", *argv])
    return 0  # not reached: the process is Flower now


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
