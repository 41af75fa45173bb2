.PHONY: bootstrap demo test test-fast mutate bench canary clean

bootstrap:
	@scripts/bootstrap.sh

## demo: bring the stack up on embedded defaults and walk the Quick Start
demo: bootstrap
	.venv/bin/python scripts/demo.py

## test: the whole suite (real PostgreSQL, Redis, Chromium, simulator)
test:
	@NEED_PROMTOOL=1 NEED_POSTGRES=$$(pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo 0 || echo 1) scripts/bootstrap.sh
	scripts/test.sh -q

## test-fast: the tests that need no browser and start no other process, less the schema fuzzer (about 35 s)
test-fast:
	@NEED_PROMTOOL=1 NEED_POSTGRES=$$(pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo 0 || echo 1) scripts/bootstrap.sh
	scripts/test.sh -q -m "not browser and not stack" --ignore=tests/test_api_fuzz.py

## mutate: mutation testing of the rule modules (see docs/mutation-testing.md)
mutate: bootstrap
	.venv/bin/python -m pip install -q -r requirements-mutate.txt
	scripts/mutate.sh

## bench: the enqueue benchmark (see docs/benchmarks.md)
bench:
	@NEED_WRK=1 scripts/bootstrap.sh
	.venv/bin/python bench/enqueue.py

## canary: the driver against the real web.whatsapp.com (needs a network and a phone)
canary: bootstrap
	@test -n "$(TO)" || { echo "usage: make canary TO=<phone number>"; exit 2; }
	.venv/bin/python scripts/canary.py --to "$(TO)"

clean:
	rm -rf var .pytest_cache mutants
