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

run:
	@echo "make run drives episodes through the six services, which land with issue 4." >&2
	@echo "Until then: make infra-up starts Kafka and FerretDB; make test runs the suite." >&2
	@exit 1

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis var
