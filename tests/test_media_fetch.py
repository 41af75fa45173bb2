"""Media downloads through the network guard, against a real HTTP server on 127.0.0.1.

Every test runs under ``loopback_only``: a connection attempt anywhere but loopback
fails the test, so "refused before connecting" is proven, not assumed.
"""
from __future__ import annotations

import base64
import datetime
import io
import os
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from tests.helpers import free_port
from workers import netguard
from workers.media import Media, MediaError, MediaLimits, fetch_media, media_from_base64, safe_filename
from workers.netguard import AllowList, BlockedAddress, resolve_checked

pytestmark = pytest.mark.usefixtures("loopback_only")

KB = 1024
LIMITS = MediaLimits(media_bytes=4 * KB, document_bytes=8 * KB, timeout=5.0, connect_timeout=1.0)
FAST = MediaLimits(media_bytes=4 * KB, document_bytes=8 * KB, timeout=0.4, connect_timeout=0.4)
LOOPBACK = AllowList.parse("127.0.0.0/8")


def _png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (30, 30), os.urandom(30 * 30 * 3)).save(out, "PNG")
    return out.getvalue()


PNG = _png()
PDF = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"
BIG = b"%PDF-1.4\n" + b"x" * (20 * KB)


# --- the server ---------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Host")))
        parts = urlsplit(self.path)
        route = ROUTES.get(parts.path)
        if route is None:
            return self.reply(404, b"not found", "text/plain")
        route(self, {k: v[0] for k, v in parse_qs(parts.query).items()})

    def reply(self, status, body=b"", content_type=None, headers=(), chunked=False):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 1000):
                piece = body[start:start + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def stall(self, _query):
        self.server.release.wait(5)

    def trickle(self, _query):
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while not self.server.release.wait(0.02):
                self.wfile.write(b"1\r\nx\r\n")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up


def _redirect(target):
    return lambda h, q: h.reply(302, headers=[("Location", target)])


ROUTES = {
    "/image.png": lambda h, q: h.reply(200, PNG, "image/png"),
    "/report.pdf": lambda h, q: h.reply(200, PDF, "application/pdf"),
    "/big.pdf": lambda h, q: h.reply(200, BIG, "application/pdf"),
    "/big-chunked.pdf": lambda h, q: h.reply(200, BIG, "application/pdf", chunked=True),
    "/blob": lambda h, q: h.reply(200, b"b" * int(q["n"]), q["type"]),
    "/empty": lambda h, q: h.reply(200, b"", "image/png"),
    "/broken": lambda h, q: h.reply(500, b"oops", "text/plain"),
    "/stall": Handler.stall,
    "/trickle": Handler.trickle,
    "/redirect-same": _redirect("/image.png"),
    "/redirect-metadata": _redirect("http://169.254.169.254/latest/meta-data"),
    "/redirect-private": _redirect("http://10.0.0.1/"),
    "/redirect-loop": _redirect("/redirect-loop"),
    "/named": lambda h, q: h.reply(200, b"root:x:0:0", "application/octet-stream",
                                   [("Content-Disposition", 'attachment; filename="../../etc/passwd"')]),
    "/named-star": lambda h, q: h.reply(200, PDF, "application/pdf", [(
        "Content-Disposition",
        "attachment; filename=\"fallback.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf")]),
    "/files/notes.txt": lambda h, q: h.reply(200, b"some notes"),
}


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up early (a refused size, a timeout) is what some tests do


class Server:
    def __init__(self, httpd):
        self.httpd = httpd
        self.port = httpd.server_address[1]

    @property
    def requests(self):
        return self.httpd.requests

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _serve(httpd) -> threading.Thread:
    httpd.requests, httpd.release = [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def http_server():
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    _serve(httpd)
    yield Server(httpd)
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(http_server):
    http_server.requests.clear()
    return http_server


class FakeDNS:
    """Answers for chosen names (``dns["name"] = ["10.1.2.3"]``); a list of answers is
    given out in turn, the last one repeating.  Other names resolve as usual."""

    def __init__(self, real):
        self.real, self.answers, self.lookups = real, {}, []

    def __setitem__(self, host, answer):
        self.answers[host] = answer if isinstance(answer[0], list) else [answer]

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(host)
        answers = self.answers[host]
        answer = answers[min(self.lookups.count(host), len(answers)) - 1]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)) if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer]


@pytest.fixture
def resolver(monkeypatch):
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


def _fetch_error(url, tmp_path, **kwargs) -> MediaError:
    with pytest.raises(MediaError) as caught:
        fetch_media(url, tmp_path, **kwargs)
    return caught.value


