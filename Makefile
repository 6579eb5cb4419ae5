# The README's two commands: `make run` (the platform, embedded) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the platform's packages into $(VENV) (the first time takes a few minutes)…"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[test]'  # not --quiet: each package shows as it is collected
	touch $(STAMP)

# Front-end libraries no Python package ships (README "Front-end dependencies"): npm ci installs exactly what
# package-lock.json names, checking each tarball against its integrity hash, and runs none of their scripts.
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed for the front-end libraries (apt-get install npm)"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NODE_STAMP)

# Translations: the .po catalogues are committed, their .mo files compiled here with Babel (no gettext needed) when
# missing or older than their .po (README, "Languages").
PO := $(wildcard maintenance_site/locale/*/LC_MESSAGES/*.po)
MO := $(PO:.po=.mo)

$(MO): %.mo: %.po $(STAMP)
	$(PY) manage.py compiletranslations

install: $(STAMP) $(NODE_STAMP) $(MO)

# `make run PORT=8080` (and HOST=0.0.0.0 to listen beyond this machine)
PORT ?= $(or $(MAINTENANCE_PORT),$(SERVICE_PORT),8000)
HOST ?= 127.0.0.1

run: $(STAMP) $(NODE_STAMP) $(MO)
	$(PY) manage.py runplatform --host $(HOST) --port $(PORT)

lint: $(STAMP) $(NODE_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports  # the apps' dependency order (pyproject.toml [tool.importlinter])
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# The suite in TEST_WORKERS processes (pytest-xdist), each with its own test database and cache namespace
# (tests/settings.py); a test file stays in one process, so module-scoped fixtures (the browser tests' live
# server and Chromium) start once.
TEST_WORKERS ?= 2

test: lint $(MO)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile
