# The two commands: `make dev` runs everything locally, `make test` is what CI runs.
# Nothing needs installing by hand beyond the Rust toolchain and Python 3: the local AWS
# emulator (moto) and cfn-lint go into .venv from infra/requirements.txt, and `make e2e`
# installs Debian's Chromium and ChromeDriver (apt-get, as root or with sudo).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON ?= python3

# A `.env` file (KEY=value lines, as in .env.example; no quotes, and no `#` or `$` in a
# value: give such a value in the environment) sets what the environment does not, and the
# defaults below fill the rest: environment, then .env, then defaults. A line with an empty
# value is skipped (the default applies); of two lines for one name, the last counts.
ifneq ($(wildcard .env),)
DOTENV_VARS := $(sort $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=..*/\1/p' .env))
$(foreach v,$(DOTENV_VARS),$(if $(filter environment command%,$(origin $(v))),,$(eval $(v) := $(shell sed -n 's/^$(v)=\(..*\)/\1/p' .env | tail -n 1))))
export $(DOTENV_VARS)
endif

# `make dev` defaults, used only where the environment (or .env) does not set a value.
export TABLE_NAME ?= crm-local
export ADMIN_API_KEY ?= local-admin-key-change-me
# Ingest without keys, so the seed's requests work verbatim (a warning says so at start-up);
# INGEST_AUTH=required make dev behaves as AWS does.
export INGEST_AUTH ?= off
export PORT ?= 3005
export RUST_LOG ?= info

.PHONY: help dev test lint unit e2e fuzz bench sam-build invoke deploy clean

help:
	@echo "make dev     run every endpoint on http://localhost:$(PORT) against a local AWS emulator"
	@echo "make test    fmt, clippy, cfn-lint, all tests, the browser tests and the API fuzzer (what CI runs)"
	@echo "make bench   latency, CPU and DynamoDB round trips per endpoint, cold starts -> docs/performance.md"
	@echo "make sam-build   sam build: one zip per function (SAM CLI and cargo-lambda go into .venv-deploy)"
	@echo "make invoke FN=<function> EVENT=<file>   one release binary, one sample event, local Runtime API"
	@echo "make deploy  make sam-build, then sam deploy --guided (needs AWS credentials)"

$(VENV)/.installed: infra/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

dev: $(VENV)/.installed
	cargo build --quiet -p crm-local --bin crm-dev
	infra/with-emulator.sh target/debug/crm-dev

lint: $(VENV)/.installed
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

# Tests always use an emulator of their own, never an endpoint from the environment. The
# function binaries first: a test starts each one on its sample events, as Lambda would.
unit: $(VENV)/.installed
	cargo build --workspace --bins --locked
	env -u AWS_ENDPOINT_URL cargo test --workspace --locked

# In headless Chromium (installed from Debian's packages): the landing-page tag on a page
# served from another origin, the tracked link, the click log.
e2e: $(VENV)/.installed tests/browser/node_modules/.installed
	infra/install-browser.sh
	env -u AWS_ENDPOINT_URL cargo test --locked -p crm-tests --test browser

# axe-core, which the browser tests load into each page (pinned by package-lock.json).
tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $@

# Schemathesis against a locally started server: every route of docs/openapi.yaml.
fuzz: $(VENV)/.installed
	cargo build --quiet --locked -p crm-local --bin crm-dev
	infra/fuzz-api.sh

test: lint unit e2e fuzz

# Every binary in release (the function binaries are started for their cold start).
bench: $(VENV)/.installed
	cargo build --quiet --release --locked --bins
	env -u AWS_ENDPOINT_URL RUST_LOG=warn infra/with-emulator.sh target/release/crm-bench docs/performance.md

# The SAM CLI, cargo-lambda and Zig, pinned (infra/deploy-requirements.txt), in a venv of
# their own: their dependencies do not meet moto's.
DEPLOY_VENV := .venv-deploy
$(DEPLOY_VENV)/.installed: infra/deploy-requirements.txt
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/deploy-requirements.txt
	touch $@

# arm64 (Graviton: cheaper per ms) when the toolchain has its standard library
# (`rustup target add aarch64-unknown-linux-gnu`), otherwise x86_64; ARCH= chooses.
ARCH ?= $(if $(wildcard $(shell rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu),arm64,x86_64)
SAM := PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(DEPLOY_VENV)/bin/sam

# Every function with SAM's rust-cargolambda build method (release profile, Lambda's glibc),
# then each package's zipped size (at most 10 MB each, or this fails).
sam-build: $(DEPLOY_VENV)/.installed
	@if [ "$(ARCH)" = x86_64 ]; then echo "Building for x86_64: this toolchain has no aarch64 standard library. Deploy with --parameter-overrides Architecture=x86_64 (make deploy does)."; fi
	$(SAM) build --parameter-overrides Architecture=$(ARCH)
	$(DEPLOY_VENV)/bin/python infra/artifact-sizes.py .aws-sam/build

# One function's release binary, invoked once with EVENT through a local stand-in for the
# Lambda Runtime API, against the local emulator (or AWS_ENDPOINT_URL): `sam local invoke
# -e` without Docker. BIN= runs another binary, e.g. BIN=.aws-sam/build/ClickFunction/bootstrap.
invoke: $(VENV)/.installed
	@if [ -z "$(FN)" ] || [ -z "$(EVENT)" ]; then echo "usage: make invoke FN=<function> EVENT=events/<function>/<sample>.json (functions: ls events/)"; exit 2; fi
	$(if $(BIN),,cargo build --quiet --release --locked --bin $(FN))
	cargo build --quiet --locked -p crm-local --bin crm-invoke
	infra/with-emulator.sh target/debug/crm-invoke $(or $(BIN),target/release/$(FN)) $(EVENT) $(FN)

# Asks for each stack parameter (secrets hidden, and never saved to samconfig.toml).
deploy: sam-build
	$(SAM) deploy --guided --parameter-overrides Architecture=$(ARCH)

clean:
	cargo clean
	rm -rf $(VENV) $(DEPLOY_VENV) .dev .aws-sam
