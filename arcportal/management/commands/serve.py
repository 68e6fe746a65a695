"""Run the whole product in the foreground: web (http and, once the PKI exists, https), a Celery worker and
Celery beat. Ctrl+C (or SIGTERM) stops them all. Used by ``make run``.

Both web ports are served by granian (``arcportal/serving.py``; why: docs/decisions.md, "Serving tier"): TLS and
connections are handled in Rust, and each request is read whole before a Python thread sees it
(``arcportal/asgi_buffered.py``), so slow clients hold no thread and the portal needs nothing in front of it.
``--web-threads`` (``ARC_WEB_THREADS``) threads per worker run the requests. granian builds its TLS configuration
once per worker; when the server certificate or key file changes (``manage.py bootstrap`` renewed it), this
command sends the https server SIGHUP, which starts fresh workers with the new certificate and retires the old ones
after their requests.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from arcportal.serving import granian_command


def server_tls_files() -> tuple[str, str] | None:
    cert = settings.ARC_PKI_DIR / "server.pem"
    key = settings.ARC_PKI_DIR / "server-key.pem"
    if cert.exists() and key.exists():
        return str(cert), str(key)
    return None


def tls_stamp(files: tuple[str, str]) -> tuple[float, ...]:
    """The TLS files' modification times (-1 for one that is missing, e.g. while it is being replaced)."""
    stamps = []
    for path in files:
        try:
            stamps.append(os.stat(path).st_mtime)
        except OSError:
            stamps.append(-1.0)
    return tuple(stamps)


class Command(BaseCommand):
    help = "Start web (http + https), Celery worker and Celery beat together; stop all on Ctrl+C."

    def add_arguments(self, parser):
        parser.add_argument("--http", default=os.environ.get("ARC_HTTP_BIND", "127.0.0.1:8000"))
        parser.add_argument("--https", default=os.environ.get("ARC_HTTPS_BIND", "127.0.0.1:8443"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("ARC_WEB_WORKERS", "2")))
        parser.add_argument("--web-threads", type=int, default=int(os.environ.get("ARC_WEB_THREADS", "4")))

    def handle(self, *args, **options):
        python = sys.executable
        web = {"workers": options["web_workers"], "python": python, "access_log": True}
        commands = {"web-http": granian_command(bind=options["http"], **web)}
        tls = server_tls_files()
        if tls and options["https"]:
            commands["web-https"] = granian_command(bind=options["https"], tls=tls, **web)
        celery = [python, "-m", "celery", "-A", "arcportal"]
        commands["worker"] = [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--without-mingle",
            "--without-gossip",
        ]
        commands["beat"] = [*celery, "beat", "--loglevel", "INFO"]

        env = {**os.environ, "ARC_WEB_THREADS": str(options["web_threads"])}
        processes: dict[str, subprocess.Popen] = {}
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, env=env)
            self.stdout.write(f"started {name} (pid {processes[name].pid})")
        self.stdout.write(
            self.style.SUCCESS(
                f"Portal: http://{options['http']}/"
                + (f"  ARM/identity/agents: https://{options['https']}/" if "web-https" in commands else "")
            )
        )

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        stamp = tls_stamp(tls) if tls else ()
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping everything")
                        exit_code = 1
                        stopping = True
                        break
                if "web-https" in processes and not stopping:
                    stamp = self.reload_on_new_certificate(processes["web-https"], tls, stamp)
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
            self.stdout.write("all processes stopped")
        sys.exit(exit_code)

    def reload_on_new_certificate(self, https: subprocess.Popen, tls: tuple[str, str], seen: tuple[float, ...]):
        """SIGHUP to the https server once both TLS files have new modification times that held for one poll and
        the certificate matches the key (``bootstrap`` writes the key, then the certificate: never reload between
        the two)."""
        now = tls_stamp(tls)
        if now == seen or -1.0 in now:
            self._pending = None
            return seen
        if getattr(self, "_pending", None) != now:
            self._pending = now  # look again at the next poll
            return seen
        self._pending = None
        if not certificate_matches_key(*tls):
            return seen
        https.send_signal(signal.SIGHUP)
        self.stdout.write("the server certificate changed: the https workers restart with it")
        return now


def certificate_matches_key(cert_file: str, key_file: str) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der)
