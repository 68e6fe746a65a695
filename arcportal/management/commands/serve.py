"""Run the whole product in the foreground: web (http and, once the PKI exists, https), a Celery worker and
Celery beat. Ctrl+C (or SIGTERM) stops them all. Used by ``make run``."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


def server_tls_files() -> tuple[str, str] | None:
    cert = settings.ARC_PKI_DIR / "server.pem"
    key = settings.ARC_PKI_DIR / "server-key.pem"
    if cert.exists() and key.exists():
        return str(cert), str(key)
    return None


class Command(BaseCommand):
    help = "Start web (http + https), Celery worker and Celery beat together; stop all on Ctrl+C."

    def add_arguments(self, parser):
        parser.add_argument("--http", default=os.environ.get("ARC_HTTP_BIND", "127.0.0.1:8000"))
        parser.add_argument("--https", default=os.environ.get("ARC_HTTPS_BIND", "127.0.0.1:8443"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("ARC_WEB_WORKERS", "2")))

    def handle(self, *args, **options):
        python = sys.executable
        gunicorn = [python, "-m", "gunicorn", "arcportal.wsgi:application", "--workers", str(options["web_workers"])]
        gunicorn += ["--config", "python:arcportal.gunicorn_conf", "--access-logfile", "-", "--timeout", "60"]
        commands = {"web-http": [*gunicorn, "--bind", options["http"]]}
        tls = server_tls_files()
        if tls and options["https"]:
            commands["web-https"] = [*gunicorn, "--bind", options["https"], "--certfile", tls[0], "--keyfile", tls[1]]
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

        processes: dict[str, subprocess.Popen] = {}
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, env=os.environ.copy())
            self.stdout.write(f"started {name} (pid {processes[name].pid})")
        self.stdout.write(
            self.style.SUCCESS(
                f"Portal: http://{options['http']}/"
                + (f"  ARM/identity/agents: https://{options['https']}/" if tls else "")
            )
        )

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping everything")
                        exit_code = 1
                        stopping = True
                        break
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
