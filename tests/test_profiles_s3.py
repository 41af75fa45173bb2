"""The profile-store contract on both stores (the local folder and S3), and what only S3 has.

S3 is moto's server on loopback, spoken to by boto3 over HTTP with dummy credentials; each
test gets its own bucket. The tests look at the stored objects directly (the folder, or
boto3 on the bucket) to damage them or to see what is left.
"""
from __future__ import annotations

import io
import json
import logging
import secrets
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import boto3
import pytest

from settings import Settings
from storage.profiles import (LOGIN_PARTS, LocalProfileStore, ProfileStoreError, S3ProfileStore,
                              make_profile_store, pack_login)
from tests.helpers import free_port, s3_server

TOKEN = Path("Default/Local Storage/leveldb/000003.log")
SECRET = "moto-secret-key-never-logged"


@pytest.fixture(scope="module")
def endpoint():
    with s3_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials, and nothing that could send boto3 to AWS or the metadata service."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def s3_client(endpoint: str, service: str = "s3"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def new_bucket() -> str:
    return f"wa-test-{secrets.token_hex(6)}"


# --- the stored objects, seen directly --------------------------------------------------

class FolderObjects:
    def __init__(self, root: Path):
        self.root = root

    def keys(self) -> list[str]:
        """Every file and folder left under the root."""
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")) \
            if self.root.exists() else []

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        (self.root / key).write_bytes(data)

    def remove(self, key: str) -> None:
        (self.root / key).unlink()


class BucketObjects:
    def __init__(self, client, bucket: str):
        self.client, self.bucket = client, bucket

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


@dataclass
class Backend:
    make: Callable[..., object]  # keyword arguments: keep_versions
    objects: FolderObjects | BucketObjects


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Backend:
    if request.param == "local":
        root = tmp_path / "store"
        return Backend(lambda **kw: LocalProfileStore(root, **kw), FolderObjects(root))
    endpoint = request.getfixturevalue("endpoint")
    bucket = new_bucket()
    make = lambda **kw: S3ProfileStore(bucket, endpoint_url=endpoint, create_bucket=True, **kw)  # noqa: E731
    return Backend(make, BucketObjects(s3_client(endpoint), bucket))


def make_profile(root: Path, token: str) -> Path:
    """A Chrome profile: the login parts, and junk around them that is not archived."""
    (root / TOKEN).parent.mkdir(parents=True, exist_ok=True)
    (root / TOKEN).write_text(token)
    (root / "Default" / "IndexedDB" / "https_web.whatsapp.com_0.indexeddb.leveldb").mkdir(parents=True,
                                                                                         exist_ok=True)
    (root / "Default" / "IndexedDB" / "https_web.whatsapp.com_0.indexeddb.leveldb" / "000005.ldb") \
        .write_bytes(token.encode() * 100)
    (root / "Default" / "Cache" / "Cache_Data").mkdir(parents=True, exist_ok=True)
    (root / "Default" / "Cache" / "Cache_Data" / "data_1").write_bytes(secrets.token_bytes(50_000))
    (root / "Default" / "Preferences").write_text("{}")
    return root


def restored_token(store, tmp_path: Path, session_id: str = "s1") -> str | None:
    target = tmp_path / f"restored-{secrets.token_hex(3)}"
    if not store.restore(session_id, target):
        return None
    return (target / TOKEN).read_text()


def save_versions(store, tmp_path: Path, *tokens: str, session_id: str = "s1") -> list[str]:
    return [store.save(session_id, make_profile(tmp_path / f"profile-{token}", token)) for token in tokens]


# --- the contract, on both stores -------------------------------------------------------

def test_a_login_round_trips_into_a_fresh_profile(backend, tmp_path):
    store = backend.make()
    assert store.check()
    assert store.latest("s1") is None
    key = store.save("s1", make_profile(tmp_path / "p1", "token-1"))
    assert key == store.latest("s1") == f"{store.folder('s1')}{key.rsplit('/', 1)[1]}"
    target = tmp_path / "fresh" / "p2"
    assert store.restore("s1", target)
    assert (target / TOKEN).read_text() == "token-1"
    assert (target / "Default" / "IndexedDB" / "https_web.whatsapp.com_0.indexeddb.leveldb" / "000005.ldb").exists()
    assert not (target / "Default" / "Cache").exists()
    assert not (target / "Default" / "Preferences").exists()

    with tarfile.open(fileobj=io.BytesIO(backend.objects.read(key)), mode="r:gz") as tar:
        names = tar.getnames()
    assert names and all(any(n == p or n.startswith(p + "/") for p in LOGIN_PARTS) for n in names)
    pointer = json.loads(backend.objects.read(store.folder("s1") + "current.json"))
    manifest = json.loads(backend.objects.read(key.removesuffix(".tar.gz") + ".json"))
    assert pointer["versions"] == [manifest] == [{k: pointer[k] for k in ("version", "sha256", "size")}]
    assert key.endswith(f"/{pointer['version']}.tar.gz") and len(pointer["version"]) == 20


def test_a_corrupt_newest_archive_falls_back_to_the_previous(backend, tmp_path, caplog):
    store = backend.make()
    first, newest = save_versions(store, tmp_path, "token-1", "token-2")
    backend.objects.write(newest, b"\x1f\x8b" + secrets.token_bytes(200))
    with caplog.at_level(logging.INFO, logger="storage.profiles"):
        assert restored_token(store, tmp_path) == "token-1"
    assert "checksum mismatch" in caplog.text
    assert f"restored version {first.rsplit('/', 1)[1].removesuffix('.tar.gz')}" in caplog.text


def test_a_missing_newest_archive_falls_back_to_the_previous(backend, tmp_path, caplog):
    store = backend.make()
    _first, newest = save_versions(store, tmp_path, "token-1", "token-2")
    backend.objects.remove(newest)
    with caplog.at_level(logging.WARNING, logger="storage.profiles"):
        assert restored_token(store, tmp_path) == "token-1"
    assert "the archive is missing" in caplog.text


@pytest.mark.parametrize("damage", ["missing", "garbage", "wrong shape"])
def test_without_a_good_pointer_the_newest_good_listed_version_is_restored(backend, tmp_path, damage):
    store = backend.make()
    save_versions(store, tmp_path, "token-1", "token-2")
    pointer = store.folder("s1") + "current.json"
    if damage == "missing":
        backend.objects.remove(pointer)
    else:
        backend.objects.write(pointer, b"{not json" if damage == "garbage" else b'{"versions": 5}')
    assert restored_token(store, tmp_path) == "token-2"
    assert store.latest("s1").endswith(".tar.gz")


def test_without_a_pointer_a_corrupt_newest_version_is_caught_by_its_manifest(backend, tmp_path):
    store = backend.make()
    _first, newest = save_versions(store, tmp_path, "token-1", "token-2")
    backend.objects.remove(store.folder("s1") + "current.json")
    # A readable archive, but not the bytes this version was saved with.
    backend.objects.write(newest, pack_login(make_profile(tmp_path / "forged", "forged")))
    assert restored_token(store, tmp_path) == "token-1"
    # The next save carries the checksummed versions on in a new pointer.
    save_versions(store, tmp_path, "token-3")
    pointer = json.loads(backend.objects.read(store.folder("s1") + "current.json"))
    assert len(pointer["versions"]) == 3


def test_an_unfinished_newer_upload_does_not_replace_the_pointers_version(backend, tmp_path):
    store = backend.make()
    _first, current = save_versions(store, tmp_path, "token-1", "token-2")
    orphan = f"{store.folder('s1')}{99999999999999999999}.tar.gz"
    backend.objects.write(orphan, b"\x1f\x8b\x08 half an upload")
    assert store.latest("s1") == current
    assert restored_token(store, tmp_path) == "token-2"
    store.delete("s1")
    assert backend.objects.keys() == []


def test_only_keep_versions_versions_remain(backend, tmp_path):
    store = backend.make(keep_versions=2)
    keys = save_versions(store, tmp_path, "t1", "t2", "t3", "t4")
    folder = store.folder("s1")
    left = [k for k in backend.objects.keys() if k.startswith(folder)]
    newest = [k.removesuffix(".tar.gz") for k in keys[-2:]]
    versions = [f"{v}{ext}" for v in newest for ext in (".tar.gz", ".json")]
    assert sorted(left) == sorted([folder + "current.json", *versions])
    pointer = json.loads(backend.objects.read(folder + "current.json"))
    assert [f"{folder}{v['version']}" for v in pointer["versions"]] == newest[::-1]
    assert restored_token(store, tmp_path) == "t4"


def test_delete_removes_every_object_of_the_session_and_only_those(backend, tmp_path):
    store = backend.make()
    save_versions(store, tmp_path, "a1", "a2", session_id="s1")
    save_versions(store, tmp_path, "b1", session_id="s10")  # "s1" is a prefix of its name
    backend.objects.write(store.folder("s1") + "current.json", b"{}")  # a damaged pointer goes too
    store.delete("s1")
    left = backend.objects.keys()
    assert left and all(k.startswith(store.folder("s10").rstrip("/")) for k in left)
    assert restored_token(store, tmp_path, "s10") == "b1"
    assert store.restore("s1", tmp_path / "nothing") is False
    assert store.latest("s1") is None
    store.delete("s10")
    store.delete("never-saved")
    assert backend.objects.keys() == []


