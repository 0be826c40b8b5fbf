# Everything installs into the active Python environment; pip skips what is already there.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch/torchvision builds known to work together (pip takes them from this machine's disk).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo padding-demo app test test-all lint bench

# Succeeds when this checkout is installed (editable) and the extras' modules import: then
# `install` runs no pip at all.
# (sys.path[0] is the current folder, whose build leftover *.egg-info would shadow the install.)
INSTALLED = $(PYTHON) -c "import importlib.metadata as m, json, pathlib, sys; \
	dist = next(iter(m.distributions(name='pconv-inpainting', path=sys.path[1:]))); \
	url = json.loads(dist.read_text('direct_url.json') or '{}'); \
	assert url.get('dir_info', {}).get('editable') and url['url'].startswith('file://'); \
	here = pathlib.Path(r'$(CURDIR)').resolve(); \
	assert pathlib.Path(url['url'].removeprefix('file://')).resolve() == here; \
	import cv2, PIL, yaml, tensorboard, tqdm, pytest, ruff, skimage; \
	from importlib.util import find_spec; \
	assert all(find_spec(n) for n in ('gradio', 'onnx', 'onnxscript', 'onnxruntime', 'playwright', \
		'torch_fidelity', 'lpips', 'sklearn', 'torchmetrics', 'pytorch_fid')); \
	import platform; \
	assert find_spec('patchmatch_cython') or not (platform.machine() in ('x86_64', 'AMD64') \
		or sys.platform == 'darwin')"

install:
	@$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install $(TORCH_SPEC)
	@$(INSTALLED) 2>/dev/null || $(PIP) install -q --disable-pip-version-check -e ".[dev,demo,app,patchmatch,metrics]"

demo: install
	$(PYTHON) train.py --config configs/demo.yaml

# Zero / partial / reflect / replicate padding, 3 seeds each, on Fashion-MNIST (under 15 min on
# 2 CPU cores); Debian's dataset-fashion-mnist is installed first when its files are missing.
# PADDING_DEMO_ARGS: more options of python -m inpainting.tasks.classification.padding_demo (--seeds 5, --set ...).
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
PADDING_DEMO_ARGS ?=
padding-demo: install
	@if ! ls "$(FASHION_MNIST)"/t10k-labels-idx1-ubyte* >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
		echo "installing Debian's dataset-fashion-mnist (apt-get)"; \
		{ $$sudo apt-get update -q && $$sudo apt-get install -y -q dataset-fashion-mnist; } \
			>/dev/null 2>&1 && ls "$(FASHION_MNIST)"/t10k-labels-idx1-ubyte* >/dev/null 2>&1 || { \
			echo "padding-demo: cannot install Debian's dataset-fashion-mnist into" \
				"$(FASHION_MNIST) (needs apt-get as root or with passwordless sudo);" \
				"install it, or give FASHION_MNIST=DIR, a folder of Fashion-MNIST's idx files" >&2; \
			exit 1; }; \
	fi
	$(PYTHON) -m inpainting.tasks.classification.padding_demo --data "$(FASHION_MNIST)" $(PADDING_DEMO_ARGS)

# The page on the newest demo run (runs/demo-*, see configs/demo.yaml), or without a model.
app: install
	@run=$$(ls -td runs/demo-*/ 2>/dev/null | head -n 1); \
	if [ -n "$$run" ] && [ -f "$${run}best.pt" ]; then \
		$(PYTHON) -m inpainting.app --checkpoint "$${run}best.pt"; \
	else \
		echo "no demo run in runs/demo-*: the page runs the classical methods only (make demo trains one)"; \
		$(PYTHON) -m inpainting.app; \
	fi

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
	$(PYTHON) benchmarks/export.py
	$(PYTHON) benchmarks/padding_speed.py --keep-freed-memory
