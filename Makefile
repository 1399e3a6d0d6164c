# Two commands matter on a fresh machine: `make run` (the platform's main job) and
# `make test` (the whole suite). Everything else is a step of those.
SHELL := /bin/bash
UV_VERSION := 0.13.8
CACHE := $(HOME)/.cache/rcm-platform
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup infra-up infra-down infra-status test lint typecheck schemas asyncapi run bench clean

setup: .venv/.synced

$(UV):
	python3 -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

infra-up: setup
	deploy/local/infra.sh up

infra-down:
	deploy/local/infra.sh down

infra-status:
	deploy/local/infra.sh status

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: setup
	.venv/bin/mypy

# Unit, contract, integration and end-to-end tests. Kafka and FerretDB come from
# KAFKA_BOOTSTRAP_SERVERS/MONGODB_URL, else testcontainers (Docker), else deploy/local.
test: lint typecheck
	.venv/bin/pytest $(PYTEST_ARGS)

schemas: setup
	.venv/bin/rcm contracts schemas

asyncapi: setup
	.venv/bin/rcm contracts asyncapi

# Starts Kafka/FerretDB (unless KAFKA_BOOTSTRAP_SERVERS/MONGODB_URL are set) and the eight
# processes, drives synthetic episodes to a zero balance, prints a summary; logs in var/runs.
# Options: make run RUN_ARGS="--episodes 40 --seed 7 --replicas 2" (see .venv/bin/rcm run
# --help; --replicas N runs every service as N processes).
run: setup
	.venv/bin/rcm run $(RUN_ARGS)

# Throughput and per-hop latency of the whole platform (payer delays 0), beside raw Kafka
# and database baselines of the same run; figures in var/bench.json. Nothing is asserted.
# Options: make bench BENCH_ARGS="--replicas 2 --preload 10000" (see .venv/bin/rcm bench --help).
BENCH_EPISODES ?= 100
bench: setup
	.venv/bin/rcm bench --episodes $(BENCH_EPISODES) --json var/bench.json $(BENCH_ARGS)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis var
