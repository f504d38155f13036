# Two commands do everything on a fresh machine (Python >= 3.11 with venv):
#   make train   create .venv, install archsearch, train the default tiny model on the bundled corpus
#   make test    create .venv, install archsearch with test extras, run the whole test suite
# Overrides: make train ARGS="model.d_model=192"   make test PYTEST_ARGS="-k law"

VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= train,slurm,wandb,megatron,hf,eval,dev
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup train test lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch (pinned first, so no extra below pulls a CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[$(EXTRAS)]' --config-settings editable_mode=compat
	touch $@

setup: $(VENV)/.installed

train: setup
	$(PY) -m archsearch.train $(ARGS)

test: setup
	PY=$(PY) bash tests/run.sh $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .
