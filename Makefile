# maas: the two set-up commands are `make demo` and `make test` (see README.md).
# Each works on a fresh machine with only Python >= 3.11: it creates .venv and
# installs what it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.maas-installed
DEMO := .maas/demo

.PHONY: venv demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "maas needs Python >= 3.11; found " + sys.version.split()[0] + " (set PYTHON=...)")'
	@# Debian's system Python ships venv/ensurepip separately.
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "installing python3-venv with apt-get"; \
		apt-get update -qq && apt-get install -y -qq python3-venv; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

test: lint typecheck
	$(BIN)/pytest

# Benchmarks are not tests: ratios against a baseline taken in the same run.
bench: venv
	$(BIN)/python -m benchmarks.bench_core

# Until the conversion pipeline lands, the demo is a registry round trip on a
# local registry: publish two versions, move aliases (with a canary), show,
# roll back, and read the history.
demo: venv
	rm -rf $(DEMO)
	$(BIN)/python -m tests.support.onnx_models $(DEMO)/digits-a.onnx 0
	$(BIN)/python -m tests.support.onnx_models $(DEMO)/digits-b.onnx 1
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas publish $(DEMO)/digits-a.onnx --name digits --alias production
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas publish $(DEMO)/digits-b.onnx --name digits --alias staging
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models alias digits production 2 --canary 1 --weight 0.1 --reason "demo: promote with a 10% canary"
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models list
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models show digits
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models show digits@production
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models rollback digits --reason "demo: roll back"
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models history digits
	MAAS_REGISTRY=$(DEMO)/registry $(BIN)/maas models pull digits --out $(DEMO)/served.onnx
	@echo "demo registry: $(DEMO)/registry"

clean:
	rm -rf .maas .mypy_cache .ruff_cache .pytest_cache .hypothesis
