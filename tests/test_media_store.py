"""The media store (inline files kept by reference) on both backends: the local folder and
S3 (moto's server on loopback, as in tests/test_profiles_s3.py); the S3 cases carry the
``stack`` marker."""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import replace

import boto3
import pytest

from storage.media import PREFIX, MediaExpired, MediaStore, MediaStoreError, expires_at, make_media_store
from storage.profiles import LocalBlobs
from tests.helpers import free_port, s3_server

DATA = secrets.token_bytes(70_000)


@pytest.fixture(scope="module")
def endpoint():
    with s3_server() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials, and nothing that could send boto3 to AWS."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


class Backend:
    """A media store from the settings, and the objects it left, seen directly."""

    def __init__(self, settings, keys):
        self.settings, self.keys = settings, keys

    def store(self, ttl_hours: float = 48.0) -> MediaStore:
        return make_media_store(replace(self.settings, media_ttl_hours=ttl_hours))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.stack)])
def backend(request, settings, tmp_path):
    if request.param == "local":
        root = tmp_path / "profiles"
        return Backend(replace(settings, profile_dir=str(root), s3_bucket=None),
                       lambda: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()))
    request.getfixturevalue("aws_env")
    return s3_backend(settings, request.getfixturevalue("endpoint"))


def s3_backend(settings, endpoint: str) -> Backend:
    bucket = f"wa-media-{secrets.token_hex(6)}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return Backend(replace(settings, s3_bucket=bucket, s3_endpoint_url=endpoint, s3_create_bucket=True,
                           s3_sse="AES256"),
                   lambda: sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])))


def test_a_file_is_stored_once_and_read_back_by_its_reference(backend):
    store = backend.store()
    before = time.time()
    stored = store.put(DATA, "image/png", "photo.png")
    item = stored.as_item()
    assert set(item) == {"ref", "filename", "mimetype", "size", "sha256"}
    assert item["ref"].startswith(PREFIX) and len(item["ref"]) < 64
    assert (item["size"], item["sha256"]) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    # The object's end of life is in its name: the lifetime after it was stored.
    assert before + 48 * 3600 <= expires_at(item["ref"]) <= time.time() + 48 * 3600 + 2
    assert backend.keys() == [item["ref"]]
    assert store.get(item["ref"], item["sha256"]) == DATA
    assert store.get(item["ref"]) == DATA


def test_an_expired_or_missing_object_is_refused(backend):
    store = backend.store(ttl_hours=1)
    ref = store.put(DATA, "application/pdf", "a.pdf").ref
    end = expires_at(ref)
    assert store.get(ref, now=end - 1) == DATA
    with pytest.raises(MediaExpired, match="expired"):
        store.get(ref, now=end)
    other = store.put(b"other", "text/plain", "b.txt")
    store.delete([other.ref])
    with pytest.raises(MediaExpired, match="gone"):
        store.get(other.ref)
    with pytest.raises(MediaExpired):
        store.get(ref, hashlib.sha256(b"something else").hexdigest())  # not the bytes stored
    for foreign in ("@media/../x", "wa-profiles/u/current.json", "@media/123-abc", "media/1234567890-" + "0" * 32):
        with pytest.raises(MediaExpired, match="not a media reference"):
            store.get(foreign)


def test_expiry_deletes_only_objects_past_their_lifetime(backend):
    store = backend.store(ttl_hours=1)
    now = time.time()
    old = store.put(b"old", "text/plain", "old.txt", now=now - 2 * 3600).ref
    fresh = store.put(b"fresh", "text/plain", "fresh.txt", now=now).ref
    later = store.put(b"later", "text/plain", "later.txt", now=now + 3600).ref
    assert store.expire(now=now) == 1
    assert backend.keys() == sorted([fresh, later])
    assert store.expire(now=expires_at(fresh)) == 1  # an object ends at its end of life
    assert backend.keys() == [later]
    assert store.expire(now=now) == 0


def test_expiry_leaves_a_saved_login_under_the_same_prefix_alone(tmp_path):
    """A session whose folder happens to be called "media" keeps its archives."""
    blobs = LocalBlobs(tmp_path)
    login = b"archive"
    blobs.put("media/00000000000000000001.tar.gz", login, hashlib.sha256(login).hexdigest())
    store = MediaStore(blobs, 3600)
    ref = store.put(b"x", "text/plain", "x.txt", now=0).ref
    assert store.expire() == 1
    assert blobs.keys("media/") == ["media/00000000000000000001.tar.gz"]
    assert blobs.get(ref) is None


@pytest.mark.parametrize("session_id", ["media", "@media", "%40media"])
def test_deleting_any_sessions_saved_logins_leaves_the_media_alone(settings, tmp_path, session_id):
    """The saved logins of a session, whatever its id, are never where the media are: a
    session called "media" deleted (or replaced) takes no one's pending files with it."""
    from dataclasses import replace

    from storage.media import make_media_store
    from storage.profiles import make_profile_store, session_name

    local = replace(settings, s3_bucket=None, profile_dir=str(tmp_path))
    media = make_media_store(local)
    ref = media.put(b"pending", "text/plain", "a.txt").ref
    profiles = make_profile_store(local)
    assert not ref.startswith(session_name(session_id) + "/")
    profiles.delete(session_id)
    assert media.get(ref) == b"pending"


@pytest.mark.stack
def test_s3_objects_are_encrypted_and_beside_the_profile_prefix(settings, aws_env, endpoint):
    backend = s3_backend(settings, endpoint)
    store = backend.store()
    ref = store.put(DATA, "image/png", "photo.png").ref
    s3 = boto3.client("s3", endpoint_url=backend.settings.s3_endpoint_url, region_name="us-east-1")
    head = s3.head_object(Bucket=backend.settings.s3_bucket, Key=ref)
    assert head["ServerSideEncryption"] == "AES256"
    assert not ref.startswith(backend.settings.s3_prefix)


@pytest.mark.stack
def test_a_store_that_does_not_answer_is_a_store_error(settings, aws_env):
    dead = f"http://127.0.0.1:{free_port()}"
    store = make_media_store(replace(settings, s3_bucket="wa-media-nowhere", s3_endpoint_url=dead))
    with pytest.raises(MediaStoreError):
        store.put(DATA, "image/png", "photo.png")
    with pytest.raises(MediaStoreError):
        store.get(f"@media/{int(time.time()) + 60:010d}-{'0' * 32}")
    with pytest.raises(MediaStoreError):
        store.expire()


def test_a_store_that_cannot_be_made_is_a_store_error_of_its_first_use():
    def broken():
        raise OSError("no such bucket")

    store = MediaStore(broken, 3600)
    with pytest.raises(MediaStoreError, match="no such bucket"):
        store.put(DATA, "image/png", "photo.png")


def test_the_lifetime_covers_the_age_a_message_may_reach():
    from settings import Settings

    assert Settings.from_env({}).media_ttl_hours == 48
    # An hour over MESSAGE_MAX_AGE_HOURS (24): dispatched just before it, a message may still
    # wait on its slot a few minutes.
    assert Settings.from_env({"MEDIA_TTL_HOURS": "2"}).media_ttl_hours == 25
    assert Settings.from_env({"MEDIA_TTL_HOURS": "24"}).media_ttl_hours == 25
    assert Settings.from_env({"MEDIA_TTL_HOURS": "3", "MESSAGE_MAX_AGE_HOURS": "1"}).media_ttl_hours == 3
