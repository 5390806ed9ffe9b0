# Two commands on a fresh clone: `make demo` (the main job) and `make test`.
# Both create and fill .venv first when it is missing or older than pyproject.toml or setup.cfg.
# `make dist` builds the sdist and the wheel; `make wheel-check` installs that wheel as a user does.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
# A CPU build of torch lies on the project's machines; a bare `torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# The wheels pip installs from (--find-links): imitation 1.0.1 with relaxed pins, then `make dist`'s.
DIST ?= dist
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: install test test-slow lint format demo dist wheel-check clean

install: $(STAMP)

# imitation 1.0.1's metadata pins stable-baselines3~=2.2 and gymnasium~=0.29; its code runs on the current
# stack, so pip takes the same wheel with relaxed pins from $(DIST) (README, "Install").
$(STAMP): pyproject.toml setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PY) .ci/relaxed_imitation_wheel.py $(DIST)
	$(PIP) install --find-links $(DIST) -e ".[dev,ray]"
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

# sdist and wheel (the wheel built from the sdist) in $(DIST), beside the relaxed imitation wheel
dist: $(STAMP)
	$(PY) .ci/relaxed_imitation_wheel.py $(DIST)
	$(PY) -m build --outdir $(DIST) .

# the wheel installed with the README's pip line into a fresh venv; see .ci/wheel-check
wheel-check:
	bash .ci/wheel-check

clean:
	rm -rf $(VENV) $(DIST) build demo_output zoo_logs sb3_project_output .pytest_cache .ruff_cache
