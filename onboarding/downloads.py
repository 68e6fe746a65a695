"""``/downloads/``: the portal CA certificate, the Linux and Windows installers, and the agent wheel built from
``agent/``. Public: nothing here is secret. Scripts fetch ``ca.pem``, check its SHA-256 fingerprint, then trust it.

The wheel is pure Python, so it is assembled here with ``zipfile`` (PEP 427 layout: the package files, METADATA,
WHEEL, entry_points.txt, RECORD with SHA-256 hashes) straight from ``agent/pyproject.toml`` and the sources: no
build tool, no network. It is cached under ``var/wheels/`` keyed by a hash of the sources, so an edited agent gets
a fresh wheel and an unchanged one is served from disk.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import os
import re
import tomllib
import zipfile
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_safe

from identity import pki

AGENT_DIR = Path(settings.BASE_DIR) / "agent"
# Fixed timestamp inside the zip so a given source tree always gives the same bytes.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def agent_project() -> dict:
    return tomllib.loads((AGENT_DIR / "pyproject.toml").read_text())["project"]


def agent_version() -> str:
    return agent_project()["version"]


def _sources() -> list[Path]:
    package = AGENT_DIR / "azcmagent"
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _source_digest() -> str:
    digest = hashlib.sha256((AGENT_DIR / "pyproject.toml").read_bytes())
    for path in _sources():
        digest.update(str(path.relative_to(AGENT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel_bytes() -> tuple[str, bytes]:
    """``(filename, bytes)`` of the agent wheel (``azcmagent-<version>-py3-none-any.whl``)."""
    project = agent_project()
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    version = project["version"]
    dist_info = f"{name}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3.11')}",
        *[f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])],
    ]
    entry_points = "[console_scripts]\n" + "".join(
        f"{script} = {target}\n" for script, target in project.get("scripts", {}).items()
    )
    files: list[tuple[str, bytes]] = [
        (str(path.relative_to(AGENT_DIR)).replace(os.sep, "/"), path.read_bytes()) for path in _sources()
    ]
    files += [
        (f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: arcportal\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{dist_info}/entry_points.txt", entry_points.encode()),
        (f"{dist_info}/top_level.txt", b"azcmagent\n"),
    ]
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files)
    record += f"{dist_info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in [*files, (f"{dist_info}/RECORD", record.encode())]:
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


def wheel_path() -> Path:
    """The cached wheel for the current sources, built (under a file lock) when missing."""
    return _wheel_path_for(_source_digest())


def _wheel_path_for(digest: str) -> Path:
    directory = Path(settings.VAR_DIR) / "wheels" / digest
    directory.mkdir(parents=True, exist_ok=True)
    filename = f"azcmagent-{agent_version()}-py3-none-any.whl"
    path = directory / filename
    if path.exists():
        return path
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            built_name, data = build_wheel_bytes()
            tmp = directory / (built_name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, directory / built_name)
    return path


# Where services find the machine's identity endpoint (HIMDS, the agent's ``himds.port`` default), as Azure sets them.
IMDS_ENDPOINT = "http://localhost:40342"
IDENTITY_ENDPOINT = f"{IMDS_ENDPOINT}/metadata/identity/oauth2/token"


def _installer_context(request: HttpRequest) -> dict:
    version = agent_version()
    return {
        "version": version,
        "wheel_name": f"azcmagent-{version}-py3-none-any.whl",
        "portal_url": settings.ARC_PUBLIC_BASE_URL.rstrip("/"),
        "identity_endpoint": IDENTITY_ENDPOINT,
        "imds_endpoint": IMDS_ENDPOINT,
    }


@require_safe
def install_linux(request: HttpRequest) -> HttpResponse:
    body = render_to_string("onboarding/installers/install_linux_azcmagent.sh", _installer_context(request))
    response = HttpResponse(body, content_type="text/x-shellscript; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="install_linux_azcmagent.sh"'
    return response


@require_safe
def install_windows(request: HttpRequest) -> HttpResponse:
    body = render_to_string("onboarding/installers/install_windows_azcmagent.ps1", _installer_context(request))
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="install_windows_azcmagent.ps1"'
    return response


@require_safe
def agent_wheel(request: HttpRequest, filename: str) -> FileResponse:
    path = wheel_path()
    if filename != path.name:
        raise Http404(f"No agent package {filename}; this portal serves {path.name}.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name, content_type="application/zip")


@require_GET
def ca_certificate_download(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(pki.ca_certificate_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'inline; filename="ca.pem"'
    response["X-CA-SHA256-Fingerprint"] = pki.ca_fingerprint_sha256()
    return response
