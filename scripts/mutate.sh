#!/usr/bin/env bash
# Mutation testing of the rule modules (setup.cfg [mutmut]; docs/mutation-testing.md).
# Needs PostgreSQL and Redis on 127.0.0.1 (or TEST_DATABASE_URL / TEST_REDIS_URL). Uses Redis
# database 13 by default, so it never flushes the databases a `make test` beside it uses (11, 12).
# MUTATE_CHILDREN mutants are tested at once (default 1: one core). Results are kept in
# mutants/ and reused by the next run for what did not change; `rm -rf mutants` starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/13}
unset PYTHONPATH  # the tests must import the mutated copy in mutants/, never this tree
mutmut="$(dirname "$PYTHON")/mutmut"
status=0
"$mutmut" run --max-children "${MUTATE_CHILDREN:-1}" || status=$?
"$mutmut" results > mutants/survivors.txt || true
echo "mutate: surviving and untested mutants listed in mutants/survivors.txt ($(grep -c . mutants/survivors.txt || true))"
exit $status
