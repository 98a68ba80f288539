# maas: the two set-up commands are `make demo` and `make test` (see README.md).
# Each works on a fresh machine with only Python >= 3.11: it creates .venv and
# installs what it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.maas-installed
DEMO := .maas/demo

# The AWS SAM CLI gets its own venv: it pins many packages that .venv must not
# inherit. It needs a region to lint and build, never credentials or Docker.
SAM_VENV ?= .sam-venv
SAM_CLI_VERSION ?= 1.170.0
SAM_STAMP := $(SAM_VENV)/.sam-installed
SAM := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL SAM_CLI_TELEMETRY=0 \
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(SAM_VENV)/bin/sam

# checkov gets its own venv too, for the same reason. --skip-download keeps it
# offline (it would fetch guidelines from its vendor's API); every finding it no
# longer reports is skipped in template.yaml with its reason.
CHECKOV_VENV ?= .checkov-venv
CHECKOV_VERSION ?= 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.checkov-installed

.PHONY: venv demo test lint typecheck unit fuzz bench clean
.PHONY: sam-venv validate build-x86_64 build-arm64 check-build checkov-venv checkov

# schemathesis, too, pins packages that conflict with .venv's: its own venv.
ST_VENV ?= .schemathesis-venv
SCHEMATHESIS_VERSION ?= 4.32.5
ST_STAMP := $(ST_VENV)/.schemathesis-installed
FUZZ_API_EXAMPLES ?= 1000

.PHONY: schemathesis-venv schemathesis fuzz-api load

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
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

# Property-based fuzzing of the inference handler (tests/fuzz) with FUZZ_EXAMPLES
# generated API Gateway events in all; prints the count and the status codes.
# Plain `pytest` (so `make test`) runs 2,000 of them.
FUZZ_EXAMPLES ?= 100000
fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz -q

test: lint typecheck validate checkov build-x86_64 build-arm64 schemathesis
	MAAS_REQUIRE_BUILDS=1 $(BIN)/pytest

# template.yaml: SAM's own lint, then cfn-lint from .venv (the version pinned there).
validate: venv sam-venv
	$(SAM) validate --lint
	$(BIN)/cfn-lint template.yaml

# Security and best-practice checks of template.yaml; any new finding fails.
checkov: checkov-venv
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--skip-download --compact --quiet

# `sam build` for one architecture, into its own build dir (the layer Makefile
# reads LAYER_ARCH; SAM passes it nothing else), then the ELF and size report
# (tests/infra/test_build.py asserts the same in `make test`). To deploy a
# build: sam deploy --guided -t .aws-sam/build-ARCH/template.yaml \
#   --parameter-overrides Architecture=ARCH
build-x86_64 build-arm64: build-%: venv sam-venv
	LAYER_ARCH=$* LAYER_PYTHON=$(abspath $(SAM_VENV))/bin/python $(SAM) build \
		--build-dir .aws-sam/build-$* --parameter-overrides Architecture=$*
	$(BIN)/python -m tests.infra.test_build $*

check-build: build-x86_64 build-arm64

# $(call tool-venv,VENV,REQUIREMENT): the recipe of a tool's own venv and its stamp.
define tool-venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(1)/bin/python -m pip install --quiet '$(2)'
	touch $@
endef

$(SAM_STAMP): | $(STAMP)
	$(call tool-venv,$(SAM_VENV),aws-sam-cli==$(SAM_CLI_VERSION))

sam-venv: $(SAM_STAMP)

$(CHECKOV_STAMP): | $(STAMP)
	$(call tool-venv,$(CHECKOV_VENV),checkov==$(CHECKOV_VERSION))

checkov-venv: $(CHECKOV_STAMP)

$(ST_STAMP): | $(STAMP)
	$(call tool-venv,$(ST_VENV),schemathesis==$(SCHEMATHESIS_VERSION))

schemathesis-venv: $(ST_STAMP)

# schemathesis against `maas serve` on a small registry of real models, from the
# /openapi.json it serves: every response (errors included) must conform to the
# document, valid requests be accepted, invalid ones refused, undocumented methods
# get 405 + Allow. Bounded here (part of `make test`); fuzz-api is the long run.
schemathesis: venv schemathesis-venv
	$(BIN)/python -m tests.contract --st $(ST_VENV)/bin/st --max-examples 50

fuzz-api: venv schemathesis-venv
	$(BIN)/python -m tests.contract --st $(ST_VENV)/bin/st \
		--max-examples $(FUZZ_API_EXAMPLES) --seed $$(date +%s)

# 8 clients x 5,000 mixed V2 JSON/binary requests on kept-open connections, an alias
# move half-way: fails on any error, a move not seen within the TTL + 2 s, or server
# RSS varying over 5% after warm-up; prints p50/p99 and requests per second.
load: venv
	$(BIN)/python -m tests.load --clients 8 --requests 5000

# Benchmarks are not tests: ratios against a baseline taken in the same run.
# Writes benchmarks/RESULTS.md, results.json and results.png (the chart); package
# sizes come from the SAM builds, when present (make build-x86_64 build-arm64).
bench: venv
	$(BIN)/python -m benchmarks.bench_core
	$(BIN)/python -m benchmarks.bench_handler
	$(BIN)/python -m benchmarks.bench_mobilenet
	$(BIN)/python -m benchmarks.bench_cold
	$(BIN)/python -m benchmarks.bench_redeploy
	$(BIN)/python -m benchmarks.bench_watchdog
	$(BIN)/python -m benchmarks.bench_hostile
	$(BIN)/python -m benchmarks.bench_ensemble
	$(BIN)/python -m benchmarks.bench_drift
	$(BIN)/python -m benchmarks.report

# The main job end to end: train, convert (fp32 + int8-dynamic), validate,
# publish, serve over HTTP, call it with V2 JSON, tritonclient binary and TF
# Serving requests. See `maas demo --help`.
demo: venv
	$(BIN)/maas demo --workdir $(DEMO)

clean:
	rm -rf .maas .mypy_cache .ruff_cache .pytest_cache .hypothesis
