"""Profile stores: where a session's WhatsApp Web login is kept between browsers.

An archive holds only what the login needs (for WhatsApp Web: ``Default/Local Storage``
and ``Default/IndexedDB``), gzip-compressed, with a SHA-256 checksum. Each save is a new
version; a pointer names the last good one and is moved only after the archive is
completely written, so a partial save never replaces a good one.

``LocalProfileStore`` is the embedded default (a folder); an S3 store with the same
interface comes with the session-persistence work.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Protocol

LOGIN_PARTS = ("Default/Local Storage", "Default/IndexedDB")
KEEP_VERSIONS = 3


class ProfileStore(Protocol):
    def save(self, session_id: str, profile_dir: Path) -> str | None: ...
    def restore(self, session_id: str, profile_dir: Path) -> bool: ...
    def delete(self, session_id: str) -> None: ...


def pack_login(profile_dir: Path) -> bytes | None:
    """A tar.gz of the login parts of a Chrome profile, or None when there are none."""
    parts = [p for p in LOGIN_PARTS if (profile_dir / p).exists()]
    if not parts:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for part in parts:
            tar.add(profile_dir / part, arcname=part)
    return buf.getvalue()


def unpack_login(data: bytes, profile_dir: Path) -> None:
    profile_dir.mkdir(parents=True, exist_ok=True)
    for part in LOGIN_PARTS:
        shutil.rmtree(profile_dir / part, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(profile_dir, filter="data")


class LocalProfileStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, session_id: str) -> Path:
        return self.root / session_id

    def save(self, session_id: str, profile_dir: Path) -> str | None:
        """Store a new version; returns its key, or None when the profile has no login."""
        data = pack_login(profile_dir)
        if data is None:
            return None
        folder = self._dir(session_id)
        folder.mkdir(parents=True, exist_ok=True)
        version = f"{time.time_ns()}"
        archive = folder / f"{version}.tar.gz"
        tmp = archive.with_suffix(".partial")
        tmp.write_bytes(data)
        os.replace(tmp, archive)
        pointer = {"version": version, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        tmp_pointer = folder / "current.json.partial"
        tmp_pointer.write_text(json.dumps(pointer))
        os.replace(tmp_pointer, folder / "current.json")
        for old in sorted(folder.glob("*.tar.gz"))[:-KEEP_VERSIONS]:
            old.unlink(missing_ok=True)
        return str(archive)

    def restore(self, session_id: str, profile_dir: Path) -> bool:
        """Unpack the last good version into ``profile_dir``; False when there is none."""
        try:
            pointer = json.loads((self._dir(session_id) / "current.json").read_text())
            data = (self._dir(session_id) / f"{pointer['version']}.tar.gz").read_bytes()
        except (FileNotFoundError, ValueError, KeyError):
            return False
        if hashlib.sha256(data).hexdigest() != pointer["sha256"]:
            return False
        unpack_login(data, profile_dir)
        return True

    def delete(self, session_id: str) -> None:
        shutil.rmtree(self._dir(session_id), ignore_errors=True)


def make_profile_store(settings) -> ProfileStore:
    if settings.s3_bucket:
        import logging

        logging.getLogger(__name__).warning(
            "S3_BUCKET is set but the S3 profile store is not built yet; keeping profiles in %s",
            settings.profile_dir)
    return LocalProfileStore(settings.profile_dir)
