# a2a-grpc developer commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
GRPC_PORT ?= 50051
HTTP_PORT ?= 8080
# Stubs of other languages (tools/stubs.py, docs/stubs.md): the languages, and the Debian
# packages that bring their plugins, compilers and runtimes.
STUB_LANGS   := python ts go java cpp csharp
STUB_TARGETS := $(addprefix stubs-,$(STUB_LANGS))
STUB_DEBS    := protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev g++ \
	golang-go golang-google-protobuf-dev golang-google-grpc-dev golang-google-genproto-dev \
	protoc-gen-go protoc-gen-go-grpc golang-github-golang-protobuf-1-5-dev \
	protobuf-compiler-grpc-java-plugin libprotobuf-java libgrpc-java libguava-java \
	libgeronimo-annotation-1.3-spec-java mono-mcs
NODE_TOOLS   := tools/node/node_modules/.installed
# buf breaking compares the protos with main and with this commit, the wire we have shipped:
# move it forward only at a release (docs/stubs.md, "What protects you").
PROTO_BASELINE := 55977e9a7dbf5a9fa5f01913e56c7083269380ca

.DEFAULT_GOAL := help
.PHONY: help install stubs check-stubs lint breaking test soak curl openssl redis run bench clean sdk03 \
	stubs-tools stubs-all $(STUB_TARGETS)

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

breaking: $(STAMP) ## buf breaking against the main branch and the protos' baseline
	$(BIN)/python tools/buf.py breaking --against main --against $(PROTO_BASELINE)

test: $(STAMP) curl openssl redis stubs-tools ## run the test suite (the tests start their own redis-server)
	$(BIN)/pytest -q

soak: $(STAMP) redis ## the long soak tests, outside make test (minutes)
	$(BIN)/pytest -q -m soak

sdk03: $(STAMP) ## the a2a-sdk 0.3 virtualenv the v0.3 interop tests drive (build/sdk03-venv; the tests build it too)
	$(BIN)/python -m tests.sdk03.bootstrap

curl: ## make sure curl is there (the README's curl cookbook is executed by the tests)
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

openssl: ## make sure openssl is there (docs/tls.md makes its certificates with it, and the tests run it)
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

redis: ## make sure redis-server is there (the replica tests start their own, on a loopback port)
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

$(NODE_TOOLS): tools/node/package.json tools/node/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
	npm ci --prefix tools/node --no-audit --no-fund --silent
	@touch $@

stubs-tools: $(NODE_TOOLS) ## install every stub plugin and compiler (Debian packages, npm)
	@dpkg -s $(STUB_DEBS) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(STUB_DEBS) >/dev/null; }
	@command -v javac >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jdk-headless >/dev/null

# make stubs-go, stubs-ts, ...: one language into gen/<lang>, then compiled; a missing plugin is
# named with the package that brings it (make stubs-tools installs them all).
$(STUB_TARGETS): stubs-%: $(STAMP)
	@if [ $* = ts ]; then $(MAKE) --no-print-directory $(NODE_TOOLS); fi
	$(BIN)/python tools/stubs.py all $*

stubs-all: $(STAMP) $(NODE_TOOLS) ## every language into gen/ and compiled (one language: make stubs-python, -ts, -go, -java, -cpp, -csharp)
	$(BIN)/python tools/stubs.py all all

run: $(RUN_STAMP) ## serve the reference agent, SQLite store: gRPC on GRPC_PORT (50051), JSON on HTTP_PORT (8080)
	$(BIN)/a2a-grpc serve --grpc-port $(GRPC_PORT) --http-port $(HTTP_PORT)

bench: $(STAMP) ## benchmark our servers against the official SDK and bare grpc.aio (~6 min; docs/performance.md)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean: ## remove the virtualenv and build output
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
