# Two commands set everything up on a fresh machine: `make book` and `make test`.
# Both create .venv if needed, install the pinned requirements and the package, and fetch MNIST.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SCALE ?= book
EXECUTE ?= cache
BUILD := _build
STAMP := $(BUILD)/.exec-stamp-$(SCALE)

.PHONY: help venv data models results attack-data models-archive book book-zip test lab bench clean clean-data clean-all freeze

help:
	@echo "make book   - set up, fetch MNIST, train the zoo, execute every chapter, build _build/html"
	@echo "make book-zip - the built book as one zip to hand out (open html/index.html offline)"
	@echo "make test   - set up, then pytest (unit tests + every notebook at smoke scale)"
	@echo "make lab    - open the chapters in JupyterLab with the project's environment"
	@echo "make bench  - python -m intriguing bench attack"
	@echo "make models-archive - pack the trained models, results and frames into one zip for download"
	@echo "make clean  - remove _build;  clean-data: models/results/adversarial sets;  clean-all: also .venv and MNIST"

$(INSTALLED): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "PYTHON=$(PYTHON)"\
	  "is $$($(PYTHON) --version 2>&1); the book needs Python 3.11 or newer: e.g." \
	  "make book PYTHON=python3.12" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	@touch $@

venv: $(INSTALLED)

data: $(INSTALLED)
	$(PY) -m intriguing data

models: data
	INTRIGUING_SCALE=$(SCALE) $(PY) -m intriguing train --all

# Every experiment, before any page executes: the pages only read data/results/*.json (and
# trained models and viewer frames), never run an experiment. The expensive parts (the attacks
# on every test image, the fixed-c sets of the transfer curves, Table 5, adversarial training)
# show their progress in the logs and are cached. Re-run only when src/ or the scale changes.
# `run-all` trains the zoo and runs the experiments of the registry
# (intriguing.experiments.REGISTRY) as a graph of single-threaded processes, JOBS at a time
# (default: one per core, at most 4, as each can hold a few GB; see pipeline.default_jobs);
# logs in data/logs/<scale>/.
JOBS ?=
SRC := $(shell find src/intriguing -name "*.py")
RESULTS_STAMP := data/results/.made-$(SCALE)
data/results/.made-%: $(SRC) | data
	$(PY) -m intriguing run-all $(if $(JOBS),--jobs $(JOBS)) --scale $*
	@touch $@

results: $(RESULTS_STAMP)

# The execution cache keys on notebook sources only: clear it when src/ or the scale changes.
$(STAMP): FORCE
	@mkdir -p $(BUILD)
	@new=$$( (echo $(SCALE); find src -name '*.py' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16); \
	 if [ "$$(cat $@ 2>/dev/null)" != "$$new" ]; then \
	   echo "src/ or scale changed: clearing the execution cache"; \
	   rm -rf $(BUILD)/.jupyter_cache $(BUILD)/.doctrees; echo $$new > $@; fi
FORCE:

# Widget manager, require.js and MathJax, fetched from pinned npm tarballs (no CDN in the book).
WEB := book/_web/.manifest.json
$(WEB): src/intriguing/plumbing/webassets.py $(INSTALLED)
	$(PY) -m intriguing.plumbing.webassets --dest book/_web
	@touch $@

# The browser attack's data (issue 17): the zoo's dense models (and their float16 copies for the
# transfer table, checked on the Table 1 adversarial sets) and the first 500 test images as
# scripts, exported from the trained-model cache once run-all has filled it, into a staging
# folder that is then renamed into book/_web/html/attack-data (html_extra_path copies it to the
# site root). The stamp names the scale, so switching scales exports again; a fresh fetch of
# the web assets replaces book/_web (stamp included), so it comes after $(WEB).
ATTACK_DATA := book/_web/html/attack-data
ATTACK_STAMP := book/_web/.attack-data-$(SCALE)
ATTACK_STAGE := book/_web/.attack-data
ATTACK_DTYPE ?= float32
$(ATTACK_STAMP): $(RESULTS_STAMP) $(WEB) src/intriguing/engine/webexport.py
	@rm -f $(ATTACK_STAGE)-*
	rm -rf $(ATTACK_STAGE).new $(ATTACK_STAGE).old
	INTRIGUING_SCALE=$(SCALE) OMP_NUM_THREADS=1 $(PY) -m intriguing export-web --scale $(SCALE) \
	  --dtype $(ATTACK_DTYPE) --agreement-sets --out $(ATTACK_STAGE).new
	mkdir -p $(dir $(ATTACK_DATA))
	if [ -d $(ATTACK_DATA) ]; then mv $(ATTACK_DATA) $(ATTACK_STAGE).old; fi
	mv $(ATTACK_STAGE).new $(ATTACK_DATA)
	rm -rf $(ATTACK_STAGE).old
	@touch $@

attack-data: $(ATTACK_STAMP)

# The trained zoo, the results and the viewers' frames in one zip that the built book offers for
# download (issue 18): `python -m intriguing models install URL` verifies it and puts it in data/,
# so a reader opens every chapter at this scale without training (book/run_yourself.md). Packed
# after the results exist, into book/_web/html/downloads (html_extra_path copies book/_web/html to
# the site root; a fresh fetch of the web assets replaces book/_web, so it comes after $(WEB)),
# with its sha256 beside it; prints its size and sha256.
MODELS_ARCHIVE := book/_web/html/downloads/intriguing-models-$(SCALE).zip
$(MODELS_ARCHIVE): $(RESULTS_STAMP) $(WEB) src/intriguing/plumbing/archive.py
	INTRIGUING_SCALE=$(SCALE) OMP_NUM_THREADS=1 $(PY) -m intriguing models pack --scale $(SCALE) \
	  --out $@

models-archive: $(MODELS_ARCHIVE)

# The notebooks are executed into the execution cache first, one single-threaded kernel per core
# (jupyter-cache's local-parallel executor); the build then reads every page from the cache.
# EXECUTE=force (CI) empties the cache first, so every page is executed again.
NOTEBOOKS := $(wildcard chapters/*.ipynb book/*.ipynb)
JCACHE := $(VENV)/bin/jcache
book: results $(STAMP) $(WEB) $(ATTACK_STAMP) $(MODELS_ARCHIVE)
	@if [ "$(EXECUTE)" = force ]; then rm -rf $(BUILD)/.jupyter_cache; fi
	export INTRIGUING_SCALE=$(SCALE) INTRIGUING_STATIC_BUILD=1 OMP_NUM_THREADS=1; \
	 mkdir -p $(BUILD)/.jupyter_cache && \
	 $(JCACHE) notebook -p $(BUILD)/.jupyter_cache add $(NOTEBOOKS) > /dev/null && \
	 $(JCACHE) project -p $(BUILD)/.jupyter_cache execute -e local-parallel -t 3600
	INTRIGUING_SCALE=$(SCALE) INTRIGUING_STATIC_BUILD=1 $(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(abspath $(BUILD))/html/index.html"

# The built book as one offline archive a teacher can hand out (issue 18): unzip, open
# html/index.html; nothing needs a network or a server. Written to a temporary name first.
BOOK_ZIP := $(BUILD)/intriguing-book-$(SCALE).zip
book-zip: book
	rm -f $(BOOK_ZIP).part
	cd $(BUILD) && ../$(PY) -m zipfile -c $(notdir $(BOOK_ZIP)).part html
	mv $(BOOK_ZIP).part $(BOOK_ZIP)
	@echo "The offline book is $(abspath $(BOOK_ZIP)) ($$(du -h $(BOOK_ZIP) | cut -f1)): unzip it and open html/index.html"

# The tests and every page at smoke scale; the pages read the smoke results, made first.
test: data/results/.made-smoke
	INTRIGUING_SCALE=smoke $(PY) -m pytest tests --nbmake chapters book/scorecard.ipynb \
	  --nbmake-timeout=900

lab: $(RESULTS_STAMP)
	INTRIGUING_SCALE=$(SCALE) $(VENV)/bin/jupyter lab chapters/

bench: data
	$(PY) -m intriguing bench attack

freeze: $(INSTALLED)
	@{ echo "# Exact pins of the resolved set (Python 3.11, Linux). torch's own platform-specific wheels"; \
	   echo "# (nvidia-*, cuda-*, triton) are left to torch's resolver so the file also installs off x86_64."; \
	   echo "# Regenerate: make freeze"; \
	   $(PY) -m pip freeze --exclude-editable | grep -vE '^(nvidia-|cuda-|triton==)'; } > requirements.txt

clean:
	rm -rf $(BUILD)

clean-data:
	rm -rf data/models data/results data/adversarial data/logs

clean-all: clean clean-data
	rm -rf $(VENV) data/mnist
