# ArcPortal. Needs only Python 3.11+ and make: everything else goes into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The Azure CLI lives in a venv of its own (its azure-mgmt-* pins conflict with ours): .venv-az/bin/az (docs/cli.md).
AZ_VENV := .venv-az
AZ_STAMP := $(AZ_VENV)/.installed
# The secret key lives in the var directory (ARC_VAR_DIR, default ./var) that the settings read it from when
# DJANGO_SECRET_KEY is unset, so every `.venv/bin/python manage.py ...` uses the same key as `make run`.
VAR_DIR := $(or $(ARC_VAR_DIR),var)
SECRET_FILE := $(VAR_DIR)/secret_key

.PHONY: run prepare test lint format venv migrate bench demo demo-prepare clean

$(STAMP): requirements.txt requirements-dev.txt agent/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e ./agent
	touch $(STAMP)

$(AZ_STAMP): requirements-cli.txt
	$(PYTHON) -m venv $(AZ_VENV)
	$(AZ_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AZ_VENV)/bin/python -m pip install --quiet -r requirements-cli.txt
	touch $(AZ_STAMP)

venv: $(STAMP) $(AZ_STAMP)

# umask 077: the directory and the key are the owner's only from their first byte (docs/security.md).
$(SECRET_FILE):
	umask 077 && mkdir -p $(VAR_DIR) && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $(SECRET_FILE)

## make prepare: what `make run` does before serving: migrate, bootstrap, collect static files.
prepare: $(STAMP) $(SECRET_FILE)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py bootstrap
	$(PY) manage.py collectstatic --no-input --verbosity 0

## make run: install, migrate, bootstrap, then web (http :8000, https :8443) + Celery worker + beat. Ctrl+C stops all.
run: prepare
	$(PY) manage.py serve

## make test: lint, then the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: $(STAMP) $(AZ_STAMP) lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(STAMP) $(SECRET_FILE)
	$(PY) manage.py migrate --no-input

## make demo: a portal of its own under var/demo (never your data) with short thresholds (heartbeat 10 s, Offline
## after 30 s, sweep every 5 s) and 50 simulated agents, 20% of which stop after onboarding: Connected and Offline
## machines on http://127.0.0.1:8000 within a minute. Starts afresh each time; Ctrl+C (or one hour) stops all.
DEMO_DIR := $(CURDIR)/var/demo
DEMO_ENV := ARC_VAR_DIR=$(DEMO_DIR) ARC_HEARTBEAT_INTERVAL_SECONDS=10 ARC_OFFLINE_AFTER_SECONDS=30 \
	ARC_STATUS_SWEEP_SECONDS=5 ARC_PUBLIC_BASE_URL=https://127.0.0.1:8443
demo: $(STAMP)
	@$(PY) -c "import socket; [socket.create_server(('127.0.0.1', p)).close() for p in (8000, 8443)]" \
		|| { echo "make demo: port 8000 or 8443 is in use (is 'make run' running?)"; exit 1; }
	@$(MAKE) --no-print-directory demo-prepare
	export $(DEMO_ENV); \
	$(PY) manage.py serve & serve=$$!; \
	trap 'kill -TERM $$serve 2>/dev/null; wait $$serve' EXIT; \
	for i in $$(seq 60); do $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 8443), 1)" 2>/dev/null \
		&& break; sleep 0.5; done; \
	$(PY) manage.py simulate_fleet --machines 50 --offline-fraction 0.2 --duration 3600 --interval 10 \
		--portal-url https://127.0.0.1:8443 --ca-file $(DEMO_DIR)/pki/ca.pem --resource-group arc-demo

## make demo-prepare: the demo's fresh var/demo (secret key, database, bootstrap, static files), owner-only.
demo-prepare: $(STAMP)
	rm -rf $(DEMO_DIR)
	umask 077 && mkdir -p $(DEMO_DIR) && $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $(DEMO_DIR)/secret_key
	export $(DEMO_ENV); \
	$(PY) manage.py migrate --no-input --verbosity 0 && \
	$(PY) manage.py bootstrap && \
	$(PY) manage.py collectstatic --no-input --verbosity 0

bench: $(STAMP)
	$(PY) bench/list_page.py

clean:
	rm -rf $(VENV) $(AZ_VENV) var/staticfiles var/broker var/celery-results
