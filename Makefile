# a2a-grpc developer commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
GRPC_PORT ?= 50051
HTTP_PORT ?= 8080

.DEFAULT_GOAL := help
.PHONY: help install stubs check-stubs lint breaking test soak curl openssl redis run bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "variables: make run GRPC_PORT=50061 HTTP_PORT=8081 (other ports), make bench BENCH_ARGS='--smoke'"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv with the library and every development tool

# What running needs, not the development tools: the library and its HTTP extra (the bridge).
# A development install has all of it already.
$(RUN_STAMP): pyproject.toml
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; else \
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -e '.[http]' && touch $@; fi

stubs: $(STAMP) ## regenerate a2a_grpc/_gen from protos/
	$(BIN)/python tools/gen_protos.py

check-stubs: $(STAMP) ## fail if a2a_grpc/_gen is stale
	$(BIN)/python tools/gen_protos.py --check

lint: $(STAMP) ## ruff, mypy (strict, hand-written code), buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/buf.py lint

breaking: $(STAMP) ## buf breaking against the main branch
	$(BIN)/python tools/buf.py breaking --against main

test: $(STAMP) curl openssl redis ## run the test suite (the tests start their own redis-server)
	$(BIN)/pytest -q

soak: $(STAMP) redis ## the long soak tests, outside make test (minutes)
	$(BIN)/pytest -q -m soak

curl: ## make sure curl is there (the README's curl cookbook is executed by the tests)
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

openssl: ## make sure openssl is there (docs/tls.md makes its certificates with it, and the tests run it)
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

redis: ## make sure redis-server is there (the replica tests start their own, on a loopback port)
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

run: $(RUN_STAMP) ## serve the reference agent, SQLite store: gRPC on GRPC_PORT (50051), JSON on HTTP_PORT (8080)
	$(BIN)/a2a-grpc serve --grpc-port $(GRPC_PORT) --http-port $(HTTP_PORT)

bench: $(STAMP) ## benchmark our servers against the official SDK and bare grpc.aio (~6 min; docs/performance.md)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean: ## remove the virtualenv and build output
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
