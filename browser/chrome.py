"""Starting Chromium through undetected-chromedriver, offline.

undetected-chromedriver downloads a driver unless it is given one; we give it a
writable copy of the local chromedriver (it patches the binary in place) and the
local Chromium, so nothing is fetched at run time.

Chrome keeps its sandbox where it can (``CHROME_SANDBOX=auto``): not as root (Chrome
refuses it), and not where this process may not make user namespaces (a kernel or a
container's seccomp profile that forbids them); ``chrome_sandbox`` says why, once.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import undetected_chromedriver as uc
import websocket

# Flags that keep a server Chrome small and quiet (WHATSAPP_WEB.md section 8); the
# background-networking ones also stop Chrome calling home on a closed network.
CHROME_FLAGS = (
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-extensions",
    "--disable-blink-features=AutomationControlled",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--window-size=1280,900",
)
# WhatsApp Web follows the browser's language, and every text the driver matches is
# English: pin it by flag, by the accept-language preference and by the environment of
# the Chrome process (the flag alone was reported not to change navigator.language;
# puppeteer/puppeteer#8912, puppeteer-extra PR #606; WHATSAPP_WEB.md section 10).
BROWSER_LANGUAGE = "en-US"
LANGUAGE_PREFS = {"intl.accept_languages": "en-US,en"}
LANGUAGE_ENV = {"LANGUAGE": "en_US:en", "LANG": "en_US.UTF-8"}

_copy_lock = threading.Lock()
OWNER_FLAG = "--wa-owner="
NO_SANDBOX = "--no-sandbox"
log = logging.getLogger("browser.chrome")


def sandbox_decision(mode: str, *, is_root: bool, user_namespaces: bool) -> tuple[bool, str]:
    """(whether Chrome runs with its sandbox, why) for CHROME_SANDBOX ``mode``: ``auto``,
    ``true`` or ``false``. ``is_root``: this process runs as root; ``user_namespaces``: it may
    make the user, PID and network namespaces Chrome's sandbox is built from."""
    if mode == "true":
        return True, "CHROME_SANDBOX=true"
    if mode == "false":
        return False, "CHROME_SANDBOX=false"
    if is_root:
        return False, "running as root, where Chrome refuses its sandbox"
    if not user_namespaces:
        return False, ("this process may not make user namespaces (kernel setting, or the container's "
                       "seccomp profile)")
    return True, "user namespaces allowed"


# The namespaces Chrome's sandbox makes (user, PID, network), made by unshare(1).
USERNS_PROBE = ("--user", "--pid", "--net", "--fork", "true")


