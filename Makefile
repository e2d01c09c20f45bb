# Strategia developer entry points. Everything runs from the uv workspace venv (.venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help

SERVICES := intake groups notifications news web
VENV := .venv
PY := $(VENV)/bin/python
# `uv` on PATH, else the copy pip installed as a module (pip's script dir may not be on PATH).
UV = $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

LINT_PATHS := shared services tests devtools benchmarks conftest.py
# Workspace members live in <member>/<package>; MYPYPATH makes mypy name them by package.
MYPYPATH := shared:$(subst $() ,:,$(addprefix services/,$(SERVICES))):devtools
MYPY_TARGETS := shared/shared $(foreach s,$(SERVICES),services/$(s)/$(s)) devtools/devtools benchmarks

PYTEST_ARGS ?=
BENCH_ARGS ?=
SOAK ?=

.PHONY: help ensure-uv ensure-wrk venv install up down clean status test lint bench chaos asyncapi

help:
	@echo "make install   uv sync + Java, Maven, PostgreSQL binaries, Kafka jars, Chromium"
	@echo "make up        start Kafka, PostgreSQL, SMTP sink, the services and web (.run/);"
	@echo "               REPLICAS=2 runs two instances of every service"
	@echo "make down      stop them (data is kept); make clean also deletes .run/"
	@echo "make status    what runs where"
	@echo "make test      pytest (PYTEST_ARGS='-k foo -x' to pass options)"
	@echo "make lint      ruff check, ruff format --check, mypy --strict"
	@echo "make asyncapi  regenerate services/*/asyncapi.yaml from the code"
	@echo "make bench     speed figures beside the broker's ceiling (SOAK=1: 10-minute soak)"
	@echo "make chaos     crash each service, the broker, PostgreSQL, SMTP under load; print what survived"

ensure-uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --break-system-packages uv

venv: ensure-uv
	$(UV) sync --frozen

install: venv
	$(PY) -m devtools install

# down/clean/status only need some venv, not a fresh sync.
$(PY):
	$(MAKE) --no-print-directory venv

# make up REPLICAS=2: two instances of every service, each on its own port (printed).
up: install
	$(if $(REPLICAS),STRATEGIA_REPLICAS=$(REPLICAS) )$(PY) -m devtools up

down: | $(PY)
	$(PY) -m devtools down

clean: | $(PY)
	$(PY) -m devtools clean

status: | $(PY)
	@$(PY) -m devtools status

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	MYPYPATH=$(MYPYPATH) $(VENV)/bin/mypy --strict $(MYPY_TARGETS)

# wrk (Debian) drives the closed-loop phase; installed like .ci/run installs packages.
ensure-wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk (apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk </dev/null; }

# make bench [SOAK=1] [BENCH_ARGS='--workers 3 --wrk-seconds 30']
bench: install ensure-wrk
	SOAK=$(SOAK) $(PY) -m benchmarks $(BENCH_ARGS)
	$(PY) -m benchmarks.groups

# make chaos [CHAOS_ARGS='--faults kafka,postgres --rate 20']
chaos: install
	$(PY) -m benchmarks.chaos $(CHAOS_ARGS)

asyncapi: venv
	$(PY) -m shared.platform.asyncapi .
