#!/usr/bin/env bash
# Runs the whole suite against PostgreSQL and Redis on 127.0.0.1 when they answer
# (or TEST_DATABASE_URL / TEST_REDIS_URL), otherwise against throwaway ones it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/wa-test.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  if [ -f "$tmp/pg/postmaster.pid" ]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$tmp/pg" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    export TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
  else
    PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
    [ -x "$PG_BIN/initdb" ] || { echo "test: no PostgreSQL answers and initdb is missing (apt-get install postgresql)" >&2; exit 1; }
    port=$(free_port)
    echo "test: starting a throwaway PostgreSQL on 127.0.0.1:$port"
    mkdir -p "$tmp/pg" && chown postgres "$tmp/pg"
    runuser -u postgres -- "$PG_BIN/initdb" -q -D "$tmp/pg" -U postgres --auth=trust >/dev/null
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$tmp/pg" -w -l "$tmp/pg.log" \
      -o "-h 127.0.0.1 -p $port -k $tmp" start >/dev/null
    export TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$port/postgres
  fi
fi
if [ -z "${TEST_REDIS_URL:-}" ]; then
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    export TEST_REDIS_URL=redis://127.0.0.1:6379/11
  else
    port=$(free_port)
    echo "test: starting a throwaway Redis on 127.0.0.1:$port"
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    export TEST_REDIS_URL=redis://127.0.0.1:$port/0
  fi
fi

echo "test: docker-compose.yml parses, with and without the monitoring profile (given placeholder credentials: it has no defaults)"
for profile in "" "--profile monitoring"; do
  # shellcheck disable=SC2086 # the profile is two words or none
  env POSTGRES_PASSWORD=x REDIS_PASSWORD=x AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x MINIO_KMS_SECRET_KEY=k:x \
    WEBHOOK_SECRET=x FLOWER_BASIC_AUTH=x:x docker-compose -f docker-compose.yml $profile config -q
done
# promtool (Debian package prometheus, scripts/bootstrap.sh with NEED_PROMTOOL=1) checks
# deploy/prometheus/prometheus.yml in tests/test_monitoring.py, which skips without it.

# Two workers (TEST_WORKERS; 0 runs in this process): most tests wait on browsers and
# processes rather than compute. Each test file stays on one worker (module fixtures such
# as a simulator or a whole stack), and each worker has a Redis database of its own.
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
