# Kronos Serve: set-up and everyday commands. Every target builds .venv first when needed.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the stamps make set-up idempotent: each reruns only when pyproject.toml changes. Serving
# needs only the runtime set; test, lint and typecheck add the dev extras (a superset, so
# installing them also satisfies the runtime stamp: `make run` after `make test` installs nothing)
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
SAMPLE_CSV := server/kronos_server/default_model/data/regression_input.csv
# the image tag: the one version of every part (both pyproject.toml files read this file)
VERSION_FILE := clients/kronos_client/_version.py
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' $(VERSION_FILE))

.PHONY: help run forecast-sample test lint lint-docker typecheck pytest monitoring-check bench bench-rest bench-backtest bench-replicas bench-load loadtest train-default clean protos image

help:
	@echo "make run               start the server: gRPC on port 50051, REST on port 8000, embedded default model"
	@echo "                       (installs the runtime set only; test, lint and typecheck add the dev extras)"
	@echo "make forecast-sample   one CLI forecast of the shipped sample data"
	@echo "make test              lint + typecheck + monitoring-check + pytest"
	@echo "make pytest            the test suite (slow tests in their own step)"
	@echo "make lint              ruff check + ruff format --check + lint-docker"
	@echo "make lint-docker       hadolint the Dockerfile"
	@echo "make typecheck         mypy (strict)"
	@echo "make monitoring-check  promtool: Prometheus config, alert rules and their unit tests"
	@echo "make image             docker build -t kronos-serve:$(VERSION) . (needs a Docker engine)"
	@echo "make bench             engine throughput and latency benchmark"
	@echo "make bench-rest        REST minus the in-process dataplane's latency of the same forecast"
	@echo "make bench-backtest    a 64-origin, 8-sample backtest vs the same 64 forecasts one at a time"
	@echo "make bench-replicas    3 replicas against 1"
	@echo "make bench-load        end-to-end load sweep: batched engine vs the original algorithm (about 25 min)"
	@echo "make loadtest          load sweep (gRPC + REST, concurrency 1,4,16,64) against a running 'make run' server"
	@echo "make train-default     retrain the embedded default model (overwrites server/kronos_server/default_model)"
	@echo "make protos            regenerate the gRPC stubs after editing protos/"
	@echo "make clean             remove caches and build outputs (keeps .venv)"
	@echo "make help              this list"

# torch first, pinned: pip then takes the local CPU wheel instead of resolving a CUDA build;
# the runtime set for run / forecast-sample / train-default, the dev extras for everything else
TORCH := torch==2.13.0
define install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e '$(1)'
endef

# a new version reinstalls too, so the installed metadata (kronos-serve --version) follows it
$(RUNTIME): pyproject.toml $(wildcard $(VERSION_FILE))
	$(call install,.)
	touch $@

$(DEV): pyproject.toml $(wildcard $(VERSION_FILE))
	$(call install,.[dev])
	touch $(RUNTIME) $@

# generated stubs are committed; this file target regenerates them only when the proto changes.
# They live in the client's tree (clients/kronos/v1, import name kronos.v1), which the server, the
# bridge and the client all import, so the client distribution ships them without server code
PROTO := protos/kronos/v1/predictor.proto
GEN := clients/kronos/v1/predictor_pb2.py
$(GEN): $(PROTO) | $(DEV)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=clients --pyi_out=clients \
		--grpc_python_out=clients $(PROTO)

protos: $(GEN)

# gRPC on :50051 and REST on :8000 with the embedded default model (KRONOS_* settings apply)
run: $(RUNTIME)
	@echo "gRPC on port $${KRONOS_GRPC_PORT:-50051}, REST on http://localhost:$${KRONOS_HTTP_PORT:-8000}/v1 (docs: /v1/docs)"
	$(BIN)/kronos-serve serve

# a one-off CLI forecast of the shipped CSV, no server needed
forecast-sample: $(RUNTIME)
	$(BIN)/kronos-serve forecast --csv $(SAMPLE_CSV) --tail 400 --pred-len 24 \
		--sample-count 8 --quantiles 0.1,0.5,0.9

test: lint typecheck monitoring-check pytest

# Prometheus config, alert rules and their unit tests (promtool: Debian's prometheus package)
monitoring-check:
	@if ! command -v promtool >/dev/null; then echo "monitoring-check: SKIPPED, promtool not installed (apt-get install prometheus; CI installs it)"; exit 0; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp monitoring/prometheus/prometheus-scrape-config.yml monitoring/prometheus/kronos-alerts.yml "$$tmp"/; \
	promtool check config "$$tmp"/prometheus-scrape-config.yml; \
	promtool check rules monitoring/prometheus/kronos-alerts.yml; \
	promtool test rules monitoring/prometheus/tests/*.yml

lint: $(DEV) lint-docker
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-docker: $(DEV)
	$(BIN)/hadolint Dockerfile

# the container image, tagged with the package version; refuses clearly without a Docker engine
image:
	@if ! docker info >/dev/null 2>&1; then \
		echo "image: no Docker engine reachable ('docker info' failed): start Docker, or set DOCKER_HOST" >&2; \
		exit 1; \
	fi
	docker build --build-arg VERSION=$(VERSION) -t kronos-serve:$(VERSION) .

typecheck: $(DEV)
	$(BIN)/mypy

# the slow suite runs in its own step; exit status 5 means "no slow tests collected"
pytest: $(DEV)
	$(BIN)/python -m pytest -m "not slow"
	$(BIN)/python -m pytest -m slow || [ $$? -eq 5 ]

bench: $(DEV)
	$(BIN)/python benchmarks/bench_engine.py

bench-replicas: $(DEV)
	$(BIN)/python benchmarks/bench_replicas.py --json benchmarks/results/replicas-cpu.json

# end-to-end load sweep, our engine vs the original algorithm (about 25 min; docs/PERFORMANCE.md)
bench-load: $(DEV)
	$(BIN)/python benchmarks/bench_load.py --out benchmarks/results

bench-rest: $(DEV)
	$(BIN)/python benchmarks/bench_rest.py

bench-backtest: $(DEV)
	$(BIN)/python benchmarks/bench_backtest.py --json benchmarks/results/backtest-cpu.json

train-default: $(RUNTIME)
	$(BIN)/kronos-serve train --out server/kronos_server/default_model --force

# load sweep against a running `make run` (start it with KRONOS_RATE_LIMIT=1000000/minute: the
# default 100/minute refuses most calls); e.g. make loadtest LOADTEST_ARGS='--duration 10 --shapes single'
LOADTEST_TARGET ?= localhost:50051
LOADTEST_REST_URL ?= http://localhost:8000
LOADTEST_CONTAINER ?= dev
KEY_FILE ?= .kronos/dev-key.txt
LOADTEST_OUT ?= bench-out/loadtest
LOADTEST_ARGS ?=
loadtest: $(DEV)
	$(BIN)/kronos-client loadtest --target $(LOADTEST_TARGET) --rest-url $(LOADTEST_REST_URL) \
		--container $(LOADTEST_CONTAINER) --key-file $(KEY_FILE) \
		--json $(LOADTEST_OUT).json --plot $(LOADTEST_OUT).png $(LOADTEST_ARGS)

clean:
	rm -rf build dist server/*.egg-info clients/build clients/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-out
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf
