"""The production settings documented in docs/configuration.md pass `manage.py check --deploy` without a warning, and
behind the TLS proxy cookies are Secure, HSTS is sent and plain http is redirected."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^## Production\n.*?^```env\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def production_environment(var_dir: Path) -> dict[str, str]:
    """The documented block, its placeholders filled as a reader would, over an environment without our settings."""
    match = BLOCK.search((ROOT / "docs" / "configuration.md").read_text())
    assert match, "docs/configuration.md has no ## Production section with an ```env block"
    values = {}
    for line in match["body"].splitlines():
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    filled = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "ARC_FERNET_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": values["DATABASE_URL"].replace("<database password>", secrets.token_urlsafe(12)),
        "ARC_VAR_DIR": str(var_dir),  # the documented /var/lib/arcportal is not ours to create here
    }
    values.update(filled)
    assert not [v for v in values.values() if "<" in v], values
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "ARC_")) and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    return {**base, **values}


def test_check_deploy_reports_nothing_under_the_documented_production_settings(tmp_path):
    env = production_environment(tmp_path / "var")
    assert env["DJANGO_BEHIND_TLS_PROXY"] == "true" and env["DJANGO_DEBUG"] == "false"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


PROBE = """
from django.test import Client, override_settings
from django.test.utils import setup_test_environment
setup_test_environment()
# collectstatic has not run here: plain static storage, the response headers are what is looked at.
override_settings(STORAGES={
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}).enable()
client = Client()
https = client.get("/accounts/login/", HTTP_HOST="arc.example.com", HTTP_X_FORWARDED_PROTO="https")
cookie = https.cookies["csrftoken"]
print("status", https.status_code)
print("csrf-secure", bool(cookie["secure"]))
print("hsts", https.get("Strict-Transport-Security"))
plain = client.get("/accounts/login/", HTTP_HOST="arc.example.com", HTTP_X_FORWARDED_PROTO="http")
print("http", plain.status_code, plain.get("Location"))
health = client.get("/healthz", HTTP_HOST="arc.example.com")
print("healthz-redirected", health.status_code in (301, 302))
from django.conf import settings
print("session-secure", settings.SESSION_COOKIE_SECURE)
"""


def test_behind_the_tls_proxy_cookies_are_secure_hsts_is_sent_and_http_is_redirected(tmp_path):
    env = production_environment(tmp_path / "var")
    env.pop("DATABASE_URL")  # the probe needs no database server; the login page reads none
    env.pop("REDIS_URL")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["status"] == "200"
    assert lines["csrf-secure"] == "True" and lines["session-secure"] == "True"
    assert lines["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert lines["http"] == "301 https://arc.example.com/accounts/login/"
    assert lines["healthz-redirected"] == "False"


def deploy_environment(var_dir: Path) -> dict[str, str]:
    """``deploy/arcportal.env.example`` read as systemd's ``EnvironmentFile=`` reads it, placeholders filled."""
    values = {}
    for line in (ROOT / "deploy" / "arcportal.env.example").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator and name.isidentifier() and name == name.strip(), line
        assert "#" not in value, f"systemd would keep the comment as part of {name}'s value"
        values[name] = value
    values["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    values["ARC_FERNET_KEY"] = Fernet.generate_key().decode()
    values["DATABASE_URL"] = values["DATABASE_URL"].replace("<database password>", secrets.token_urlsafe(12))
    values["ARC_VAR_DIR"] = str(var_dir)  # the template's /var/lib/arcportal is systemd's StateDirectory
    assert not [v for v in values.values() if "<" in v], values
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "ARC_")) and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    return {**base, **values}


def test_check_deploy_reports_nothing_under_the_deploy_environment_template(tmp_path):
    env = deploy_environment(tmp_path / "var")
    assert env["DJANGO_BEHIND_TLS_PROXY"] == "true" and env["DJANGO_DEBUG"] == "false"
    assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


def test_behind_the_proxy_the_client_address_comes_from_x_forwarded_for(tmp_path):
    env = deploy_environment(tmp_path / "var")
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    probe = (
        "from django.conf import settings; from django.test import RequestFactory; "
        "from arcportal.proxy import ForwardedForMiddleware as M; "
        "r = RequestFactory().get('/', REMOTE_ADDR='127.0.0.1', HTTP_X_FORWARDED_FOR='6.6.6.6, 203.0.113.7'); "
        "M(lambda request: None)(r); print(settings.MIDDLEWARE[0], r.META['REMOTE_ADDR'])"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-2:] == ["arcportal.proxy.ForwardedForMiddleware", "203.0.113.7"]
