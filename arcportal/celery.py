"""The Celery application (Celery's recommended Django layout).

Broker and result backend come from settings (``CELERY_*``): Redis when ``REDIS_URL`` is set, otherwise
kombu's filesystem transport under ``var/`` so that ``make run`` needs no server.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arcportal.settings")

app = Celery("arcportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
