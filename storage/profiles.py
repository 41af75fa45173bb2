"""Profile stores: where a session's WhatsApp Web login is kept between browsers.

An archive holds only what the login needs (for WhatsApp Web: ``Default/Local Storage``
and ``Default/IndexedDB``), gzip-compressed. Every save is a new version; the layout, the
same for the local folder and for S3::

    <prefix><session>/<version>.tar.gz   the archive (version: time_ns, 20 digits)
    <prefix><session>/<version>.json     its manifest {"version", "sha256", "size"}
    <prefix><session>/current.json       the pointer: the current version and the
                                         newest-first list of the versions kept

The pointer moves only after the archive was stored and its checksum verified, so a failed
or corrupt upload never replaces the last good version. A restore tries the pointer's
versions newest first, then whatever else is listed, and skips any version that is
missing, does not match its checksum or is not a readable archive.

``VersionedProfileStore`` holds that logic once, over a small blob interface (``Blobs``)
with two implementations: a folder (``LocalProfileStore``, the embedded default) and an
S3 bucket (``S3ProfileStore``, any S3-compatible endpoint). Their transport errors are
``ProfileStoreError``, an ``OSError``.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import tarfile
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Protocol
from urllib.parse import quote, urlsplit

log = logging.getLogger(__name__)

LOGIN_PARTS = ("Default/Local Storage", "Default/IndexedDB")
KEEP_VERSIONS = 3
POINTER = "current.json"
_VERSION = "[0-9]{1,20}"
_VERSION_NAME = re.compile(rf"({_VERSION})\.(tar\.gz|json)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_NAME = 200  # an encoded session id, well under file-name and key limits


class ProfileStoreError(OSError):
    """The store could not be read or written (unreachable, denied, a failed upload)."""


class ArchiveError(ValueError):
    """An archive that is not a readable, safe tar.gz."""


# --- archives ---------------------------------------------------------------------------

def pack_login(profile_dir: Path) -> bytes | None:
    """A tar.gz of the login parts of a Chrome profile, or None when there are none."""
    parts = [p for p in LOGIN_PARTS if (profile_dir / p).is_dir()]
    if not parts:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for part in parts:
            root = profile_dir / part
            for path in [root, *sorted(root.rglob("*"))]:
                try:
                    tar.add(path, arcname=path.relative_to(profile_dir).as_posix(), recursive=False)
                except FileNotFoundError:
                    pass  # a running Chrome compacted it away meanwhile
    return buf.getvalue()


def _is_login_member(name: str) -> bool:
    return any(name == part or name.startswith(part + "/") for part in LOGIN_PARTS)


def unpack_login(data: bytes, profile_dir: Path) -> None:
    """Replace the login parts of ``profile_dir`` with those in the archive.

    The archive is read to its end (gzip CRC) and extracted beside the profile first, with
    tarfile's "data" filter (no absolute paths, nothing outside, no devices); only then are
    the login parts swapped in. Members outside the login parts are ignored. Raises
    ArchiveError, leaving the profile as it was, when the archive is unusable.
    """
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            while gz.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"not a complete gzip stream: {exc}") from exc
    profile_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{profile_dir.name}.restore-", dir=profile_dir.parent))
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                members = [m for m in tar.getmembers() if _is_login_member(m.name)]
                if not members:
                    raise ArchiveError("the archive holds no login parts")
                tar.extractall(staging, members=members, filter="data")
        except tarfile.TarError as exc:
            raise ArchiveError(f"unsafe or unreadable archive: {exc}") from exc
        profile_dir.mkdir(exist_ok=True)
        for part in LOGIN_PARTS:
            shutil.rmtree(profile_dir / part, ignore_errors=True)
            if (staging / part).exists():
                (profile_dir / part).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / part, profile_dir / part)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def session_name(session_id: str) -> str:
    """The session's folder name in the store: one safe path component, distinct per id.

    Everything but letters, digits and ``-_.~`` is percent-encoded (so ``/``, ``%``, control
    characters and non-ASCII are), and so are the dots of ``.`` and ``..``.
    """
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("a session id is a non-empty string")
    name = quote(session_id, safe="")
    if name in (".", ".."):
        name = name.replace(".", "%2E")
    if len(name) > _MAX_NAME:
        raise ValueError(f"session id too long for the profile store ({len(name)} > {_MAX_NAME})")
    return name


# --- versions over blobs ----------------------------------------------------------------

class Blobs(Protocol):
    """Where the objects live. Keys are ``/``-separated paths made by VersionedProfileStore."""

    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Store ``data``; returns only once the stored object is known to be exactly it."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    def keys(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix``; ProfileStoreError when they cannot be listed."""

    def delete(self, keys: list[str]) -> None:
        """Remove these objects (missing ones are no error); ProfileStoreError when it fails."""

    def check(self) -> bool:
        """Whether the store can be used now (it answers; a folder: it is writable); never raises."""

    def describe(self) -> str:
        """Where the objects live, for logs and health (no credentials)."""


