"""Media for a message, as files on disk the browser can attach: downloaded from the
message's ``media_urls`` (through the network guard, hop by hop), or written from the bytes
of an inline file (read from the media store by its reference, or, for messages accepted
before inline media were stored, decoded from base64).

The file's name on disk is the name WhatsApp shows for a document, so it is the
sanitised name the sender gave (Content-Disposition, the URL's last segment), never a
random one.  URLs may carry tokens in their query: logs and messages show
scheme://host/path only.
"""
from __future__ import annotations

import base64
import binascii
import logging
import mimetypes
import re
import socket
import ssl
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

from urllib3 import BaseHTTPResponse, Timeout
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.ssl_match_hostname import CertificateError

from workers import netguard
from models.media import MB, kind_of
from workers.netguard import AllowList, BlockedAddress

log = logging.getLogger("media")

_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_TRANSIENT_STATUSES = (408, 429)
_MIMETYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_UNINFORMATIVE_TYPES = ("application/octet-stream", "binary/octet-stream")
_MAX_NAME_BYTES = 240  # 255 on most file systems, with room for " (2)"
_FILENAME_STAR = re.compile(r"(?:^|;)\s*filename\*\s*=\s*([^';]*)'[^']*'([^;\s]+)", re.I)
_FILENAME = re.compile(r'(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', re.I)


@dataclass(frozen=True)
class MediaLimits:
    """How large a download may be (bytes; ``media_bytes`` for images and videos,
    ``document_bytes`` for the rest) and how long it may take (seconds)."""

    media_bytes: int = 16 * MB
    document_bytes: int = 100 * MB
    timeout: float = 30.0  # the whole download, redirects included
    connect_timeout: float = 5.0
    max_redirects: int = 5

    def limit_for(self, kind: str) -> int:
        """The size limit in bytes for a ``kind`` ("media" or "document", see ``kind_of``)."""
        return self.media_bytes if kind == "media" else self.document_bytes


class MediaError(Exception):
    """Media we could not get.  ``permanent``: trying again cannot help (refused address,
    4xx, too large), so the message fails; otherwise the send may be retried."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Media:
    """A file ready to attach: where it is on disk, its name, MIME type and size in bytes."""

    path: Path
    filename: str
    mimetype: str
    size: int

    @property
    def kind(self) -> str:
        """"media" goes through the photos & videos input, "document" through documents."""
        return kind_of(self.mimetype)


def fetch_media(url: str, dest_dir: Path, *, limits: MediaLimits = MediaLimits(),
                allow: AllowList = AllowList()) -> Media:
    """Download ``url`` into ``dest_dir``, following up to ``limits.max_redirects``
    redirects, each checked by the network guard before it is connected to."""
    deadline = time.monotonic() + limits.timeout
    current = url
    for _hop in range(limits.max_redirects + 1):
        response = _open(current, allow, deadline, limits)
        try:
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                current = _redirect_target(current, location)
                continue
            _check_status(response.status, loggable(current))
            media = _save(response, current, dest_dir, limits, deadline)
        finally:
            response.close()
        log.info("media fetched url=%s size=%d mimetype=%s", loggable(url), media.size, media.mimetype)
        return media
    raise MediaError(f"Media {loggable(url)} redirects more than {limits.max_redirects} times",
                     permanent=True)


def media_from_base64(filename: str | None, mimetype: str | None, data_b64: str, dest_dir: Path,
                      limits: MediaLimits = MediaLimits()) -> Media:
    """Inline media as base64 (messages accepted before inline media were stored): strict
    base64 (whitespace aside), then as ``media_from_bytes``. Raises MediaError (permanent)."""
    mimetype = _clean_mimetype(mimetype) or _guess_mimetype(filename or "")
    name = safe_filename(filename or "", mimetype)
    kind = kind_of(mimetype)
    limit = limits.limit_for(kind)
    text = re.sub(r"\s+", "", data_b64 or "")
    size = len(text) // 4 * 3 - text.count("=")
    if size > limit:  # refuse before decoding it all
        raise _too_large(name, kind, limit, size=size)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(f"Media {name} is not valid base64", permanent=True) from None
    return media_from_bytes(filename, mimetype, data, dest_dir, limits)


def media_from_bytes(filename: str | None, mimetype: str | None, data: bytes, dest_dir: Path,
                     limits: MediaLimits = MediaLimits()) -> Media:
    """An inline file written into ``dest_dir`` under its sanitised name, within the limit
    of its kind (bytes). Raises MediaError (permanent) for an empty or too large file."""
    mimetype = _clean_mimetype(mimetype) or _guess_mimetype(filename or "")
    name = safe_filename(filename or "", mimetype)
    kind = kind_of(mimetype)
    limit = limits.limit_for(kind)
    if len(data) > limit:
        raise _too_large(name, kind, limit, size=len(data))
    if not data:
        raise MediaError(f"Media {name} is empty", permanent=True)
    path, out = _create(dest_dir, name)
    with out:
        out.write(data)
    return Media(path, path.name, mimetype, len(data))


def safe_filename(name: str, mimetype: str) -> str:
    """A file name that stays in its directory: no directories, no control characters, no
    leading dots, at most 240 bytes with the extension kept; "file" when nothing usable is
    left.  A name without extension gets the mimetype's: Chrome derives a file's type
    from it, and WhatsApp Web sends by that type."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip().strip(".").strip()
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16 or " " in ext:
        stem, ext = name, ""
    if not ext and mimetype not in _UNINFORMATIVE_TYPES:
        ext = (mimetypes.guess_extension(mimetype) or "").lstrip(".")
    room = _MAX_NAME_BYTES - len(ext.encode()) - 1
    stem = stem.encode()[:room].decode(errors="ignore").rstrip() or "file"
    return f"{stem}.{ext}" if ext else stem


