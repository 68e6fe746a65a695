"""Test overlay: imports settings, then makes tests fast and hermetic."""

import os

if not os.environ.get("DJANGO_SECRET_KEY"):
    os.environ["DJANGO_SECRET_KEY"] = "test-secret-key-not-for-production"  # noqa: S105

from arcportal.settings import *  # noqa: F403
from arcportal.settings import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
ARC_PKI_DIR = VAR_DIR / "test-pki"
# WhiteNoise only warns about a missing STATIC_ROOT; tests serve static files through the finders.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
# Webhook receivers in tests live under the reserved .test domain (RFC 2606): allowed without DNS (machines/egress.py).
ARC_WEBHOOK_ALLOWED_HOSTS = [".test"]
