# Two commands for a new user: `make demo` and `make test`. Both create or reuse .venv and
# install what they need once; a second run with nothing changed installs nothing. The dev set-up
# includes the optional Ray extra, so that the tests of run.executor=ray run (in CI too).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.alnm-installed
# torch/torchvision pinned for the CPU x86-64 set-up (pip takes them from local disk here);
# pyproject keeps a range so GPU users can bring their own build.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-fast smoke bench lab clean install

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	@touch $(STAMP)

# the demo's phantom cohort is cached in data/ (outside the repository it goes to ~/.cache/alnm)
demo: $(STAMP)
	$(VENV)/bin/alnm demo --out reports --data data

# two workers (at most four on a larger machine): the suite is papermill kernels, Ray start-ups
# and browsers as much as arithmetic; tests/conftest.py keeps each shared run on one worker
XDIST := -n auto --maxprocesses 4 --dist loadgroup

test: $(STAMP)
	$(PY) -m pytest -q $(XDIST)

# the fast tier for the edit-test loop (under two minutes here): every module, every
# configuration key's step mapping; the end-to-end runs, Ray, browsers and trainings are `slow`
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(XDIST)

smoke: $(STAMP)
	$(VENV)/bin/alnm demo --profile smoke --out reports --data data

# the third way in, for exploring and teaching: JupyterLab on notebooks/ with the kernel "alnm"
lab: $(STAMP)
	$(VENV)/bin/alnm lab notebooks

bench: $(STAMP)
	$(VENV)/bin/alnm bench

# the run folders, the demo's phantom, and the content-keyed crop and radiomics caches
# ($ALNM_CACHE, default ~/.cache/alnm: roi/ and radiomics/)
clean:
	rm -rf reports/*/ data/phantom-*
	rm -rf "$${ALNM_CACHE:-$$HOME/.cache/alnm}/roi" "$${ALNM_CACHE:-$$HOME/.cache/alnm}/radiomics"
