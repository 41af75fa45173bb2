"""Test helpers: waiting on conditions, free ports, a file server, and the project's processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@contextmanager
def s3_server() -> Iterator[str]:
    """A real S3 endpoint on loopback (moto's server, in this process): its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class WebhookReceiver(ThreadingHTTPServer):
    """A webhook receiver on loopback, serving in a thread of its own from the start.

    Each POST is recorded in ``requests`` as (path with query, headers, body) and
    answered with the next (status, headers, delay seconds) queued by ``answer``, else
    with ``respond(headers)`` (a status; 200 by default). ``answered`` holds each status.
    """

    daemon_threads = True

    def __init__(self, respond=None):
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.respond = respond or (lambda headers: 200)
        self.script: list[tuple[int, dict, float]] = []
        self.requests: list[tuple[str, dict, bytes]] = []
        self.answered: list[int] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"

    def answer(self, status: int, headers: dict | None = None, delay: float = 0.0) -> None:
        """Answer the next POST not yet scripted with ``status`` after ``delay`` seconds."""
        self.script.append((status, headers or {}, delay))

    def close(self) -> None:
        """Stop serving and close the socket: later deliveries are refused at once (a server
        only shut down keeps accepting connections it never answers, and every delivery to it
        would hold the control worker for the whole webhook timeout)."""
        self.shutdown()
        self.server_close()


class _WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        with server.lock:
            scripted = server.script.pop(0) if server.script else None
            status, headers, delay = scripted or (server.respond(dict(self.headers)), {}, 0.0)
            server.requests.append((self.path, dict(self.headers), body))
            server.answered.append(status)
        time.sleep(delay)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the sender gave up waiting


def keyed_client(app, api_key: str):
    """A Flask test client of ``app`` that sends ``api_key`` (X-API-Key) on every request."""
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = api_key
    return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(files: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """A file server on loopback: GET <path> (any query) answers ``files[path]``, a
    (content type, body) pair, or 404. Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            found = files.get(urlsplit(self.path).path)
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class Proc:
    """One of the project's processes, started as it is in production (python -m ...)."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, env=self.env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if not self.running:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""
