"""The local profile store: only the login parts, versions, checksums."""
from pathlib import Path

from storage.profiles import KEEP_VERSIONS, LocalProfileStore


def make_profile(root: Path, token: str) -> Path:
    (root / "Default" / "Local Storage" / "leveldb").mkdir(parents=True)
    (root / "Default" / "Local Storage" / "leveldb" / "000003.log").write_text(token)
    (root / "Default" / "Cache").mkdir(parents=True)
    (root / "Default" / "Cache" / "big.bin").write_bytes(b"x" * 100_000)
    return root


def test_save_and_restore_keep_only_the_login(tmp_path):
    store = LocalProfileStore(tmp_path / "store")
    profile = make_profile(tmp_path / "p1", "token-1")
    assert store.save("s1", profile)
    target = tmp_path / "p2"
    assert store.restore("s1", target)
    assert (target / "Default" / "Local Storage" / "leveldb" / "000003.log").read_text() == "token-1"
    assert not (target / "Default" / "Cache").exists()


def test_a_corrupt_archive_is_not_restored(tmp_path):
    store = LocalProfileStore(tmp_path / "store")
    archive = Path(store.save("s1", make_profile(tmp_path / "p1", "token-1")))
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
