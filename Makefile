# Everything installs into the active Python environment; pip skips what is already there.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch/torchvision builds known to work together (pip takes them from this machine's disk).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test test-all lint bench

install:
	@$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install $(TORCH_SPEC)
	@$(PIP) install -q --disable-pip-version-check --no-build-isolation -e ".[dev,demo]"

demo: install
	$(PYTHON) train.py --config configs/demo.yaml

test: install
	$(PYTHON) -m pytest -q

test-all: install
	$(PYTHON) -m pytest -q -m ""

lint: install
	$(PYTHON) -m ruff check .

bench: install
	$(PYTHON) benchmarks/partial_conv.py
	$(PYTHON) benchmarks/masks.py
	$(PYTHON) benchmarks/metrics.py
	$(PYTHON) benchmarks/train_step.py
