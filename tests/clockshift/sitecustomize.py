"""The moved clock of a ``pytest --clock-shift-days=N`` run, for the test process and every Python process it starts.

The test process calls :func:`shift_clock`; it also puts this directory on ``PYTHONPATH`` and the shift in
``TESTS_CLOCK_SHIFT_SECONDS``, so each Python subprocess (agent, installer, gunicorn, Celery, ``manage.py``) imports
this file as ``sitecustomize`` at start-up and moves its own clock by the same amount: every Python process of the
run agrees on "now", as they would on a machine whose clock was moved forward.

What cannot be moved: the C library's clock (libfaketime 0.9.10 breaks Python's ``time.sleep`` and
``threading.Event.wait`` here), which OpenSSL reads to check certificate validity, and the clock of programs that are
not Python (curl, Chromium, PostgreSQL's ``now()``, which the portal never uses). So in a shifted run TLS clients of
Python processes skip OpenSSL's validity-period check (``X509_V_FLAG_NO_CHECK_TIME``; chain, names and everything
else are still checked), and the test PKI is made before the clock moves (tests/conftest.py), so curl accepts it.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import sys
import time

ENV = "TESTS_CLOCK_SHIFT_SECONDS"
X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL's x509_vfy.h


def shift_clock(seconds: float):
    """Move this process's clock ``seconds`` ahead (it keeps ticking); returns the started time-machine traveller."""
    import time_machine

    traveller = time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds), tick=True)
    traveller.start()
    # time-machine starts ticking at the first reading, not at start(): read now, so that every process's clock is
    # the real clock plus exactly the shift (a process that first reads it seconds later would lag by those seconds).
    time.time()
    _no_certificate_time_check()
    return traveller


def _no_certificate_time_check() -> None:
    if getattr(ssl.SSLContext, "_clock_shifted", False):
        return
    original = ssl.SSLContext.__new__

    def __new__(cls, protocol=None, *args, **kwargs):
        context = original(cls, protocol, *args, **kwargs)
        context.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
        return context

    ssl.SSLContext.__new__ = staticmethod(__new__)
    ssl.SSLContext._clock_shifted = True


if __name__ == "sitecustomize" and os.environ.get(ENV):
    try:
        shift_clock(float(os.environ[ENV]))
    except ImportError as exc:  # a Python without time-machine: its clock is not moved, say so
        print(f"tests/clockshift: {sys.executable} cannot move its clock ({exc})", file=sys.stderr)
