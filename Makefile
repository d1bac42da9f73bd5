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

# Builds the seven service images on a debootstrapped base, runs the stack as containers and an
# experiment through it (needs root; starts its own dockerd when none answers).
docker-e2e: setup
	@./scripts/docker-e2e.sh

# helm lint/template for several values combinations, every rendered object (and the k8s/ overlays)
# through kubernetes-validate --strict, skaffold paths
helm-check: setup
	@./scripts/install-helm.sh >/dev/null
	@$(PY) -m pytest -q -p no:cacheprovider tests/k8s/test_chart.py tests/k8s/test_kustomize.py tests/k8s/test_skaffold.py

bench: setup
	@$(PY) -m benchmarks.run

clean:
	rm -rf .ehrlab .pytest_cache