# --- loopback needs the allow-list ----------------------------------------------------------
def test_loopback_server_is_refused_without_the_allow_list(server, tmp_path, loopback_only):
    error = _fetch_error(server.url("/image.png"), tmp_path)
    assert error.permanent
    assert str(error) == "Media URL refused: 127.0.0.1 is a loopback address"
    assert server.requests == [] and loopback_only.seen == []


def test_loopback_server_is_fetched_when_allowed(server, tmp_path):
    media = fetch_media(server.url("/image.png"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert media == Media(tmp_path / "image.png", "image.png", "image/png", len(PNG))
    assert media.kind == "media"
    assert media.path.read_bytes() == PNG
    assert server.requests == [("/image.png", f"127.0.0.1:{server.port}")]


def test_a_document(server, tmp_path):
    media = fetch_media(server.url("/report.pdf"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert (media.filename, media.mimetype, media.kind, media.size) == ("report.pdf", "application/pdf",
                                                                        "document", len(PDF))


# --- addresses that are not public ------------------------------------------------------------
@pytest.mark.parametrize("url, reason", [
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://172.16.5.4/a.png", "172.16.5.4 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://[fd00::1]/", "fd00::1 is a private address"),
    ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1 is a private address (10.0.0.1 inside IPv6)"),
    ("http://[64:ff9b::a00:1]/", "64:ff9b::a00:1 is a private address (10.0.0.1 inside IPv6)"),
    ("http://[2002:a9fe:a9fe::1]/", "is a link-local address (169.254.169.254 inside IPv6)"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1, which is a loopback address"),
    ("http://0x7f.1/", "0x7f.1 resolves to 127.0.0.1, which is a loopback address"),
    ("https://user:secret@example.com/", "URLs with a user name or password are not allowed"),
    ("ftp://example.com/file.pdf", "only http and https URLs are allowed, not ftp"),
    ("file:///etc/passwd", "only http and https URLs are allowed, not file"),
    ("http://[::1/", "not a valid URL"),
])
def test_non_public_addresses_are_refused_before_connecting(url, reason, tmp_path, loopback_only):
    error = _fetch_error(url, tmp_path)
    assert error.permanent
    assert str(error).startswith("Media URL refused: ") and reason in str(error)
    assert loopback_only.seen == []


def test_a_name_resolving_to_a_private_address_is_refused(resolver, tmp_path, loopback_only):
    resolver["internal.example.test"] = ["10.1.2.3"]
    error = _fetch_error("https://internal.example.test/a.png", tmp_path)
    assert error.permanent
    assert str(error) == ("Media URL refused: internal.example.test resolves to 10.1.2.3, "
                          "which is a private address")
    assert loopback_only.seen == []


def test_one_private_address_among_public_ones_is_enough_to_refuse(resolver, tmp_path, loopback_only):
    resolver["mixed.example.test"] = ["1.1.1.1", "10.1.2.3"]
    error = _fetch_error("https://mixed.example.test/a.png", tmp_path)
    assert error.permanent and "10.1.2.3, which is a private address" in str(error)
    assert loopback_only.seen == []


def test_public_names_pass_the_guard(resolver):
    resolver["public.example.test"] = ["1.1.1.1", "2606:4700::1111"]
    assert resolve_checked("https://public.example.test/x.png?sig=1", AllowList()) == (
        "public.example.test", 443, "https", ["1.1.1.1", "2606:4700::1111"])


def test_the_allow_list_takes_networks_and_exact_host_names(resolver):
    resolver["media.internal"] = ["10.1.2.3"]
    resolver["other.internal"] = ["10.1.2.3"]
    allow = AllowList.parse("192.168.0.0/16, ::1/128 media.internal")
    assert resolve_checked("http://192.168.1.1:8080/", allow).addresses == ["192.168.1.1"]
    assert resolve_checked("http://[::1]/", allow).addresses == ["::1"]
    assert resolve_checked("http://media.internal/", allow).addresses == ["10.1.2.3"]
    with pytest.raises(BlockedAddress, match="other.internal resolves to 10.1.2.3"):
        resolve_checked("http://other.internal/", allow)
    with pytest.raises(ValueError, match="allow-list"):
        AllowList.parse("10.0.0.0/33")


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(server, resolver, tmp_path):
    # A rebinding DNS: the first answer passes the guard, later ones point inside.
    resolver["media.example.test"] = [["127.0.0.1"], ["10.9.9.9"]]
    allow = AllowList.parse("127.0.0.0/8")
    media = fetch_media(server.url("/image.png", host="media.example.test"), tmp_path, limits=LIMITS,
                        allow=allow)
    assert media.size == len(PNG)
    assert resolver.lookups == ["media.example.test"]
    assert server.requests == [("/image.png", f"media.example.test:{server.port}")]


# --- redirects ---------------------------------------------------------------------------------
def test_a_redirect_on_the_same_server_is_followed(server, tmp_path):
    media = fetch_media(server.url("/redirect-same"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert media.filename == "image.png" and media.path.read_bytes() == PNG
    assert [path for path, _host in server.requests] == ["/redirect-same", "/image.png"]


@pytest.mark.parametrize("path, reason", [
    ("/redirect-metadata", "169.254.169.254 is a link-local address"),
    ("/redirect-private", "10.0.0.1 is a private address"),
])
def test_a_redirect_inside_is_refused_before_connecting(path, reason, server, tmp_path, loopback_only):
    error = _fetch_error(server.url(path), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert error.permanent and str(error) == f"Media URL refused: {reason}"
    assert {address[0] for address in loopback_only.seen} == {"127.0.0.1"}
    assert list(tmp_path.iterdir()) == []


def test_too_many_redirects(server, tmp_path):
    error = _fetch_error(server.url("/redirect-loop"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert error.permanent and "redirects more than 5 times" in str(error)
    assert len(server.requests) == 6


# --- sizes -------------------------------------------------------------------------------------
def test_over_the_limit_is_refused_from_content_length(server, tmp_path):
    error = _fetch_error(server.url("/big.pdf"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert error.permanent
    assert str(error) == (f"Media http://127.0.0.1:{server.port}/big.pdf is 20.0 KB, "
                          "over the 8 KB limit for documents")
    assert list(tmp_path.iterdir()) == []


def test_over_the_limit_is_refused_while_streaming(server, tmp_path):
    error = _fetch_error(server.url("/big-chunked.pdf"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert error.permanent
    assert str(error) == (f"Media http://127.0.0.1:{server.port}/big-chunked.pdf is "
                          "over the 8 KB limit for documents")
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_the_limit_follows_the_mimetype(server, tmp_path):
    as_image = _fetch_error(server.url("/blob?n=6000&type=image/png"), tmp_path, limits=LIMITS,
                            allow=LOOPBACK)
    assert as_image.permanent and "over the 4 KB limit for photos and videos" in str(as_image)
    media = fetch_media(server.url("/blob?n=6000&type=application/pdf"), tmp_path, limits=LIMITS,
                        allow=LOOPBACK)
    assert (media.kind, media.size) == ("document", 6000)


def test_an_empty_body_is_not_a_file(server, tmp_path):
    error = _fetch_error(server.url("/empty"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert error.permanent and "is empty" in str(error)
    assert list(tmp_path.iterdir()) == []


# --- failures: permanent or worth a retry ---------------------------------------------------------
def test_404_is_permanent(server, tmp_path):
    error = _fetch_error(server.url("/missing.png"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert error.permanent and str(error).startswith("Media download failed: HTTP 404")


def test_500_is_transient(server, tmp_path):
    error = _fetch_error(server.url("/broken"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert not error.permanent and str(error).startswith("Media download failed: HTTP 500")


@pytest.mark.parametrize("path", ["/stall", "/trickle"])
def test_a_slow_server_times_out_transiently(path, server, tmp_path):
    started = time.monotonic()
    error = _fetch_error(server.url(path), tmp_path, limits=FAST, allow=LOOPBACK)
    assert not error.permanent and "timed out" in str(error)
    assert time.monotonic() - started < FAST.timeout + 1.0
    assert list(tmp_path.iterdir()) == []


def test_a_closed_port_is_transient(tmp_path):
    error = _fetch_error(f"http://127.0.0.1:{free_port()}/a.png", tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert not error.permanent and "connection error" in str(error)


# --- file names and types --------------------------------------------------------------------------
def test_content_disposition_cannot_escape_the_directory(server, tmp_path):
    media = fetch_media(server.url("/named"), tmp_path / "out", limits=LIMITS, allow=LOOPBACK)
    assert media.path == tmp_path / "out" / "passwd"
    assert media.mimetype == "application/octet-stream"


def test_content_disposition_filename_star_wins(server, tmp_path):
    media = fetch_media(server.url("/named-star"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert media.filename == "résumé 2024.pdf" and media.path.parent == tmp_path


def test_mimetype_falls_back_to_the_extension_and_query_stays_out_of_logs(server, tmp_path, caplog):
    caplog.set_level("INFO", logger="media")
    media = fetch_media(server.url("/files/notes.txt?token=s3cret"), tmp_path, limits=LIMITS,
                        allow=LOOPBACK)
    assert (media.filename, media.mimetype, media.kind) == ("notes.txt", "text/plain", "document")
    assert "/files/notes.txt" in caplog.text and "s3cret" not in caplog.text


def test_a_second_file_of_the_same_name_does_not_overwrite_the_first(server, tmp_path):
    first = fetch_media(server.url("/image.png"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    second = fetch_media(server.url("/redirect-same"), tmp_path, limits=LIMITS, allow=LOOPBACK)
    assert (first.filename, second.filename) == ("image.png", "image (2).png")


@pytest.mark.parametrize("name, mimetype, expected", [
    ("../../etc/passwd", "application/octet-stream", "passwd"),
    ("C:\\Users\\me\\photo.jpg", "image/jpeg", "photo.jpg"),
    ("\x00bad\nname\u202e.png", "image/png", "badname.png"),
    ("..", "image/png", "file.png"),
    ("", "application/pdf", "file.pdf"),
    ("", "application/octet-stream", "file"),
    ("download", "image/jpeg", "download.jpg"),
    ("x" * 300 + ".pdf", "application/pdf", "x" * 236 + ".pdf"),
])
def test_safe_filename(name, mimetype, expected):
    assert safe_filename(name, mimetype) == expected


# --- inline base64 -----------------------------------------------------------------------------------
def test_inline_base64(tmp_path):
    media = media_from_base64("../pic.png", "image/png", base64.b64encode(PNG).decode(), tmp_path, LIMITS)
    assert (media.path, media.kind, media.size) == (tmp_path / "pic.png", "media", len(PNG))
    assert media.path.read_bytes() == PNG


@pytest.mark.parametrize("data", ["not base64!", "YWJj-_", "YWJjZA", ""])
def test_inline_base64_must_be_valid(data, tmp_path):
    with pytest.raises(MediaError) as caught:
        media_from_base64("a.pdf", "application/pdf", data, tmp_path, LIMITS)
    assert caught.value.permanent
    assert list(tmp_path.iterdir()) == []


def test_inline_base64_over_the_limit(tmp_path):
    data = base64.b64encode(b"x" * 5000).decode()
    with pytest.raises(MediaError, match="over the 4 KB limit for photos and videos") as caught:
        media_from_base64("a.png", "image/png", data, tmp_path, LIMITS)
    assert caught.value.permanent
    assert media_from_base64("a.pdf", "application/pdf", data, tmp_path, LIMITS).size == 5000


# --- TLS: SNI and the certificate checked against the URL's host name ---------------------------------
def _certificates(directory, host):
    now = datetime.datetime.now(datetime.timezone.utc)
    span = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=1))

    def build(subject, issuer, key, signing_key, *, ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(span[0]).not_valid_after(span[1])
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, ca=True)
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), ca_name, key, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "ca.pem", directory / "leaf.pem"


@pytest.fixture
def tls_server(tmp_path_factory):
    ca, leaf = _certificates(tmp_path_factory.mktemp("tls"), "media.example.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf)
    server_names = []
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    _serve(httpd)
    yield Server(httpd), str(ca), server_names
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_https_sends_sni_and_checks_the_certificate_against_the_host_name(tls_server, resolver, tmp_path,
                                                                          monkeypatch):
    server, ca, server_names = tls_server
    monkeypatch.setattr(netguard.certifi, "where", lambda: ca)
    resolver["media.example.test"] = ["127.0.0.1"]
    resolver["other.example.test"] = ["127.0.0.1"]
    media = fetch_media(f"https://media.example.test:{server.port}/image.png", tmp_path, limits=LIMITS,
                        allow=LOOPBACK)
    assert media.path.read_bytes() == PNG
    assert server_names == ["media.example.test"]
    assert server.requests == [("/image.png", f"media.example.test:{server.port}")]

    error = _fetch_error(f"https://other.example.test:{server.port}/image.png", tmp_path, limits=LIMITS,
                         allow=LOOPBACK)
    assert error.permanent and "certificate is not valid" in str(error)
    assert len(server.requests) == 1  # nothing was sent to a server that did not prove its name


def test_https_with_an_untrusted_certificate_is_permanent(tls_server, resolver, tmp_path):
    server, _ca, _names = tls_server
    resolver["media.example.test"] = ["127.0.0.1"]
    error = _fetch_error(f"https://media.example.test:{server.port}/image.png", tmp_path, limits=LIMITS,
                         allow=LOOPBACK)
    assert error.permanent and "certificate is not valid" in str(error)
    assert server.requests == []
