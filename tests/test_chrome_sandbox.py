"""Chrome keeps its sandbox where it can (CHROME_SANDBOX=auto), and says when it cannot."""
from __future__ import annotations

import logging
import os
import subprocess
import tempfile

import pytest

from browser.chrome import USERNS_PROBE, chrome_sandbox, sandbox_decision
from settings import Settings


def test_the_sandbox_is_on_unless_root_or_namespaces_are_forbidden_or_turned_off():
    assert sandbox_decision("auto", is_root=False, user_namespaces=True)[0] is True
    assert sandbox_decision("auto", is_root=True, user_namespaces=True) == (
        False, "running as root, where Chrome refuses its sandbox")
    off, why = sandbox_decision("auto", is_root=False, user_namespaces=False)
    assert off is False and "user namespaces" in why
    assert sandbox_decision("false", is_root=False, user_namespaces=True)[0] is False
    assert sandbox_decision("true", is_root=True, user_namespaces=False)[0] is True  # the operator's call


def test_chrome_sandbox_setting():
    assert Settings.from_env({}).chrome_sandbox == "auto"
    assert Settings.from_env({"CHROME_SANDBOX": "False"}).chrome_sandbox == "false"
    with pytest.raises(ValueError, match="CHROME_SANDBOX"):
        Settings.from_env({"CHROME_SANDBOX": "off"})


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite's Chromium runs as root here")
def test_as_root_auto_turns_it_off_and_says_so_once(caplog):
    chrome_sandbox.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="browser.chrome"):
            assert chrome_sandbox("auto") is False and chrome_sandbox("auto") is False
            assert chrome_sandbox("true") is True
        off = [r for r in caplog.records if "without its sandbox" in r.getMessage()]
        assert len(off) == 1 and "root" in off[0].getMessage()
    finally:
        chrome_sandbox.cache_clear()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run Chromium as another user")
def test_where_the_probe_allows_namespaces_chromium_starts_with_its_sandbox(settings):
    """What auto relies on: an unprivileged user (nobody) that may make the namespaces of
    USERNS_PROBE gets a working Chromium without --no-sandbox."""
    with tempfile.TemporaryDirectory(prefix="sandbox-") as home:  # pytest's tmp_path is root's only
        os.chmod(home, 0o777)
        as_nobody = ["runuser", "-u", "nobody", "--", "env", f"HOME={home}"]
        if subprocess.run([*as_nobody, "unshare", *USERNS_PROBE], capture_output=True, timeout=20).returncode:
            pytest.skip("this kernel forbids unprivileged user namespaces: auto would turn the sandbox off")
        done = subprocess.run([*as_nobody, settings.chromium_path, "--headless=new", "--disable-gpu",
                               f"--user-data-dir={home}/profile", "--dump-dom", "data:text/html,<p>sandboxed</p>"],
                              capture_output=True, text=True, timeout=120)
    assert "<p>sandboxed</p>" in done.stdout, done.stderr[-2000:]