def loggable(url: str) -> str:
    """scheme://host/path: no credentials, query or fragment (they may hold tokens)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a valid URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _redirect_target(current: str, location: str) -> str:
    try:
        return urljoin(current, location.strip())
    except ValueError:
        raise MediaError(f"Media {loggable(current)} redirects to an invalid URL", permanent=True) from None


def _open(url: str, allow: AllowList, deadline: float, limits: MediaLimits) -> BaseHTTPResponse:
    shown = loggable(url)
    remaining = _remaining(deadline, shown)
    timeout = Timeout(connect=min(limits.connect_timeout, remaining), read=remaining)
    headers = {"User-Agent": "wa-backend-media", "Accept": "*/*", "Accept-Encoding": "identity"}
    try:
        return netguard.request("GET", url, allow, timeout=timeout, headers=headers)
    except BlockedAddress as exc:
        log.warning("media refused url=%s reason=%s", shown, exc)
        raise MediaError(f"Media URL refused: {exc}", permanent=True) from None
    except socket.gaierror as exc:
        unknown = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
        raise MediaError(f"Media download failed: cannot resolve the host of {shown}",
                         permanent=unknown) from None
    except (HTTPError, OSError) as exc:
        raise _network_error(exc, shown) from None


def _check_status(status: int, shown: str) -> None:
    if status == 200:
        return
    transient = status >= 500 or status in _TRANSIENT_STATUSES
    not_a_file = ", not a file" if 200 < status < 300 else ""
    raise MediaError(f"Media download failed: HTTP {status}{not_a_file} ({shown})", permanent=not transient)


def _save(response: BaseHTTPResponse, url: str, dest_dir: Path, limits: MediaLimits,
          deadline: float) -> Media:
    shown = loggable(url)
    name = _disposition_name(response.headers.get("Content-Disposition", ""))
    name = name or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    mimetype = _clean_mimetype(response.headers.get("Content-Type")) or _guess_mimetype(name)
    name = safe_filename(name, mimetype)
    kind = kind_of(mimetype)
    limit = limits.limit_for(kind)
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > limit:
        raise _too_large(shown, kind, limit, size=int(length))

    path, out = _create(dest_dir, name)
    try:
        with out:
            size = _copy(response, out, shown, kind, limit, deadline)
        if size == 0:
            raise MediaError(f"Media {shown} is empty, not a file", permanent=True)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Media(path, path.name, mimetype, size)


def _copy(response: BaseHTTPResponse, out: BinaryIO, shown: str, kind: str, limit: int, deadline: float) -> int:
    """Stream the body to ``out``, stopping at the deadline or once over ``limit``
    (Content-Length may be missing or wrong)."""
    size = 0
    while True:
        remaining = _remaining(deadline, shown)
        connection = response.connection
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(remaining)  # so a trickling server cannot outlast the deadline
        try:
            chunk = response.read1(_CHUNK)
        except (HTTPError, OSError) as exc:
            raise _network_error(exc, shown) from None
        if not chunk:
            return size
        size += len(chunk)
        if size > limit:
            raise _too_large(shown, kind, limit)
        out.write(chunk)


def _remaining(deadline: float, shown: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise MediaError(f"Media download failed: timed out ({shown})", permanent=False)
    return remaining


def _network_error(exc: BaseException, shown: str) -> MediaError:
    if isinstance(exc, NewConnectionError):  # before timeouts: urllib3 makes it a subclass
        return MediaError(f"Media download failed: connection error ({shown})", permanent=False)
    if isinstance(exc, (Urllib3Timeout, TimeoutError)):
        return MediaError(f"Media download failed: timed out ({shown})", permanent=False)
    if isinstance(exc, SSLError) and _caused_by(exc, (ssl.SSLCertVerificationError, CertificateError)):
        return MediaError(f"Media download failed: the server's certificate is not valid ({shown})",
                          permanent=True)
    return MediaError(f"Media download failed: connection error ({shown})", permanent=False)


def _caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    for _depth in range(10):
        if exc is None:
            return False
        if isinstance(exc, kinds) or any(isinstance(arg, kinds) for arg in exc.args):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _too_large(shown: str, kind: str, limit: int, *, size: int | None = None) -> MediaError:
    what = "photos and videos" if kind == "media" else "documents"
    over = f"over the {_human(limit).replace('.0 ', ' ')} limit for {what}"
    if size is None:
        return MediaError(f"Media {shown} is {over}", permanent=True)
    return MediaError(f"Media {shown} is {_human(size)}, {over}", permanent=True)


def _human(size: int) -> str:
    for unit, scale in (("MB", MB), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _disposition_name(header: str) -> str:
    """filename*=charset'lang'percent-encoded (RFC 6266) wins over filename=."""
    match = _FILENAME_STAR.search(header)
    if match:
        charset = match.group(1) or "utf-8"
        try:
            return unquote(match.group(2), encoding=charset, errors="replace")
        except LookupError:
            return unquote(match.group(2), errors="replace")
    match = _FILENAME.search(header)
    if not match:
        return ""
    name = re.sub(r"\\(.)", r"\1", match.group(1)) if match.group(1) is not None else match.group(2).strip()
    try:  # headers arrive as latin-1; many servers send raw UTF-8 names
        return name.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return name


def _clean_mimetype(value: str | None) -> str | None:
    """The type without parameters, or None when it says nothing useful."""
    mimetype = (value or "").split(";", 1)[0].strip().lower()
    if not _MIMETYPE.match(mimetype) or mimetype in _UNINFORMATIVE_TYPES:
        return None
    return mimetype


def _guess_mimetype(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _create(dest_dir: Path, name: str) -> tuple[Path, BinaryIO]:
    """Open a new file named ``name`` (or "name (2).ext", ...) in ``dest_dir``; never
    overwrite or follow an existing file."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    for n in range(1, 100):
        candidate = name if n == 1 else f"{stem} ({n}){dot}{ext}"
        path = dest_dir / candidate
        try:
            return path, open(path, "xb")
        except FileExistsError:
            continue
    raise MediaError(f"Too many files named {name} in {dest_dir}", permanent=False)
