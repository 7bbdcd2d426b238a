# Two commands for a newcomer: `make run` and `make test`. Everything else is set up on the way.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
RASA_VENV := .venv-rasa
MODEL     := models/antifraud.tar.gz
RASA      := PYTHONPATH=$(CURDIR) $(RASA_VENV)/bin/rasa
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Python 3.10 that really runs (a pyenv shim may exist without the version being active):
# on PATH, else under pyenv, else the system's. Rasa 3.6 supports nothing newer.
PYTHON310 := $(shell for p in "$$(command -v python3.10)" $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do \
  [ -x "$$p" ] && "$$p" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' 2>/dev/null \
  && { echo "$$p"; break; }; done)

.PHONY: help setup train run test bench lint format clean python310 browser

help:
	@echo "make run    set up what is missing, train the model if needed, run the product"
	@echo "make test   set up, train if needed, validate the data and run every test"
	@echo "make bench  NLU figures, classify and conversation speed, the Telegram front end end to end,"
	@echo "            a campaign to 2,000 sandbox groups, the dashboard on 20,000 reports (reports/bench.md)"
	@echo "make lint   ruff check and format check"

python310:
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "Python 3.10 is needed (Rasa 3.6 supports nothing newer) and none was found."; \
	  echo "Install it, e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv',"; \
	  echo "then run make again."; exit 1; fi

# Each environment is made again only when its requirements change.
$(RASA_VENV)/.stamp: requirements-rasa.txt | python310
	rm -rf $(RASA_VENV)
	$(PYTHON310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --upgrade pip wheel "setuptools<70"
	$(RASA_VENV)/bin/pip install --quiet -r requirements-rasa.txt
	touch $@

$(VENV)/.stamp: pyproject.toml | python310
	rm -rf $(VENV)
	$(PYTHON310) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip wheel
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

setup: $(RASA_VENV)/.stamp $(VENV)/.stamp

# The browser tests use Debian's Chromium through Playwright (which never downloads a browser),
# and CJK and emoji fonts so that screenshots show Chinese and ⚠️.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] || ! fc-list :lang=zh 2>/dev/null | grep -q . \
	    || ! fc-list 2>/dev/null | grep -qi "color emoji"; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji; \
	  else \
	    echo "The browser tests need $(CHROMIUM) and CJK fonts:"; \
	    echo "  sudo apt-get install -y chromium fonts-noto-cjk fonts-noto-color-emoji"; exit 1; \
	  fi; fi

# Trains only when the training data, the domain, the config or the normaliser changed (by content).
train: setup
	@RASA_VENV=$(RASA_VENV) MODEL=$(MODEL) scripts/train-if-changed

# Migrates the store, then starts and watches the action server (5055) and Rasa (5005).
run: train
	$(VENV)/bin/antifraud run

# Data validation, the dialogue test stories, then every test.
test: train browser
	$(RASA) data validate --fail-on-warnings --data nlu_data --domain domain.yml --config config.yml
	$(RASA) test core --stories tests/stories --model $(MODEL) --out results/stories \
	  --fail-on-prediction-errors --no-plot
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: train
	$(VENV)/bin/python scripts/bench.py $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf models/ reports/ .pytest_cache