@dataclass(frozen=True)
class Version:
    """One archive version: ``version`` (digits, the epoch nanoseconds of its save, which
    order the versions), its SHA-256 (hex) and size in bytes, as manifests and the pointer list them."""

    version: str
    sha256: str | None = None
    size: int | None = None

    @classmethod
    def parse(cls, raw) -> Version:
        """A manifest or pointer entry; ValueError when it is not a well-formed one."""
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        version, sha256, size = raw.get("version"), raw.get("sha256"), raw.get("size")
        if not (isinstance(version, str) and re.fullmatch(_VERSION, version)):
            raise ValueError(f"bad version {version!r}")
        if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise ValueError(f"bad sha256 for version {version}")
        if not (isinstance(size, int) and size >= 0):
            raise ValueError(f"bad size for version {version}")
        return cls(version, sha256, size)


def _newest_first(versions) -> list[str]:
    return sorted(set(versions), key=int, reverse=True)


def _json(value) -> tuple[bytes, str]:
    data = json.dumps(value, sort_keys=True).encode()
    return data, hashlib.sha256(data).hexdigest()


class VersionedProfileStore:
    """Versioned, checksummed login archives per session, over any ``Blobs``."""

    def __init__(self, blobs: Blobs, prefix: str = "", keep_versions: int = KEEP_VERSIONS):
        self.blobs = blobs
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.keep_versions = max(1, keep_versions)

    def folder(self, session_id: str) -> str:
        """The key prefix of a session's objects, ending in "/" (``session_name`` encodes the id)."""
        return f"{self.prefix}{session_name(session_id)}/"

    @staticmethod
    def archive_key(folder: str, version: str) -> str:
        """The key of one version's archive: ``<folder><version>.tar.gz``."""
        return f"{folder}{version}.tar.gz"

    # --- the public interface ----------------------------------------------------------
    def save(self, session_id: str, profile_dir: Path) -> str | None:
        """Store a new version; returns its key, or None when the profile has no login."""
        folder = self.folder(session_id)
        data = pack_login(Path(profile_dir))
        if data is None:
            return None
        history = self._history(folder)
        # Time-ordered, and after the current one even if the clock went back.
        number = max(time.time_ns(), int(history[0].version) + 1 if history else 0)
        new = Version(f"{number:020d}", hashlib.sha256(data).hexdigest(), len(data))
        key = self.archive_key(folder, new.version)
        self.blobs.put(key, data, new.sha256)
        self.blobs.put(f"{folder}{new.version}.json", *_json(asdict(new)))
        kept = [new, *history][: self.keep_versions]
        pointer = {**asdict(new), "versions": [asdict(v) for v in kept]}
        self.blobs.put(folder + POINTER, *_json(pointer))
        self._prune(folder, keep={v.version for v in kept}, before=int(new.version))
        log.debug("session=%s saved version %s (%d bytes)", session_id, new.version, new.size)
        return key

    def restore(self, session_id: str, profile_dir: Path) -> bool:
        """Unpack the newest good version into ``profile_dir``; False when there is none."""
        folder = self.folder(session_id)
        for candidate, source in self._candidates(session_id, folder):
            data = self.blobs.get(self.archive_key(folder, candidate.version))
            if data is None:
                log.warning("session=%s skipped version %s (%s): the archive is missing",
                            session_id, candidate.version, source)
                continue
            if candidate.sha256 is not None and hashlib.sha256(data).hexdigest() != candidate.sha256:
                log.warning("session=%s skipped version %s (%s): checksum mismatch, the archive is corrupt",
                            session_id, candidate.version, source)
                continue
            try:
                unpack_login(data, Path(profile_dir))
            except ArchiveError as exc:
                log.warning("session=%s skipped version %s (%s): %s", session_id, candidate.version, source, exc)
                continue
            log.info("session=%s restored version %s (%s%s)", session_id, candidate.version, source,
                     "" if candidate.sha256 else ", no checksum known")
            return True
        return False

    def delete(self, session_id: str) -> None:
        """Remove every object of the session: all versions, manifests and the pointer."""
        self.blobs.delete(self.blobs.keys(self.folder(session_id)))

    def latest(self, session_id: str) -> str | None:
        """The key of the current version (the pointer's, else the newest listed)."""
        folder = self.folder(session_id)
        pointer = self._good_pointer(folder)
        if pointer:
            return self.archive_key(folder, pointer[0].version)
        listed = self._listed(folder)
        return self.archive_key(folder, listed[0]) if listed else None

    def check(self) -> bool:
        """Whether the underlying store can be used now (health); never raises."""
        return self.blobs.check()

    def describe(self) -> str:
        """Where the archives live, for logs and health (a folder, or s3://bucket/prefix)."""
        return self.blobs.describe()

    # --- versions ----------------------------------------------------------------------
    def _pointer(self, folder: str) -> list[Version] | None:
        """The pointer's versions, newest first; None when it is missing; ValueError when unreadable."""
        raw = self.blobs.get(folder + POINTER)
        if raw is None:
            return None
        pointer = json.loads(raw)
        if not isinstance(pointer, dict):
            raise ValueError("not an object")
        # The first local store's pointer named only its version.
        entries = pointer.get("versions") or [pointer]
        if not isinstance(entries, list):
            raise ValueError("versions is not a list")
        versions = [Version.parse(v) for v in entries]
        return sorted(versions, key=lambda v: int(v.version), reverse=True)

    def _good_pointer(self, folder: str) -> list[Version] | None:
        try:
            return self._pointer(folder)
        except ValueError:
            return None

    def _listed(self, folder: str) -> list[str]:
        """Versions with an archive in the store, newest first."""
        names = (key[len(folder):] for key in self.blobs.keys(folder))
        return _newest_first(m[1] for m in map(_VERSION_NAME.fullmatch, names) if m and m[2] == "tar.gz")

    def _manifest(self, folder: str, version: str) -> Version:
        """The version with its checksum from its manifest, or without one."""
        raw = self.blobs.get(f"{folder}{version}.json")
        try:
            found = Version.parse(json.loads(raw)) if raw is not None else None
        except ValueError:
            found = None
        return found if found is not None and found.version == version else Version(version)

    def _history(self, folder: str) -> list[Version]:
        """The checksummed versions a new pointer carries on, newest first."""
        pointer = self._good_pointer(folder)
        if pointer is not None:
            return pointer
        manifests = (self._manifest(folder, v) for v in self._listed(folder)[: self.keep_versions])
        return [v for v in manifests if v.sha256 is not None]

    def _candidates(self, session_id: str, folder: str) -> Iterator[tuple[Version, str]]:
        try:
            pointer = self._pointer(folder)
        except ValueError as exc:
            log.warning("session=%s the pointer is unreadable (%s): trying the listed versions", session_id, exc)
            pointer = None
        tried = set()
        for i, version in enumerate(pointer or []):
            tried.add(version.version)
            yield version, "current" if i == 0 else "an older version in the pointer"
        source = "listed, the pointer is missing or unreadable" if pointer is None else "listed"
        for version in self._listed(folder):
            if version not in tried:
                yield self._manifest(folder, version), source

    def _prune(self, folder: str, keep: set[str], before: int) -> None:
        """Delete older versions' objects; a failure only leaves extra objects behind."""
        try:
            stale = []
            for key in self.blobs.keys(folder):
                match = _VERSION_NAME.fullmatch(key[len(folder):])
                if match and match[1] not in keep and int(match[1]) < before:
                    stale.append(key)
            self.blobs.delete(stale)
        except OSError as exc:
            log.warning("old versions in %s not pruned: %s", folder, exc)


