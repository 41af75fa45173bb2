#!/usr/bin/env bash
# Mutation testing of the rule modules (setup.cfg [mutmut]; docs/mutation-testing.md).
# Needs PostgreSQL and Redis on 127.0.0.1 (or TEST_DATABASE_URL / TEST_REDIS_URL). Uses Redis
# database 13 by default, so it never flushes the databases a `make test` beside it uses (11, 12).
#
# MUTATE_SCOPE=rules (default, 28 minutes on one core of a busy machine): the rule modules whole, plus
# the webhook signature and the recorder's batch (Recorder.process); the mutants named here
# are tested again on every run. MUTATE_SCOPE=all: every function of the modules setup.cfg
# names (an hour and more: the webhook delivery and recorder loop tests wait on real
# timeouts); mutmut keeps their results in mutants/ and tests again only what changed.
# MUTATE_CHILDREN mutants are tested at once (default 1: one core). `rm -rf mutants` starts afresh
# (needed after changing setup.cfg [mutmut]: mutants are numbered per function).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/13}
unset PYTHONPATH  # the tests must import the mutated copy in mutants/, never this tree
mutmut="$(dirname "$PYTHON")/mutmut"

RULES=(
  "models.states.*" "models.sends.*" "models.webhooks.*" "messaging.pacing.*" "workers.send_rules.*"
  "services.accepting.*" "workers.webhooks.x_sign__*" "workers.webhooks.x_verify__*"
  "workers.recorder.xǁRecorderǁprocess__*"
)
case "${MUTATE_SCOPE:-rules}" in
  rules) names=("${RULES[@]}") ;;
  all) names=() ;;
  *) echo "mutate: MUTATE_SCOPE is rules or all" >&2; exit 2 ;;
esac
status=0
"$mutmut" run --max-children "${MUTATE_CHILDREN:-1}" "${names[@]}" || status=$?
"$mutmut" results > mutants/survivors.txt || true
echo "mutate: mutants not killed listed in mutants/survivors.txt ($(grep -c . mutants/survivors.txt || true))"
exit $status
