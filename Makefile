# ArcPortal. Needs only Python 3.11+ and make: everything else goes into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SECRET_FILE := var/secret_key
export DJANGO_SECRET_KEY ?= $(shell test -f $(SECRET_FILE) && cat $(SECRET_FILE))

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

bench: $(STAMP)
	$(PY) bench/list_page.py

clean:
	rm -rf $(VENV) var/staticfiles var/broker var/celery-results
