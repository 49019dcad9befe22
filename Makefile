# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= .burstlab-data
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-vllm test-ray test-interop fuzz lint typecheck format bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

OUT ?= out/demo
BL := $(BIN)/burstlab --data-dir $(DATA)

# The main job on the embedded real sample (Azure LLM inference 2023, conversation):
# ingest -> burstiness -> fit a workload spec -> generate a synthetic hour at 2x load ->
# replay a time-compressed real window against a real local llama.cpp engine -> the same
# server under the real and a synthetic load (downstream fidelity) -> dataset card.
demo: $(STAMP)
	$(BL) ingest --sample
	$(BL) ls
	$(BL) burstiness azure-llm-2023-conv
	$(BL) fit azure-llm-2023-conv --out $(OUT)/conv-spec.json --report $(OUT)/conv-fit.html --overwrite
	$(BL) synth $(OUT)/conv-spec.json --duration 3600 --seed 1 --rate-scale 2 --out $(OUT)/conv-synth-2x.parquet --overwrite
	$(BL) replay azure-llm-2023-conv --engine tiny --window 0:120 --speedup 2 \
		--max-input-tokens 512 --max-output-tokens 32 --slo ttft=0.5,tpot=0.05 \
		--out $(OUT)/replay --overwrite
	$(BL) synth $(OUT)/conv-spec.json --duration 60 --seed 1 --out $(OUT)/conv-synth-60s.parquet --overwrite
	$(BL) compare-load azure-llm-2023-conv $(OUT)/conv-synth-60s.parquet --engine tiny --window 0:60 \
		--speedup 2 --max-input-tokens 512 --max-output-tokens 32 --slo ttft=0.5,tpot=0.05 \
		--out $(OUT)/compare --overwrite
	$(BL) card azure-llm-2023-conv --out $(OUT)/card --overwrite
	@echo
	@echo "fit report:    $(OUT)/conv-fit.html"
	@echo "synthetic:     $(OUT)/conv-synth-2x.parquet"
	@echo "replay report: $(OUT)/replay/report.html  (records: $(OUT)/replay/records/)"
	@echo "real vs synthetic load on one server: $(OUT)/compare/comparison.json (one short window: noisy, see docs/replay.md)"
	@echo "dataset card:  $(OUT)/card/README.md"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

# Everything (what CI runs): lint, types, every test including the real llama.cpp engine, the
# strict docs build, the executed notebooks and the wheel install.
test: lint typecheck
	$(BIN)/python -m pytest

# The generated bad-input suite at full size (make test runs it with a few dozen cases each).
fuzz: $(STAMP)
	BURSTLAB_FUZZ=fuzz $(BIN)/python -m pytest -q tests/fuzz

# The inner loop: unit tests without the engine, the docs build or other slow tests.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto -m "not engine and not slow and not docs"

# The vLLM lane: end-to-end tests against a real vLLM server (its CPU build) in a venv of its
# own, built once (4.3 GB, ~2-5 min) and reused; `make test` skips these tests. PyPI's
# torchvision, torchaudio and torchcodec are CUDA builds that cannot load beside the CPU torch
# (their CPU builds live only on PyTorch's own index), so they are removed: vLLM serves text
# models without them. See docs/engine.md, "vLLM (CPU build)".
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(VLLM_VENV)/bin/python -m pip install -q -e '.[vllm,tokenizers]' "pytest>=8"
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m pytest -m vllm tests/vllm

# The Ray lane: `replay --ray` (replay/ray_workers.py) on a local two-node Ray cluster against
# the in-repo instant server on 127.0.0.1, in a venv of its own with ray[default] (1.3 GB with
# burstlab's dependencies, ~1 min from a warm pip cache), built once and reused; `make test`
# skips it.
RAY_VENV ?= .venv-ray
RAY_STAMP := $(RAY_VENV)/.installed

$(RAY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(RAY_VENV)/bin/python -m pip install -q -e '.[ray,uvloop]' "ray[default]==2.60.0" "pytest>=8"
	touch $(RAY_STAMP)

test-ray: $(RAY_STAMP)
	$(RAY_VENV)/bin/python -m pytest -m ray tests/ray

# The interop lane: burstlab's exports and imports judged by the peer tools' own code — vLLM's
# `bench serve` (in .venv-vllm, see test-vllm) and AIPerf (in a venv of its own, ~1.2 GB, built
# once). Both replay against the in-repo instant server on 127.0.0.1; `make test` skips them.
AIPERF_VENV ?= .venv-aiperf
AIPERF_STAMP := $(AIPERF_VENV)/.installed

$(AIPERF_STAMP):
	$(PYTHON) -m venv $(AIPERF_VENV)
	$(AIPERF_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIPERF_VENV)/bin/python -m pip install -q "aiperf==0.13.0"
	touch $(AIPERF_STAMP)

test-interop: $(STAMP) $(VLLM_STAMP) $(AIPERF_STAMP)
	BURSTLAB_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python BURSTLAB_AIPERF_PYTHON=$(abspath $(AIPERF_VENV))/bin/python \
		$(BIN)/python -m pytest -m interop tests/interop

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DATA) $(OUT) build *.egg-info site
