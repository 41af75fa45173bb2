"""``loopback_only``: a test may talk to 127.0.0.1 / ::1 (and Unix sockets) and nothing
else.  Any other connection attempt raises AssertionError *and* is recorded, so the test
fails at teardown even when the code under test swallows the exception.

Import the fixture into a conftest (``from tests.netguard import loopback_only``) or a
test module, and use it by name.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

import pytest


@dataclass
class ConnectionLog:
    seen: list = field(default_factory=list)  # every IP connection attempted, allowed or not
    refused: list = field(default_factory=list)  # those to a non-loopback address


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: we cannot know where it would go


@pytest.fixture
def loopback_only(monkeypatch):
    log = ConnectionLog()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def check(address) -> None:
        log.seen.append(address)
        if not _is_loopback(address[0]):
            log.refused.append(address)
            raise AssertionError(f"connection attempted to a non-loopback address: {address!r}")

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return real_connect_ex(sock, address)

    def create_connection(address, *args, **kwargs):
        if not _is_loopback(address[0]):
            check(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield log
    assert not log.refused, f"connections attempted to non-loopback addresses: {log.refused!r}"