# --- a local folder ---------------------------------------------------------------------

class LocalBlobs:
    """Objects as files under ``root``, one per key; written whole or not at all."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]) \
                or parts[-1] in (".", ".."):
            raise ValueError(f"unsafe key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Write the file beside its place, fsync, compare with ``sha256`` (hex), then rename
        it in; ProfileStoreError when the written bytes differ, ValueError for an unsafe key."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if hashlib.sha256(tmp.read_bytes()).hexdigest() != sha256:
                raise ProfileStoreError(f"{key}: written bytes do not match their checksum")
            os.replace(tmp, path)  # the object appears whole or not at all
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when it does not exist; ValueError for an unsafe key."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        """The keys (``/``-separated paths under ``root``) that start with ``prefix``, sorted."""
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        found = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(prefix))

    def delete(self, keys: list[str]) -> None:
        """Remove these files and the folders they leave empty (never ``root``); ValueError
        for an unsafe key."""
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            for parent in path.parents:  # drop folders left empty, never the root
                if parent == self.root or self.root not in parent.parents:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break

    def check(self) -> bool:
        """Whether ``root`` exists (made if needed) and is writable; never raises."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return os.access(self.root, os.W_OK | os.X_OK)
        except OSError as exc:
            log.warning("profile store %s unusable: %s", self.root, exc)
            return False

    def describe(self) -> str:
        """The folder's path."""
        return str(self.root)


