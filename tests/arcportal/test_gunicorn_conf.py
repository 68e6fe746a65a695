"""The gunicorn hook of ``arcportal/gunicorn_conf.py``: one TLS context per worker until a TLS file changes.
(``tests/integration/test_celery_embedded.py`` serves HTTPS through it with ``manage.py serve``.)"""

from __future__ import annotations

import os
import shutil
import ssl

from gunicorn.config import Config

from arcportal import gunicorn_conf
from identity import pki


def _config(tmp_path) -> Config:
    pki.ensure_pki()
    directory = pki.pki_dir()
    config = Config()
    for name, setting in (("server.pem", "certfile"), ("server-key.pem", "keyfile")):
        shutil.copy(directory / name, tmp_path / name)
        config.set(setting, str(tmp_path / name))
    return config


def test_the_context_is_built_once_and_again_when_the_certificate_changes(tmp_path):
    conf = _config(tmp_path)
    made: list[ssl.SSLContext] = []

    def factory() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile=conf.certfile, keyfile=conf.keyfile)
        made.append(context)
        return context

    gunicorn_conf._cached.clear()
    first = gunicorn_conf.ssl_context(conf, factory)
    assert gunicorn_conf.ssl_context(conf, factory) is first  # the next connection
    assert made == [first]
    stat = os.stat(conf.certfile)
    os.utime(conf.certfile, (stat.st_atime, stat.st_mtime + 10))  # a renewed certificate
    renewed = gunicorn_conf.ssl_context(conf, factory)
    assert renewed is not first and made == [first, renewed]
    assert gunicorn_conf.ssl_context(conf, factory) is renewed
    gunicorn_conf._cached.clear()


def test_gunicorn_takes_the_hook_from_the_config_module_serve_passes(monkeypatch):
    from gunicorn.app.wsgiapp import WSGIApplication

    monkeypatch.setattr(
        "sys.argv", ["gunicorn", "--config", "python:arcportal.gunicorn_conf", "arcportal.wsgi:application"]
    )
    assert WSGIApplication().cfg.ssl_context is gunicorn_conf.ssl_context