def user_namespaces_allowed() -> bool:
    """Whether this process may make the namespaces Chrome's sandbox uses: tried with
    ``unshare``, else read from the kernel's settings."""
    unshare = shutil.which("unshare")
    if unshare:
        try:
            return subprocess.run([unshare, *USERNS_PROBE], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
    for path in ("/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces"):
        try:
            if Path(path).read_text().strip() == "0":
                return False
        except OSError:
            continue
    return True


@lru_cache(maxsize=None)
def chrome_sandbox(mode: str = "auto") -> bool:
    """Whether Chrome keeps its sandbox under CHROME_SANDBOX ``mode``; decided, and said in
    the log when it is off, once per process."""
    is_root = os.geteuid() == 0
    on, why = sandbox_decision(mode, is_root=is_root,
                               user_namespaces=not is_root and mode == "auto" and user_namespaces_allowed())
    if on:
        log.info("chrome runs with its sandbox (%s)", why)
    else:
        log.warning("chrome runs without its sandbox (--no-sandbox): %s", why)
    return on


@lru_cache(maxsize=None)
def chrome_major_version(driver_path: str) -> int:
    """The major version of chromedriver at ``driver_path`` (that of the Chrome it drives),
    from ``chromedriver --version``; RuntimeError when its answer holds no version."""
    out = subprocess.run([driver_path, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)\.\d+\.\d+", out)
    if not match:
        raise RuntimeError(f"cannot read the chromedriver version from {out!r}")
    return int(match.group(1))


DRIVER_COPY_PREFIX = "chromedriver-"


def _writable_driver(driver_path: str, work_dir: Path) -> str:
    """This process's copy of chromedriver (undetected-chromedriver patches it in place),
    made on first use; ``remove_driver_copy`` removes it when the slot stops."""
    target = work_dir / f"{DRIVER_COPY_PREFIX}{os.getpid()}"
    with _copy_lock:
        if not target.exists():
            work_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(driver_path, target)
    return str(target)


def remove_driver_copy(work_dir: Path) -> None:
    """Remove this process's chromedriver copy (a running chromedriver keeps its open
    file), and the copies of processes that no longer run (a worker killed with SIGKILL
    could not remove its own): about 25 MB each."""
    with _copy_lock:
        for copy in work_dir.glob(f"{DRIVER_COPY_PREFIX}*"):
            pid = copy.name[len(DRIVER_COPY_PREFIX):]
            if not pid.isdigit() or (int(pid) != os.getpid() and Path(f"/proc/{pid}").exists()):
                continue
            try:
                copy.unlink()
            except FileNotFoundError:
                pass


def _own_session_launcher(chromium_path: str, work_dir: Path) -> str:
    """A launcher that runs Chrome in a session of its own (setsid execs in place, so the
    pid stays the one undetected-chromedriver knows), with the pinned language in its
    environment. A supervisor's signal to the worker's process group (honcho stops
    processes that way) must not kill Chrome before the worker closes it gracefully and
    saves the login."""
    setsid = shutil.which("setsid") or ""
    target = work_dir / "chromium-own-session"
    env = " ".join(f"{k}={v}" for k, v in LANGUAGE_ENV.items())
    script = f'#!/bin/sh\nexport {env}\nexec {setsid} "{chromium_path}" "$@"\n'
    with _copy_lock:
        work_dir.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != script:
            tmp = target.with_suffix(f".{os.getpid()}")
            tmp.write_text(script)
            tmp.chmod(0o755)
            os.replace(tmp, target)
    return str(target)


def missing_browser_parts(chromium_path: str, chromedriver_path: str) -> list[str]:
    """The paths among Chromium's and chromedriver's that are not executable (empty: both are)."""
    return [p for p in (chromium_path, chromedriver_path) if not os.access(p, os.X_OK)]


def launch_chrome(*, chromium_path: str, chromedriver_path: str, profile_dir: Path,
                  work_dir: Path, user_agent: str, headless: bool = True, owner: str | None = None,
                  sandbox: str = "auto") -> uc.Chrome:
    """``owner`` tags the Chrome's command line (``--wa-owner=<owner>``, ignored by Chrome)
    so that its owner can find it again after a crash (``kill_orphans``). ``sandbox``:
    CHROME_SANDBOX, ``auto``, ``true`` or ``false`` (see ``chrome_sandbox``)."""
    missing = missing_browser_parts(chromium_path, chromedriver_path)
    if missing:
        raise FileNotFoundError(f"browser not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)")
    profile_dir.mkdir(parents=True, exist_ok=True)
    options = uc.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    if not chrome_sandbox(sandbox):
        options.add_argument(NO_SANDBOX)
    # A HeadlessChrome user agent gets an "update your browser" page instead of the QR.
    options.add_argument(f"--user-agent={user_agent}")
    options.add_argument(f"--lang={BROWSER_LANGUAGE}")
    options.add_experimental_option("prefs", dict(LANGUAGE_PREFS))
    if owner:
        options.add_argument(f"{OWNER_FLAG}{owner}")
    return uc.Chrome(
        options=options,
        driver_executable_path=_writable_driver(chromedriver_path, work_dir),
        browser_executable_path=_own_session_launcher(chromium_path, work_dir),
        user_data_dir=str(profile_dir),
        headless=headless,
        version_main=chrome_major_version(chromedriver_path),
        use_subprocess=True,
    )


def close_gracefully(driver, timeout: float = 15.0) -> None:
    """Close Chrome the way a user would, so it writes its storage (the login) to disk,
    then end the driver. A plain kill can leave Local Storage unwritten.

    Asked through chromedriver, or, when chromedriver is already gone (a supervisor
    signalled the worker's whole process group), through Chrome's own DevTools socket,
    said in one line (asking a dead chromedriver would log a warning per retry).
    ``timeout`` (seconds) is how long Chrome may take to exit before the driver ends it:
    well under a second on a quiet machine, several on a loaded one. Chrome and
    chromedriver are waited for (reaped): no ``<defunct>`` child is left behind.
    """
    pid = getattr(driver, "browser_pid", None)
    if driver_alive(driver):
        try:
            driver.execute_cdp_cmd("Browser.close", {})
        except Exception:  # the connection closed as Chrome exited, or chromedriver just went
            _close_over_devtools(driver.options.debugger_address)
    else:
        log.info("chromedriver already gone: Chrome (pid %s) closed over its DevTools socket", pid)
        _close_over_devtools(driver.options.debugger_address)
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    _quit_quietly(driver)
    reap(driver)


def driver_alive(driver) -> bool:
    """Whether the driver's chromedriver process still runs (False once it exited)."""
    process = getattr(getattr(driver, "service", None), "process", None)
    return process is not None and process.poll() is None


def reap(driver, timeout: float = 5.0) -> None:
    """Wait for the driver's chromedriver and Chrome to exit (killing what is still there
    after ``timeout`` seconds), so neither stays a zombie child of the worker.
    undetected-chromedriver's ``quit`` signals both but waits for neither."""
    process = getattr(getattr(driver, "service", None), "process", None)
    if process is not None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    pid = getattr(driver, "browser_pid", None)
    if pid:
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() >= deadline:
                _kill_group(pid)
                deadline = time.monotonic() + timeout
            time.sleep(0.05)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


def kill_browser(driver, timeout: float = 5.0) -> None:
    """End a crashed or hung Chrome at once (its whole process group: it runs in a
    session of its own), then the driver, and reap both. Nothing is saved: a hung page
    has nothing trustworthy to save."""
    pid = getattr(driver, "browser_pid", None)
    if pid:
        _kill_group(pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
    quitter = threading.Thread(target=_quit_quietly, args=(driver,), daemon=True)
    quitter.start()
    quitter.join(timeout)
    reap(driver, timeout)


def _quit_quietly(driver) -> None:
    try:
        driver.quit()
    except Exception:  # chromedriver already gone
        pass


def _close_over_devtools(debugger_address: str | None) -> None:
    if not debugger_address:
        return
    try:
        with urllib.request.urlopen(f"http://{debugger_address}/json/version", timeout=2) as resp:
            ws_url = json.load(resp)["webSocketDebuggerUrl"]
        ws = websocket.create_connection(ws_url, timeout=2, suppress_origin=True)
        try:
            ws.send(json.dumps({"id": 1, "method": "Browser.close"}))
        finally:
            ws.close()
    except (OSError, ValueError, KeyError, websocket.WebSocketException):
        pass  # Chrome is already gone


def _alive(pid: int) -> bool:
    try:
        finished, _status = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:  # not our child (or already reaped): ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def kill_orphans(owner: str) -> int:
    """Kill the Chromes tagged ``owner`` that a previous life of this worker left behind
    (killed with SIGKILL, it could not close them); they hold their profiles locked."""
    mark = f"{OWNER_FLAG}{owner}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark not in args:
            continue
        pid = int(entry.name)
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
                killed += 1
                break
            except (ProcessLookupError, PermissionError):
                continue
    return killed


def processes() -> Iterator[tuple[int, str, str, int]]:
    """Every process on the machine as (pid, name, state, parent pid), from /proc/<pid>/stat
    (state "Z": exited and not waited for). A process that ends meanwhile is left out."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        yield int(entry.name), stat[stat.index("(") + 1:stat.rindex(")")], state, int(ppid)


def process_trees_pss(pids: list[int]) -> dict[int, int]:
    """For each pid, the memory of it and all its descendants (PSS, bytes), from one scan
    of /proc. PSS shares the pages Chrome's processes have in common fairly among them."""
    children: dict[int, list[int]] = {}
    for pid, _name, _state, parent in processes():
        children.setdefault(parent, []).append(pid)
    totals = {}
    for root in pids:
        total, todo = 0, [root]
        while todo:
            current = todo.pop()
            todo.extend(children.get(current, []))
            total += _pss(current)
        totals[root] = total
    return totals


def _pss(pid: int) -> int:
    """A process's PSS in bytes; its resident size where smaps_rollup cannot be read (an
    older kernel, or a process this one may not inspect so closely); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
