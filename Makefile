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
	$(BIN)/python -m benchmarks.bench_handler

# The main job end to end: train, convert (fp32 + int8-dynamic), validate,
# publish, serve over HTTP, call it with V2 JSON, tritonclient binary and TF
# Serving requests. See `maas demo --help`.
demo: venv
	$(BIN)/maas demo --workdir $(DEMO)

clean:
	rm -rf .maas .mypy_cache .ruff_cache .pytest_cache .hypothesis
