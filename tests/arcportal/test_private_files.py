"""An installation's var directory is its owner's only: created so under any umask, and an older installation's
readable var/, database and secret key are tightened when the portal starts (arcportal/files.py, the settings)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from arcportal.files import private_dir, private_file

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_dir_and_file_ignore_the_umask_and_tighten_what_exists(tmp_path):
    old = os.umask(0)
    try:
        created = private_dir(tmp_path / "a" / "var")
        secret = private_file(created / "secret", create=True)
    finally:
        os.umask(old)
    assert mode(created) == 0o700 and mode(secret) == 0o600
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    (loose / "db").write_text("x")
    (loose / "db").chmod(0o664)
    private_dir(loose)
    private_file(loose / "db")
    assert mode(loose) == 0o700 and mode(loose / "db") == 0o600
    private_file(tmp_path / "missing")  # nothing to tighten, nothing created
    assert not (tmp_path / "missing").exists()


def test_an_older_installation_is_tightened_and_its_key_file_used_without_django_secret_key(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    (var / "secret_key").write_text("k" * 50 + "\n")
    (var / "secret_key").chmod(0o644)
    (var / "arcportal.sqlite3").touch(mode=0o644)
    (var / "arcportal.sqlite3").chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ARC_")) and k != "DATABASE_URL"}
    env.update(ARC_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="arcportal.settings")
    probe = "from django.conf import settings; print(settings.SECRET_KEY)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=0o022,
    )
    assert result.returncode == 0, result.stderr
    assert "k" * 50 in result.stdout.splitlines()
    assert mode(var) == 0o700 and mode(var / "secret_key") == 0o600 and mode(var / "arcportal.sqlite3") == 0o600
    for name in ("pki", "broker", "cache", "celery-results"):
        if (var / name).exists():
            assert mode(var / name) == 0o700, name

    (var / "secret_key").unlink()
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is required" in result.stderr
    assert str(var / "secret_key") in result.stderr  # the message says where make run keeps the key
