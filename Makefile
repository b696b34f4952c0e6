# daa-bench: `make help` lists the targets. Each target installs what it needs first.
SHELL := /bin/bash
PYTHON_BIN ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Users get the default PyTorch build for their platform (CUDA on most Linux machines);
# CI sets TORCH_SPEC to the CPU build it has on disk.
TORCH_SPEC ?= torch>=2.4
DATA_ROOT ?= data
MODELS_ROOT ?= models
RESULTS ?= results
DEVICE ?= auto
PRECISION ?= fp32
EVAL := $(PY) -m bench eval --data-root $(DATA_ROOT) --device $(DEVICE) --precision $(PRECISION)

.PHONY: help install test demo download download-coco download-f30k download-checkpoints \
	reproduce-all report bench bench-gpu

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed ## create .venv and install daa-bench with its test tools

test: install ## run the test suite (CPU, generated data)
	$(PY) -m pytest