class LocalProfileStore(VersionedProfileStore):
    """The embedded default: the versions in a folder, one subfolder per session."""

    def __init__(self, root: str | Path, keep_versions: int = KEEP_VERSIONS):
        super().__init__(LocalBlobs(root), keep_versions=keep_versions)
        self.root = Path(root)


# --- S3 ---------------------------------------------------------------------------------

SSE_MODES = (None, "AES256", "aws:kms")


class S3Blobs:
    """Objects in an S3 bucket; boto3 finds the credentials (environment, profile, role)."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
                 sse: str | None = None, kms_key_id: str | None = None, create_bucket: bool = False,
                 prefix: str = ""):
        import boto3
        from botocore.config import Config

        if sse not in SSE_MODES:
            raise ValueError(f"S3_SSE must be AES256 or aws:kms, not {sse!r}")
        if kms_key_id and sse != "aws:kms":
            raise ValueError("S3_KMS_KEY_ID needs S3_SSE=aws:kms")
        if endpoint_url and (urlsplit(endpoint_url).username or urlsplit(endpoint_url).password):
            # botocore would log it with every request; S3 takes keys from AWS_ACCESS_KEY_ID etc.
            raise ValueError("S3_ENDPOINT_URL must not hold credentials (user:password@)")
        self.bucket, self.endpoint_url, self.prefix = bucket, endpoint_url, prefix
        self.sse_args = {"ServerSideEncryption": sse} if sse else {}
        if kms_key_id:
            self.sse_args["SSEKMSKeyId"] = kms_key_id
        host = (urlsplit(endpoint_url).hostname or "") if endpoint_url else ""
        # MinIO and most S3-compatible stores want path-style requests (no bucket.host DNS).
        style = "path" if endpoint_url and not host.endswith("amazonaws.com") else "auto"
        config = Config(region_name=region, s3={"addressing_style": style}, connect_timeout=5,
                        read_timeout=60, retries={"mode": "standard", "total_max_attempts": 3})
        session = boto3.session.Session()
        self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        # Health checks answer quickly: one attempt, short timeouts.
        self._probe = session.client("s3", endpoint_url=endpoint_url, config=config.merge(Config(
            connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1})))
        if create_bucket:
            self._create_bucket(region)

    @contextmanager
    def _errors(self, action: str, key: str = ""):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise ProfileStoreError(f"S3 {action} s3://{self.bucket}/{key} failed: {exc}") from exc

    def _create_bucket(self, region: str) -> None:
        from botocore.exceptions import ClientError

        with self._errors("create bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
            where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            try:
                self.client.create_bucket(Bucket=self.bucket, **where)
                log.info("created bucket %s", self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Upload with ``ChecksumSHA256`` (``sha256`` in hex); a store that does not echo it
        is read back and compared. ProfileStoreError on failure or mismatch (the object is removed)."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        with self._errors("put", key):
            # S3 (and MinIO) refuse a body that does not match ChecksumSHA256 and echo it back.
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=checksum,
                                              Metadata={"sha256": sha256}, **self.sse_args)
        if response.get("ChecksumSHA256") == checksum:
            return
        # A store that did not confirm the checksum: read the object back.
        stored = self.get(key)
        if stored is None or hashlib.sha256(stored).hexdigest() != sha256:
            try:
                self.delete([key])
            except ProfileStoreError:
                pass  # a later save prunes it; it is never the pointer's
            raise ProfileStoreError(f"S3 put s3://{self.bucket}/{key}: the stored object does not match")

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key; ProfileStoreError otherwise."""
        with self._errors("get", key):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix`` (all pages of the listing); ProfileStoreError on failure."""
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def delete(self, keys: list[str]) -> None:
        """Delete these keys, 1000 per request; ProfileStoreError when S3 refuses any."""
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            with self._errors("delete", batch[0]):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise ProfileStoreError(f"S3 delete s3://{self.bucket}/{first.get('Key')} failed: "
                                        f"{first.get('Code')} {first.get('Message')}")

    def check(self) -> bool:
        """Whether the bucket answers a one-key listing under the prefix (one try, short
        timeouts); never raises."""
        try:
            self._probe.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
            return True
        except Exception as exc:
            log.warning("profile store %s unreachable: %s", self.describe(), exc)
            return False

    def describe(self) -> str:
        """``s3://bucket/prefix``, and the endpoint when one is set."""
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where


class S3ProfileStore(VersionedProfileStore):
    """The versions in an S3 bucket under a key prefix, one "folder" per session."""

    def __init__(self, bucket: str, *, prefix: str = "wa-profiles/", keep_versions: int = KEEP_VERSIONS,
                 **s3):
        prefix = prefix.strip("/")
        super().__init__(S3Blobs(bucket, prefix=f"{prefix}/" if prefix else "", **s3),
                         prefix=prefix, keep_versions=keep_versions)


def make_profile_store(settings) -> VersionedProfileStore:
    """S3 when a bucket is named, otherwise the local folder."""
    if settings.s3_bucket:
        return S3ProfileStore(
            settings.s3_bucket, prefix=settings.s3_prefix, keep_versions=settings.keep_versions,
            endpoint_url=settings.s3_endpoint_url, region=settings.s3_region, sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id, create_bucket=settings.s3_create_bucket)
    return LocalProfileStore(settings.profile_dir, keep_versions=settings.keep_versions)
