# Shipyard: two commands on a fresh machine.
#   make demo   set up, run the main job on embedded defaults, serve the results on :8080
#   make test   set up, make sure PostgreSQL, Redis and S3 (moto) are reachable, run everything
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint format services browser venv ui-assets clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	# The MLflow pytorch flavor test: the CPU build this machine kind keeps on disk
	# (pinned: an unpinned torch would pull the CUDA build, several GB).
	$(PIP) install -q torch==2.13.0
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

services:
	bash scripts/services.sh

# Front-end packages the UI serves, from the npm registry as frontend/package-lock.json
# pins them, copied into the package (git-ignored; the wheel ships them). Without
# them the UI falls back to the full plotly.js of the plotly Python package.
UI_VENDOR := src/shipyard/ui/static/vendor
UI_ASSETS := $(UI_VENDOR)/plotly-basic.min.js
ui-assets: $(UI_ASSETS)

$(UI_ASSETS): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	npm ci --prefix frontend --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(UI_VENDOR)
	cp frontend/node_modules/plotly.js-basic-dist-min/plotly-basic.min.js $(UI_ASSETS)

# The web UI tests drive Debian's Chromium through Playwright (which cannot download
# its own browsers here).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

lint: venv
	$(VENV)/bin/ruff check src tests examples $(wildcard benchmarks)
	$(VENV)/bin/ruff format --check src tests examples $(wildcard benchmarks)

format: venv
	$(VENV)/bin/ruff format src tests examples $(wildcard benchmarks)
	$(VENV)/bin/ruff check --fix src tests examples $(wildcard benchmarks)

test: venv ui-assets services browser lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

demo: venv ui-assets
	SHIPYARD_HOME=$${SHIPYARD_HOME:-.shipyard} $(PY) examples/demo.py
	@echo "Serving the results on http://127.0.0.1:8080 (Ctrl-C to stop)"
	SHIPYARD_HOME=$${SHIPYARD_HOME:-.shipyard} $(VENV)/bin/shipyard server --host 127.0.0.1 --port 8080

bench: venv services
	$(PY) benchmarks/tracking.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .ruff_cache frontend/node_modules $(UI_VENDOR)
