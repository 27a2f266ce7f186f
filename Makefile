# The workbook's commands. `make all` = set up, run every notebook, build the paper.
# BRIEF=mixup (the default: the homework's mixup brief) | activation (the course's variant: ReLU vs Sigmoid,
# MobileNet v1) | all (both in one chain): the study to run, briefs/<name>.toml; ARCH=... replaces its architecture
# PARAM="learning_rates=[0.2,0.1] epochs=3": notebook parameters (the driver's --param), split as a shell splits words
# PROFILE=full (brief's settings, real CIFAR-100) | quick (real data, short runs) | smoke (synthetic, minutes on a CPU)
# SEEDS=3: every setting trained with seeds 0..2 (default 1, the brief's); tables, choices and the paper use the mean
# AUTHOR="Your Name" for the paper (without it: a visible placeholder, and make report says how to set it)
# EXECUTOR=slurm: the runs train as tasks of a Slurm job array (docs/clusters.md; AI6103_SLURM_* settings)
# SPECULATE=1: after the first wave, every later wave trains at once for every choice it could start from (more runs,
# the same results; it saves wall time only where a wave's runs train at once: AI6103_CONCURRENT, docs/speed.md)
# NOTEBOOKS=lab/<brief>: run those notebooks (make lab's copies) instead of notebooks/
# `make` alone (or `make help`) lists every target with one line each.
.DEFAULT_GOAL := help
PROFILE ?= full
BRIEF ?= mixup
DATA_DIR ?=
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ifneq ($(EXECUTOR),)
export AI6103_EXECUTOR := $(EXECUTOR)
endif
export PARAM AUTHOR  # the recipes read them as "$$PARAM", "$$AUTHOR": quotes inside them stay the user's

# A variable given on make's command line that no target reads (PROFLE=smoke) stops make in one line, naming the
# closest known one, instead of running the default study.
KNOWN_VARIABLES := PROFILE BRIEF ARCH PARAM SEEDS DATA_DIR AUTHOR EXECUTOR SPECULATE NOTEBOOKS GRID BASE ARCHS EPOCHS \
	PRETRAINED TRIALS SPACE OBJECTIVE SAMPLER PRUNER PYTHON
