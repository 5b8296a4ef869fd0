# One entry point for people and CI. Every target is a thin call into the harness
# (python -m harness) or pytest; nothing here re-implements harness logic.

SHELL := /bin/bash
CACHE := .cache
VENV := $(CACHE)/venv
PY := $(VENV)/bin/python
TARGET ?= local
MAAS ?= 0
PYTEST_ARGS ?=
# Extra values overlays for up, e2e and test, applied after the target's own: VALUES="a.yaml b.yaml".
VALUES ?=
VALUES_ARGS = $(foreach f,$(VALUES),--values $(abspath $(f)))
export RAG_REQUIRE_TOOLS ?= 1
# pytest exits 5 when it collected no test: for this project that is a broken suite, not a pass.
PYTEST = $(PY) -m pytest $(1); rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

.DEFAULT_GOAL := help
.PHONY: help bootstrap up down status test test-kube test-model test-charts test-unit e2e lint docs bench mutation clean clean-charts

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml scripts/bootstrap-python.sh
	@scripts/bootstrap-python.sh $(VENV)
	@touch $@

bootstrap: $(VENV)/.installed ## install every pinned tool and package into .cache (idempotent)
	@$(PY) -m harness bootstrap

up: bootstrap ## start the stack on TARGET (default local: embedded processes, values/local.yaml, then VALUES="FILE ...")
	@$(PY) -m harness up --target $(TARGET) $(VALUES_ARGS)

down: ## stop the stack on TARGET (local: removes its temp data, keeps its run folder; kube removes the whole cluster)
	@$(PY) -m harness down --target $(TARGET)

status: ## print the running stack's endpoints as JSON
	@$(PY) -m harness status --target $(TARGET)

test: bootstrap ## run every test that can run here: charts, unit, local stack, e2e with the stand-in MaaS, meta (VALUES for e2e); then the real-model and kube lanes
	@# The kube lane's first build (about 16 min cold, mostly CPU) runs meanwhile, in the background at
	@# the lowest priority, and stops if make does (its owner); the lane then waits for it.
	@$(PY) -m harness build --background --owner $$PPID
	@# The e2e suite runs as `make e2e` runs it: MaaS registration included, against the stand-in
	@# MaaS (a real one is `make e2e MAAS=1`). An option, not MAAS_ENDPOINT: the meta tests' own
	@# pytest runs inherit the environment, and their stacks run without a MaaS.
	@$(call PYTEST,--maas-endpoint standin $(VALUES_ARGS) $(PYTEST_ARGS))
	@$(MAKE) --no-print-directory test-model
	@$(MAKE) --no-print-directory test-kube

# Its own pytest process: the kube target moves the test process into the cluster's network namespace.
# tee-sys: the cluster build and start-up progress shows while it happens, not only on failure.
# The MaaS lane runs here too, always against the stand-in MaaS: it serves inside the cluster's
# network namespace, and nothing outside that namespace (a real MaaS) is reachable from the pods.
test-kube: bootstrap ## the kube lane: a real single-node Kubernetes built here (root), e2e suite (MaaS lane with the stand-in MaaS) + lane tests
	@$(call PYTEST,tests/e2e tests/kube --target kube --maas-endpoint standin --capture=tee-sys $(PYTEST_ARGS))

# Part of make test, and runnable alone: installs about 510 MB into .cache/model on first use (hash-pinned).
test-model: bootstrap ## the real-model lane: a small real model (llama.cpp) behind the gateway answers RAG questions
	@scripts/install-model.sh $(VENV) $(CACHE)/model
	@RAG_MODEL_LANE=1 $(call PYTEST,tests/model tests/meta/test_model_lane_detected.py $(PYTEST_ARGS))

test-charts: bootstrap ## chart tests only (Helm 3 and Helm 4)
	@$(call PYTEST,tests/charts $(PYTEST_ARGS))

test-unit: bootstrap ## harness unit tests only
	@$(call PYTEST,tests/unit $(PYTEST_ARGS))

# The main job proves the MaaS workflow too: without MAAS_ENDPOINT in the environment it runs
# against the stand-in MaaS, which the local and kube targets can reach (kind and existing
# clusters cannot: set MAAS_ENDPOINT and MAAS_API_KEY there). MAAS_ENDPOINT= (empty) runs without.
ifeq ($(origin MAAS_ENDPOINT),undefined)
ifneq ($(filter $(TARGET),local kube),)
e2e: export MAAS_ENDPOINT := standin
endif
endif
e2e: bootstrap ## deploy the stack on TARGET (default local) and run the workflows, MaaS included (default: the stand-in MaaS)
	@if [ "$(MAAS)" = 1 ] && [ "$$MAAS_ENDPOINT" != standin ] && { [ -z "$$MAAS_ENDPOINT" ] || [ -z "$$MAAS_API_KEY" ]; }; then \
	  echo "error: MAAS=1 needs MAAS_ENDPOINT and MAAS_API_KEY in the environment (or MAAS_ENDPOINT=standin for the stand-in MaaS)" >&2; exit 1; fi
	@$(call PYTEST,tests/e2e --target $(TARGET) $(VALUES_ARGS) $(PYTEST_ARGS))

lint: bootstrap ## ruff, the harness's import layers, mypy, shellcheck, actionlint, helm lint, chart READMEs up to date (helm-docs)
	@$(PY) -m ruff check tests benchmarks
	@$(VENV)/bin/lint-imports --no-cache pyproject.toml
	@$(PY) -m mypy
	@$(PY) -m harness clean-charts --check
	@shellcheck scripts/*.sh .ci/run
	@$(CACHE)/bin/actionlint
	@for c in charts/*/; do $(CACHE)/bin/helm lint --strict "$$c" || exit 1; done
	@$(PY) -m harness docs --check

docs: bootstrap ## regenerate the charts' README values tables from the `# --` comments in values.yaml (helm-docs)
	@$(PY) -m harness docs

# Not part of make test: about 4 minutes of one core. Fails below a 90% score.
mutation: bootstrap ## mutation pass over the gateway's Lua with its unit tests: score and surviving mutants
	@$(PY) benchmarks/gateway_mutation.py

bench: bootstrap ## benchmarks (not tests): local stack start-up, e2e wall time, gateway vs direct and plain Envoy (latency, req/s, budget accuracy), kube lane, mutation pass
	@rc=0; for b in benchmarks/*.py; do $(PY) "$$b" || { echo "benchmark $$b: exit status $$?" >&2; rc=1; }; done; exit $$rc

clean-charts: ## remove `helm dependency build` output (Chart.lock, charts/*.tgz) that would shadow the linked subcharts
	@$(PY) -m harness clean-charts

clean: ## stop local stacks; remove run folders and their temp data (keeps installed tools)
	@if [ -x $(PY) ]; then $(PY) -m harness clean; else rm -rf $(CACHE)/runs; fi
