#!/usr/bin/env bash
# Installs what `make demo`, `make test` and `make bench` need, where it is missing:
# Debian packages (chromium, chromium-driver, redis-server, postgresql, docker-compose;
# prometheus for its promtool when the tests ask, NEED_PROMTOOL=1; wrk for the bench, NEED_WRK=1)
# and a virtualenv with the pinned requirements (requirements.txt, and requirements-test.txt for
# the tests). Says clearly what it cannot do.
set -euo pipefail
cd "$(dirname "$0")/.."

want_pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || want_pkgs+=("$3"); }
need chromium /usr/bin/chromium chromium
need chromedriver /usr/bin/chromedriver chromium-driver
need redis-server /usr/bin/redis-server redis-server
need docker-compose /usr/bin/docker-compose docker-compose
# promtool checks the monitoring profile's Prometheus configuration in `make test`.
if [ "${NEED_PROMTOOL:-0}" = 1 ]; then need promtool /usr/bin/promtool prometheus; fi
if [ "${NEED_POSTGRES:-0}" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  want_pkgs+=(postgresql)
fi
if [ "${NEED_WRK:-0}" = 1 ]; then
  need wrk /usr/bin/wrk wrk
fi

if [ ${#want_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${want_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want_pkgs[@]}" >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want_pkgs[@]}" >/dev/null
  else
    echo "bootstrap: missing ${want_pkgs[*]}; install them (Debian: apt-get install ${want_pkgs[*]})" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: Python 3.11 or newer is needed (found $($PYTHON --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv || { echo "bootstrap: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
stamp=.venv/.requirements.sha256
sum=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  echo "bootstrap: installing pinned requirements (and the tests' own, requirements-test.txt)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -r requirements.txt -r requirements-test.txt
  echo "$sum" > "$stamp"
fi