UNKNOWN_VARIABLES := $(filter-out $(KNOWN_VARIABLES),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
ifneq ($(UNKNOWN_VARIABLES),)
$(error $(shell python3 -c 'import difflib, sys; name = sys.argv[1]; close = difflib.get_close_matches(name, sys.argv[2:], 1); print(f"make: unknown variable {name}" + (f" (did you mean {close[0]}?)" if close else "") + "; known: " + " ".join(sys.argv[2:]))' $(firstword $(UNKNOWN_VARIABLES)) $(KNOWN_VARIABLES)))
endif

.PHONY: help setup test test-fast lint format lab all notebooks report bench tensorboard sweep baselines search

# A venv left half-made (Debian without python3-venv: no pip) or made by an older python3 than 3.11 is made again.
VENV_OK := $(PY) -c 'import pip, sys; assert sys.version_info >= (3, 11)' 2>/dev/null

$(STAMP): pyproject.toml
	$(VENV_OK) || rm -rf $(VENV)
	test -x $(PY) || bash scripts/check_disk.sh .
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(VENV_OK) || { echo "make setup: $(VENV) needs Python >= 3.11 with venv and pip (Debian/Ubuntu: apt install python3.11-venv)" >&2; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name ai6103 --display-name "Python 3 (AI6103 workbook)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)  ## set up .venv (Python 3.11, torch, JupyterLab, kernel ai6103), TeX and Chromium where it can
	@bash scripts/install_tex.sh
	@bash scripts/install_browser.sh

# The tests: every file's tests in one of pytest-xdist's workers (one per core), the 15 slowest listed at the end.
# test-fast, for the edit loop (about a minute): all but the notebooks, Slurm, the browser and the slow tests.
# Run `make test` before a commit.
PYTEST := $(PY) -m pytest -q -n auto --dist loadfile

test: setup  ## developer command: every test (notebooks, Slurm, browser, slow), about 8 min on 2 cores
	$(PYTEST)

test-fast: $(STAMP)  ## developer command, the edit loop: all but notebook/slurm/browser/slow tests
	$(PYTEST) -m "not (notebook or slurm or browser or slow)"

lint: setup  ## ruff on lib tests notebooks bench scripts; notebooks committed without outputs
	$(PY) -m ruff check lib tests notebooks bench scripts || { echo "make lint: 'make format' fixes what ruff can" >&2; exit 1; }
	$(PY) -m nbstripout --verify notebooks/*.ipynb || { echo "make lint: a notebook in notebooks/ has outputs; 'make format' strips them" >&2; exit 1; }

format: setup  ## strip the notebooks' outputs (nbstripout) and apply ruff's fixes, so that `make lint` passes
	$(PY) -m nbstripout notebooks/*.ipynb
	$(PY) -m ruff check --fix lib tests notebooks bench scripts

# JupyterLab on lab/, your git-ignored copies of notebooks/ (made when missing, never overwritten); the notebooks'
# `profile = None` means PROFILE, and DATA_DIR their data folder. As root it adds --allow-root (containers).
lab: setup  ## JupyterLab on lab/<brief>/, your git-ignored copies of the brief's notebooks (BRIEF, PROFILE, DATA_DIR)
	$(PY) scripts/lab.py $(STUDY_ARGS)

# Every run's curves and the hparams table of the whole study (lib.training.tracking writes runs/<run>/tensorboard/).
tensorboard: setup  ## TensorBoard on the run store (runs/, or AI6103_RUNS_DIR)
	$(VENV)/bin/tensorboard --logdir $${AI6103_RUNS_DIR:-runs}

bench: setup  ## the speed benchmark (bench/benchmark.py), appends to bench/results.json
	$(PY) bench/benchmark.py

report: setup  ## the paper from results/<brief>/<profile>/ -> report/<brief>/<profile>/paper.pdf (BRIEF, PROFILE, AUTHOR)
	$(PY) -m lib.report --profile $(PROFILE) --brief $(BRIEF) $(if $(ARCH),--arch $(ARCH)) $(if $(AUTHOR),--author "$$AUTHOR")

# The brief's whole study: its runs, then its notebooks in its order through papermill into
# executed/<brief>/<profile>/ and figures/<brief>/<profile>/ (results in results/<brief>/<profile>/), then the paper.
STUDY_ARGS := --profile $(PROFILE) --brief $(BRIEF) $(if $(ARCH),--arch $(ARCH)) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

notebooks: setup  ## train the brief's study, run its notebooks into executed/<brief>/<profile>/ (BRIEF, PROFILE, SEEDS, PARAM)
	$(PY) scripts/run_study.py $(STUDY_ARGS) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(SPECULATE),--speculate) \
		$(if $(NOTEBOOKS),--notebooks-dir $(NOTEBOOKS)) $(if $(PARAM),--params "$$PARAM")

# Beyond the brief: a sweep over any run settings (notebook sweep; results/<brief>/<profile>/sweep.csv), e.g.
# make sweep PROFILE=smoke GRID="{'lr': [0.1, 0.05], 'batch_size': [64, 128]}" SEEDS=2 BASE=best
sweep: setup  ## notebook sweep: a grid over any run settings (GRID, BASE, SEEDS)
	$(PY) scripts/run_study.py $(STUDY_ARGS) --only sweep $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(GRID),--param "grid=$(GRID)") $(if $(BASE),--param "base='$(BASE)'")

# Beyond the brief: a small CNN, ResNet-18, MobileNetV2 and MobileNet v1 with one recipe (notebook baselines;
# results/<brief>/<profile>/baselines.json, which the summary notebook and the paper then show), e.g.
# make baselines PROFILE=quick ARCHS="['resnet18', 'mobilenetv2']" EPOCHS=10 SEEDS=2 PRETRAINED=imagenet
baselines: setup  ## notebook baselines: other architectures, one recipe (ARCHS, EPOCHS, PRETRAINED)
	$(PY) scripts/run_study.py $(STUDY_ARGS) --only baselines $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(ARCHS),--param "archs=$(ARCHS)") $(if $(EPOCHS),--param "epochs=$(EPOCHS)") \
		$(if $(PRETRAINED),--param "pretrained='$(PRETRAINED)'")

# Beyond the brief: an Optuna study over any run settings (notebook search; runs/_search/<study>.db or .log,
# results/<brief>/<profile>/search.csv); TRIALS is the study's total, so TRIALS=5 after TRIALS=3 adds two, e.g.
# make search PROFILE=smoke TRIALS=5 SPACE="{'lr': {'log': [0.01, 0.5]}}" PRUNER=median
search: setup  ## notebook search: an Optuna study (TRIALS, SPACE, BASE, OBJECTIVE, SAMPLER, PRUNER)
	$(PY) scripts/run_study.py $(STUDY_ARGS) --only search $(if $(TRIALS),--param "trials=$(TRIALS)") \
		$(if $(SPACE),--param "space=$(SPACE)") $(if $(BASE),--param "base='$(BASE)'") \
		$(if $(OBJECTIVE),--param "objective='$(OBJECTIVE)'") $(if $(SAMPLER),--param "sampler='$(SAMPLER)'") \
		$(if $(PRUNER),--param "pruner='$(PRUNER)'")

all: notebooks  ## set up, run the brief's whole study, build its paper (BRIEF, PROFILE=smoke: no GPU, offline)
	$(MAKE) report PROFILE=$(PROFILE) BRIEF=$(BRIEF) $(if $(ARCH),ARCH=$(ARCH))

# `make help` (the default goal): every target with its `## ` line, without setting anything up.
help:  ## this list
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
