# ArcPortal. Needs only Python 3.11+ and make: everything else goes into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SECRET_FILE := var/secret_key

.PHONY: run test lint format venv migrate bootstrap bench demo clean

$(STAMP): requirements.txt requirements-dev.txt agent/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e ./agent
	touch $(STAMP)

venv: $(STAMP)

$(SECRET_FILE):
	mkdir -p var
	$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $(SECRET_FILE)
	chmod 600 $(SECRET_FILE)

## make run: install, migrate, bootstrap, then web (http :8000, https :8443) + Celery worker + beat. Ctrl+C stops all.
run: $(STAMP) $(SECRET_FILE)
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(PY) manage.py migrate --no-input
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(PY) manage.py bootstrap
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(PY) manage.py collectstatic --no-input --verbosity 0
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(PY) manage.py serve

## make test: lint, then the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: $(STAMP) lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(STAMP) $(SECRET_FILE)
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(PY) manage.py migrate --no-input

## make demo: a portal of its own under var/demo (never your data) with short thresholds (heartbeat 10 s, Offline
## after 30 s, sweep every 5 s) and 50 simulated agents, 20% of which stop after onboarding: Connected and Offline
## machines on http://127.0.0.1:8000 within a minute. Starts afresh each time; Ctrl+C (or one hour) stops all.
DEMO_DIR := $(CURDIR)/var/demo
DEMO_ENV := ARC_VAR_DIR=$(DEMO_DIR) ARC_HEARTBEAT_INTERVAL_SECONDS=10 ARC_OFFLINE_AFTER_SECONDS=30 \
	ARC_STATUS_SWEEP_SECONDS=5 ARC_PUBLIC_BASE_URL=https://127.0.0.1:8443
demo: $(STAMP)
	@$(PY) -c "import socket; [socket.create_server(('127.0.0.1', p)).close() for p in (8000, 8443)]" \
		|| { echo "make demo: port 8000 or 8443 is in use (is 'make run' running?)"; exit 1; }
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@$(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $(DEMO_DIR)/secret_key
	export DJANGO_SECRET_KEY=$$(cat $(DEMO_DIR)/secret_key) $(DEMO_ENV); \
	$(PY) manage.py migrate --no-input --verbosity 0 && \
	$(PY) manage.py bootstrap && \
	$(PY) manage.py collectstatic --no-input --verbosity 0 || exit 1; \
	$(PY) manage.py serve & serve=$$!; \
	trap 'kill -TERM $$serve 2>/dev/null; wait $$serve' EXIT; \
	for i in $$(seq 60); do $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 8443), 1)" 2>/dev/null \
		&& break; sleep 0.5; done; \
	$(PY) manage.py simulate_fleet --machines 50 --offline-fraction 0.2 --duration 3600 --interval 10 \
		--portal-url https://127.0.0.1:8443 --ca-file $(DEMO_DIR)/pki/ca.pem --resource-group arc-demo

bench: $(STAMP)
	$(PY) bench/list_page.py

clean:
	rm -rf $(VENV) var/staticfiles var/broker var/celery-results
