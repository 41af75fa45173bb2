"""The media store: inline files of a send, kept once from acceptance until the slot sends them.

A send's inline media (base64 in the request) are stored when the send is accepted, and
the message row and its task carry a small reference instead of the bytes::

    {"ref": "@media/<expires>-<32 hex>", "filename": "a.png", "mimetype": "image/png",
     "size": 1234, "sha256": "<hex>"}

The objects live where the saved logins do, under ``@media/``: in the profile store's S3
bucket (the same endpoint, region, server-side encryption; beside ``S3_PREFIX``, not in
it) or in its local folder (``PROFILE_DIR/@media/``). No session's folder can have that
name (``storage.profiles.session_name`` percent-encodes "@"), so deleting a session's
saved logins never touches them, whatever its id and whatever ``S3_PREFIX`` is. ``<expires>`` is the object's end
of life in epoch seconds (10 digits), so expiry needs no metadata: ``get`` refuses an
object past it, and ``expire`` (the control worker's ``wa.control.expire_media``, hourly)
deletes the objects past it. Only names of that exact shape are ever read or deleted.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage.profiles import Blobs, LocalBlobs, S3Blobs

PREFIX = "@media/"  # "@" is never in a session folder's name
_NAME = re.compile(r"@media/([0-9]{10})-[0-9a-f]{32}")


class MediaStoreError(OSError):
    """The store could not be read or written (unreachable, denied, a failed upload)."""


class MediaExpired(LookupError):
    """The object is gone: past its lifetime, deleted, or never stored here."""


@dataclass(frozen=True)
class StoredMedia:
    """What a message carries for one inline file (``as_item()``: its JSON form)."""

    ref: str  # the object's key, "@media/<expires>-<token>"
    filename: str
    mimetype: str
    size: int  # bytes
    sha256: str  # hex digest of the bytes

    def as_item(self) -> dict:
        """The attachment as the messages.media column and the slot task hold it."""
        return {"ref": self.ref, "filename": self.filename, "mimetype": self.mimetype, "size": self.size,
                "sha256": self.sha256}


def expires_at(ref: str) -> int | None:
    """The end of life (epoch seconds) a reference names, or None when it is not one of ours."""
    match = _NAME.fullmatch(ref) if isinstance(ref, str) else None
    return int(match[1]) if match else None


class MediaStore:
    """Inline media over a ``Blobs`` (the profile store's folder or bucket), kept
    ``ttl_seconds`` after they were stored.

    ``blobs`` may be a function that makes the ``Blobs``: it is then called on first use
    (an S3 client that creates its bucket talks to S3), and what it raises is a
    MediaStoreError of that use.
    """

    def __init__(self, blobs: Blobs | Callable[[], Blobs], ttl_seconds: float):
        if ttl_seconds <= 0:
            raise ValueError("the media lifetime must be positive")
        self._made: Blobs | None = None if callable(blobs) else blobs
        self._make = blobs if callable(blobs) else None
        self._lock = threading.Lock()
        self.ttl_seconds = ttl_seconds

    @property
    def blobs(self) -> Blobs:
        """Where the objects are (made on first use). Raises OSError when it cannot be made."""
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made

    def put(self, data: bytes, mimetype: str, filename: str, *, now: float | None = None) -> StoredMedia:
        """Store ``data`` (bytes, not base64) for ``ttl_seconds`` from ``now`` (epoch seconds,
        default the clock); returns its reference once the stored object is known to be
        exactly ``data``. Raises MediaStoreError when the store does not take it."""
        expires = int((time.time() if now is None else now) + self.ttl_seconds) + 1
        ref = f"{PREFIX}{expires:010d}-{secrets.token_hex(16)}"
        digest = hashlib.sha256(data).hexdigest()
        try:
            self.blobs.put(ref, data, digest)
        except OSError as exc:
            raise MediaStoreError(f"media not stored: {exc}") from exc
        return StoredMedia(ref, filename, mimetype, len(data), digest)

    def get(self, ref: str, sha256: str | None = None, *, now: float | None = None) -> bytes:
        """The bytes of ``ref`` (checked against ``sha256``, hex, when given).

        Raises MediaExpired when the object is past its lifetime (at ``now``, epoch
        seconds, default the clock), missing, not a reference of this store or not the
        bytes that were stored; MediaStoreError when the store does not answer.
        """
        expires = expires_at(ref)
        if expires is None:
            raise MediaExpired(f"not a media reference: {ref!r}")
        if expires <= (time.time() if now is None else now):
            raise MediaExpired(f"{ref} expired")
        try:
            data = self.blobs.get(ref)
        except OSError as exc:
            raise MediaStoreError(f"media not read: {exc}") from exc
        if data is None:
            raise MediaExpired(f"{ref} is gone")
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise MediaExpired(f"{ref} does not hold the bytes that were stored")
        return data

    def delete(self, refs: list[str]) -> None:
        """Delete these objects now (references that are not this store's are skipped);
        raises MediaStoreError when the store does not answer."""
        ours = [ref for ref in refs if expires_at(ref) is not None]
        try:
            self.blobs.delete(ours)
        except OSError as exc:
            raise MediaStoreError(f"media not deleted: {exc}") from exc

    def expire(self, *, now: float | None = None) -> int:
        """Delete every object past its lifetime at ``now`` (epoch seconds, default the
        clock); returns how many. Raises MediaStoreError when the store does not answer."""
        now = time.time() if now is None else now
        try:
            stale = [key for key in self.blobs.keys(PREFIX) if (end := expires_at(key)) is not None and end <= now]
        except OSError as exc:
            raise MediaStoreError(f"media not listed: {exc}") from exc
        self.delete(stale)
        return len(stale)



def make_media_store(settings) -> MediaStore:
    """The media store beside the profile store: its S3 bucket when ``S3_BUCKET`` is set
    (same endpoint, region and encryption), else its local folder; objects are kept
    ``settings.media_ttl_hours``."""
    if settings.s3_bucket:
        def blobs() -> Blobs:
            return S3Blobs(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                           sse=settings.s3_sse, kms_key_id=settings.s3_kms_key_id,
                           create_bucket=settings.s3_create_bucket, prefix=PREFIX)

        return MediaStore(blobs, settings.media_ttl_hours * 3600)
    return MediaStore(LocalBlobs(settings.profile_dir), settings.media_ttl_hours * 3600)
