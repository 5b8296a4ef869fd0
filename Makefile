# One entry point for people and CI. Every target is a thin call into the harness
# (python -m harness) or pytest; nothing here re-implements harness logic.

SHELL := /bin/bash
CACHE := .cache
VENV := $(CACHE)/venv
PY := $(VENV)/bin/python
TARGET ?= local
MAAS ?= 0
PYTEST_ARGS ?=
export RAG_REQUIRE_TOOLS ?= 1
# pytest exits 5 when it collected no test: for this project that is a broken suite, not a pass.
PYTEST = $(PY) -m pytest $(1); rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

.DEFAULT_GOAL := help
.PHONY: help bootstrap up down status test test-kube test-charts test-unit e2e lint bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml scripts/bootstrap-python.sh
	@scripts/bootstrap-python.sh $(VENV)
	@touch $@

bootstrap: $(VENV)/.installed ## install every pinned tool and package into .cache (idempotent)
	@$(PY) -m harness bootstrap

up: bootstrap ## start the stack on TARGET (default local: embedded processes, values/local.yaml)
	@$(PY) -m harness up --target $(TARGET)

down: ## stop the stack on TARGET (local keeps its run folder; kube removes the whole cluster)
	@$(PY) -m harness down --target $(TARGET)

status: ## print the running stack's endpoints as JSON
	@$(PY) -m harness status --target $(TARGET)

test: bootstrap ## run every test that can run here: charts, unit, local stack, e2e, meta, then the kube lane
	@$(call PYTEST,$(PYTEST_ARGS))
	@$(MAKE) --no-print-directory test-kube

# Its own pytest process: the kube target moves the test process into the cluster's network namespace.
# tee-sys: the cluster build and start-up progress shows while it happens, not only on failure.
test-kube: bootstrap ## the kube lane: a real single-node Kubernetes built here (root), e2e suite + lane tests
	@$(call PYTEST,tests/e2e tests/kube --target kube --capture=tee-sys $(PYTEST_ARGS))

test-charts: bootstrap ## chart tests only (Helm 3 and Helm 4)
	@$(call PYTEST,tests/charts $(PYTEST_ARGS))

test-unit: bootstrap ## harness unit tests only
	@$(call PYTEST,tests/unit $(PYTEST_ARGS))

e2e: bootstrap ## deploy the stack on TARGET (default local; MAAS=1 for a real MaaS) and run the workflows
	@if [ "$(MAAS)" = 1 ] && { [ -z "$$MAAS_ENDPOINT" ] || [ -z "$$MAAS_API_KEY" ]; }; then \
	  echo "error: MAAS=1 needs MAAS_ENDPOINT and MAAS_API_KEY in the environment" >&2; exit 1; fi
	@$(call PYTEST,tests/e2e --target $(TARGET) $(PYTEST_ARGS))

lint: bootstrap ## ruff, shellcheck, actionlint, helm lint
	@$(PY) -m ruff check tests benchmarks
	@shellcheck scripts/*.sh .ci/run
	@$(CACHE)/bin/actionlint
	@for c in charts/*/; do $(CACHE)/bin/helm lint --strict "$$c" || exit 1; done

bench: bootstrap ## benchmarks (not tests): local stack start-up, e2e wall time, gateway overhead
	@for b in benchmarks/*.py; do $(PY) "$$b" || exit 1; done

clean: down ## remove run folders (keeps installed tools)
	@rm -rf $(CACHE)/runs
