# ehrlab: the two commands are `make demo` and `make test`; both set up .venv first.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup demo test test-fast lint protos system-deps bench docker-e2e helm-check clean

setup:
	@./scripts/setup.sh

system-deps:
	@./scripts/install-system-deps.sh

demo: setup
	@$(PY) -m ehrlab.cli.main demo

test: setup system-deps
	@$(PY) -m pytest -n 2 --dist loadgroup tests

test-fast: setup
	@$(PY) -m pytest -n 2 --dist loadgroup -m "not slow" tests

lint: setup
	@.venv/bin/ruff check .

protos: setup
	@./scripts/gen-protos.sh

bench: setup
	@$(PY) -m benchmarks.run

clean:
	rm -rf .ehrlab .pytest_cache
