# Everything installs into the active Python environment; pip skips what is already there.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch/torchvision builds known to work together (pip takes them from this machine's disk).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo app test test-all lint bench

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
	assert all(find_spec(n) for n in ('gradio', 'onnx', 'onnxscript', 'onnxruntime', 'playwright'))"

install:
	@$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install $(TORCH_SPEC)
	@$(INSTALLED) 2>/dev/null || $(PIP) install -q --disable-pip-version-check -e ".[dev,demo,app]"

demo: install
	$(PYTHON) train.py --config configs/demo.yaml

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
