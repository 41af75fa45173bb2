"""Login archives and the local profile store: only the login parts, versions, checksums,
safe unpacking and safe names. The contract both stores share is in test_profiles_s3.py."""
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from storage.profiles import (KEEP_VERSIONS, ArchiveError, LocalProfileStore, pack_login, session_name,
                              unpack_login)

TOKEN = Path("Default/Local Storage/leveldb/000003.log")


def make_profile(root: Path, token: str) -> Path:
    (root / "Default" / "Local Storage" / "leveldb").mkdir(parents=True)
    (root / "Default" / "Local Storage" / "leveldb" / "000003.log").write_text(token)
    (root / "Default" / "Cache").mkdir(parents=True)
    (root / "Default" / "Cache" / "big.bin").write_bytes(b"x" * 100_000)
    return root


def tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def member(name: str, kind=tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_save_and_restore_keep_only_the_login(tmp_path):
    store = LocalProfileStore(tmp_path / "store")
    profile = make_profile(tmp_path / "p1", "token-1")
    assert store.save("s1", profile)
    target = tmp_path / "p2"
    assert store.restore("s1", target)
    assert (target / TOKEN).read_text() == "token-1"
    assert not (target / "Default" / "Cache").exists()


def test_a_corrupt_archive_is_not_restored(tmp_path):
    store = LocalProfileStore(tmp_path / "store")
    archive = store.root / store.save("s1", make_profile(tmp_path / "p1", "token-1"))
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    assert not store.restore("s1", tmp_path / "p2")


def test_versions_are_pruned_and_delete_removes_all(tmp_path):
    store = LocalProfileStore(tmp_path / "store")
    profile = make_profile(tmp_path / "p1", "token")
    for _ in range(KEEP_VERSIONS + 2):
        store.save("s1", profile)
    assert len(list((tmp_path / "store" / "s1").glob("*.tar.gz"))) == KEEP_VERSIONS
    store.delete("s1")
    assert not (tmp_path / "store" / "s1").exists()
    assert not store.restore("s1", tmp_path / "p2")


def test_a_profile_without_login_is_not_saved(tmp_path):
    (tmp_path / "empty").mkdir()
    assert LocalProfileStore(tmp_path / "store").save("s1", tmp_path / "empty") is None


def test_a_store_folder_that_cannot_be_made_is_not_usable(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    store = LocalProfileStore(tmp_path / "file" / "store")
    assert not store.check()
    assert store.describe() == str(tmp_path / "file" / "store")


def test_the_first_stores_layout_is_still_restored(tmp_path):
    """Folders written before versions were listed in the pointer: <time_ns>.tar.gz + a bare pointer."""
    data = pack_login(make_profile(tmp_path / "p1", "old-token"))
    folder = tmp_path / "store" / "s1"
    folder.mkdir(parents=True)
    (folder / "1700000000000000000.tar.gz").write_bytes(data)
    (folder / "current.json").write_text(json.dumps(
        {"version": "1700000000000000000", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}))
    store = LocalProfileStore(tmp_path / "store")
    assert store.restore("s1", tmp_path / "p2")
    assert (tmp_path / "p2" / TOKEN).read_text() == "old-token"
    key = store.save("s1", make_profile(tmp_path / "p3", "new-token"))
    assert int(key.removeprefix("s1/").removesuffix(".tar.gz")) > 1700000000000000000
    assert store.restore("s1", tmp_path / "p4")
    assert (tmp_path / "p4" / TOKEN).read_text() == "new-token"


# --- unpacking --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    member("Default/IndexedDB/../../../outside.txt"),
    member("Default/IndexedDB/link", tarfile.SYMTYPE, "/etc/passwd"),
    member("Default/IndexedDB/link", tarfile.SYMTYPE, "../../../outside"),
    member("Default/IndexedDB/dev", tarfile.CHRTYPE),
], ids=["dotdot", "symlink-absolute", "symlink-outside", "device"])
def test_an_unsafe_archive_is_refused_and_the_profile_left_alone(tmp_path, bad):
    profile = make_profile(tmp_path / "p", "kept")
    data = tar_gz((member("Default/IndexedDB/ok.txt"), b"ok"), (bad, b"evil"))
    with pytest.raises(ArchiveError):
        unpack_login(data, profile)
    assert (profile / TOKEN).read_text() == "kept"
    assert not (profile / "Default" / "IndexedDB").exists()
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no staging folder left


def test_a_truncated_archive_is_refused_and_the_profile_left_alone(tmp_path):
    data = pack_login(make_profile(tmp_path / "p1", "new"))
    profile = make_profile(tmp_path / "p2", "kept")
    with pytest.raises(ArchiveError):
        unpack_login(data[: len(data) // 2], profile)
    assert (profile / TOKEN).read_text() == "kept"


def test_only_the_login_parts_are_unpacked_and_replaced(tmp_path):
    profile = make_profile(tmp_path / "p", "old")
    (profile / "Default" / "IndexedDB" / "stale").mkdir(parents=True)
    data = tar_gz((member("Default/Local Storage/leveldb/000003.log"), b"new"),
                  (member("Default/Preferences"), b"{}"), (member(f"/{tmp_path}/absolute.txt"), b"x"))
    unpack_login(data, profile)
    assert not (tmp_path / "absolute.txt").exists()
    assert (profile / TOKEN).read_text() == "new"
    assert not (profile / "Default" / "IndexedDB").exists()  # the archive's login, not a mix
    assert not (profile / "Default" / "Preferences").exists()
    assert (profile / "Default" / "Cache" / "big.bin").exists()  # the rest of the profile stays


def test_an_archive_without_login_parts_is_refused(tmp_path):
    with pytest.raises(ArchiveError):
        unpack_login(tar_gz((member("Default/Preferences"), b"{}")), tmp_path / "p")


# --- names ------------------------------------------------------------------------------

@pytest.mark.parametrize("session_id", ["s1", "a/b", "..", ".", "../../etc", "x\ny", "tab\t", "\x00",
                                        "ü-ñ", "100%", "%2F", "a b"])
def test_a_session_id_becomes_one_safe_path_component(session_id):
    name = session_name(session_id)
    assert name not in (".", "..")
    assert "/" not in name and "\\" not in name
    assert name.isprintable() and name.isascii()


def test_session_names_are_distinct():
    ids = ["a/b", "a%2Fb", "a%252Fb", ".", "%2E", "..", "s1", "S1", "s1 "]
    assert len({session_name(i) for i in ids}) == len(ids)


@pytest.mark.parametrize("session_id", ["", "x" * 300])
def test_an_empty_or_huge_session_id_is_refused(session_id):
    with pytest.raises(ValueError):
        session_name(session_id)