@pytest.mark.parametrize("session_id", ["../../escaped", "a/b", "..", "x\n\x00y", "ü %"])
def test_session_ids_from_users_stay_inside_their_folder(backend, tmp_path, session_id):
    store = backend.make()
    key = store.save(session_id, make_profile(tmp_path / "p", session_id))
    assert restored_token(store, tmp_path, session_id) == session_id
    folder = store.folder(session_id)
    assert key.startswith(folder) and folder.count("/") == store.prefix.count("/") + 1
    keys = backend.objects.keys()
    assert keys and all(k == folder.rstrip("/") or k.startswith(folder) for k in keys)
    assert all(p.name in ("store", "p") or p.name.startswith("restored-") for p in tmp_path.iterdir())
    store.delete(session_id)
    assert backend.objects.keys() == []


# --- S3 only ----------------------------------------------------------------------------

@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_every_object_is_encrypted_at_rest(endpoint, tmp_path, sse):
    kms_key = s3_client(endpoint, "kms").create_key()["KeyMetadata"]["KeyId"] if sse == "aws:kms" else None
    bucket = new_bucket()
    store = S3ProfileStore(bucket, endpoint_url=endpoint, create_bucket=True, sse=sse, kms_key_id=kms_key)
    save_versions(store, tmp_path, "t1", "t2")
    client = s3_client(endpoint)
    heads = [client.head_object(Bucket=bucket, Key=k) for k in BucketObjects(client, bucket).keys()]
    assert len(heads) == 5  # two archives, two manifests, the pointer
    assert {h["ServerSideEncryption"] for h in heads} == {sse}
    if kms_key:
        assert {h["SSEKMSKeyId"] for h in heads} == {kms_key}


def test_an_archive_corrupted_on_the_way_is_not_made_current(endpoint, tmp_path):
    bucket = new_bucket()
    store = S3ProfileStore(bucket, endpoint_url=endpoint, create_bucket=True)
    [good] = save_versions(store, tmp_path, "token-1")

    def corrupt_archives(request, **_):
        if request.url.endswith(".tar.gz"):
            body = request.body.read() if hasattr(request.body, "read") else request.body
            request.body = body[:-16] + bytes(16)  # same length, other bytes

    store.blobs.client.meta.events.register("before-send.s3.PutObject", corrupt_archives)
    with pytest.raises(OSError):  # ProfileStoreError: what the slot's `except OSError` catches
        store.save("s1", make_profile(tmp_path / "p2", "token-2"))
    assert store.latest("s1") == good
    assert BucketObjects(s3_client(endpoint), bucket).keys() == sorted(
        [good, good.removesuffix(".tar.gz") + ".json", store.folder("s1") + "current.json"])
    assert restored_token(store, tmp_path) == "token-1"


def test_an_unreachable_endpoint_is_reported_not_raised(tmp_path, caplog):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3ProfileStore(new_bucket(), endpoint_url=down)
    started = time.monotonic()
    assert store.check() is False
    assert time.monotonic() - started < 5
    with pytest.raises(ProfileStoreError):
        store.save("s1", make_profile(tmp_path / "p", "token"))
    with pytest.raises(ProfileStoreError):
        store.restore("s1", tmp_path / "p2")  # unknown is not "nothing saved"
    assert not (tmp_path / "p2").exists()


def test_a_missing_bucket_is_not_created_unless_asked(endpoint):
    store = S3ProfileStore(new_bucket(), endpoint_url=endpoint)
    assert store.check() is False


def test_credentials_are_not_logged(endpoint, tmp_path, caplog):
    host = endpoint.removeprefix("http://")
    with pytest.raises(ValueError) as refused:  # botocore would log the URL with each request
        S3ProfileStore(new_bucket(), endpoint_url=f"http://user:{SECRET}@{host}")
    assert SECRET not in str(refused.value)
    with caplog.at_level(logging.DEBUG):
        store = S3ProfileStore(new_bucket(), endpoint_url=endpoint, create_bucket=True)
        save_versions(store, tmp_path, "token")
        assert restored_token(store, tmp_path) == "token"
        assert not S3ProfileStore(new_bucket(), endpoint_url=endpoint).check()
    assert "unreachable" in caplog.text and SECRET not in caplog.text


def test_the_settings_pick_the_store(endpoint, tmp_path):
    bucket = new_bucket()
    settings = replace(Settings(), profile_dir=str(tmp_path / "profiles"), s3_bucket=bucket,
                       s3_endpoint_url=endpoint, s3_create_bucket=True, s3_sse="AES256",
                       s3_prefix="custom/prefix", keep_versions=2)
    store = make_profile_store(settings)
    assert isinstance(store, S3ProfileStore)
    assert store.describe() == f"s3://{bucket}/custom/prefix/ at {endpoint}"
    assert store.check() and store.keep_versions == 2
    assert store.save("s1", make_profile(tmp_path / "p", "token")).startswith("custom/prefix/s1/")
    assert not (tmp_path / "profiles").exists()

    local = make_profile_store(replace(settings, s3_bucket=None))
    assert isinstance(local, LocalProfileStore)
    assert local.describe() == str(tmp_path / "profiles") and local.check()
