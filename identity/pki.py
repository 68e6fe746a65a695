"""The portal's PKI: its CA, the TLS server certificate, the token-signing key, and machine certificates.

Created at bootstrap with ``cryptography`` under ``ARC_PKI_DIR`` (private keys mode 0600, written atomically under a
file lock so concurrent processes never see half a key pair). Scripts pin the CA by its SHA-256 fingerprint.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings

from arcportal.files import private_dir

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
SIGNING_KEY_FILE = "token-signing-key.pem"
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)
MACHINE_CERT_VALIDITY = dt.timedelta(days=90)


def pki_dir() -> Path:
    return private_dir(Path(settings.ARC_PKI_DIR))


@contextmanager
def _locked(directory: Path):
    with os.fdopen(os.open(directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def server_hosts() -> list[str]:
    """Names the server certificate must cover: loopback, ARC_PUBLIC_HOSTS and the public base URL's host."""
    hosts = ["localhost", "127.0.0.1", "::1", *settings.ARC_PUBLIC_HOSTS]
    public = urlsplit(settings.ARC_PUBLIC_BASE_URL).hostname
    if public:
        hosts.append(public)
    seen: list[str] = []
    for host in hosts:
        if host and host not in seen:
            seen.append(host)
    return seen


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _create_ca(directory: Path) -> None:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ArcPortal Root CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY_FILE, _key_pem(key), private=True)
    _write(directory / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), private=False)


def _load_ca(directory: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The CA certificate and key, parsed once per file version (validating an RSA key costs ~60 ms)."""
    cert_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
    return _cached_ca_pair(str(directory), cert_path.stat().st_mtime_ns, key_path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _cached_ca_pair(directory: str, cert_mtime: int, key_mtime: int) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate((Path(directory) / CA_FILE).read_bytes())
    key = serialization.load_pem_private_key((Path(directory) / CA_KEY_FILE).read_bytes(), password=None)
    return cert, key  # type: ignore[return-value]


def _server_cert_covers(directory: Path, hosts: list[str]) -> bool:
    path = directory / SERVER_FILE
    if not path.exists() or not (directory / SERVER_KEY_FILE).exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ca_cert, _ = _load_ca(directory)
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc < _now() + dt.timedelta(days=30):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    needed = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts}
    return needed <= present


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _create_server_cert(directory: Path, hosts: list[str]) -> None:
    ca_cert, ca_key = _load_ca(directory)
    key = _new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / SERVER_KEY_FILE, _key_pem(key), private=True)
    _write(directory / SERVER_FILE, cert.public_bytes(serialization.Encoding.PEM), private=False)


def ensure_pki() -> list[str]:
    """Create whatever is missing (CA, server certificate for ``server_hosts()``, token-signing key).

    Idempotent; reissues the server certificate when the host list grew or it nears expiry. Returns lines to print.
    """
    directory = pki_dir()
    lines: list[str] = []
    with _locked(directory):
        if not (directory / CA_FILE).exists() or not (directory / CA_KEY_FILE).exists():
            _create_ca(directory)
            lines.append(f"Created the portal CA: {directory / CA_FILE}")
        hosts = server_hosts()
        if not _server_cert_covers(directory, hosts):
            _create_server_cert(directory, hosts)
            lines.append(f"Issued the TLS server certificate for {', '.join(hosts)}")
        if not (directory / SIGNING_KEY_FILE).exists():
            _write(directory / SIGNING_KEY_FILE, _key_pem(_new_key()), private=True)
            lines.append("Created the token-signing key")
    _cached_ca.cache_clear()
    _cached_ca_pair.cache_clear()
    _cached_signing_key.cache_clear()
    lines.append(f"CA SHA-256 fingerprint: {format_fingerprint(ca_fingerprint_sha256())}")
    return lines


@lru_cache(maxsize=4)
def _cached_ca(directory: str, mtime: float) -> tuple[bytes, x509.Certificate]:
    pem = (Path(directory) / CA_FILE).read_bytes()
    return pem, x509.load_pem_x509_certificate(pem)


def _ca() -> tuple[bytes, x509.Certificate]:
    directory = pki_dir()
    path = directory / CA_FILE
    if not path.exists():
        ensure_pki()
    return _cached_ca(str(directory), path.stat().st_mtime)


def ca_certificate_pem() -> bytes:
    return _ca()[0]


def ca_certificate() -> x509.Certificate:
    return _ca()[1]


def ca_fingerprint_sha256() -> str:
    """SHA-256 of the CA certificate's DER bytes, lowercase hex without separators (what ``sha256sum`` and
    ``Get-FileHash`` of the DER print; scripts compare against this)."""
    return hashlib.sha256(ca_certificate().public_bytes(serialization.Encoding.DER)).hexdigest()


def format_fingerprint(hex_digest: str) -> str:
    """``AB:CD:…`` as browsers and ``openssl x509 -fingerprint`` show it."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


@lru_cache(maxsize=4)
def _cached_signing_key(directory: str, mtime: float) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key((Path(directory) / SIGNING_KEY_FILE).read_bytes(), password=None)  # type: ignore[return-value]


def token_signing_key() -> rsa.RSAPrivateKey:
    directory = pki_dir()
    path = directory / SIGNING_KEY_FILE
    if not path.exists():
        ensure_pki()
    return _cached_signing_key(str(directory), path.stat().st_mtime)


@dataclass(frozen=True)
class IssuedCertificate:
    pem: bytes
    thumbprint_sha1: str  # uppercase hex, as Windows and Arc show thumbprints
    not_after: dt.datetime


def certificate_thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a thumbprint is an identifier, not a MAC


def issue_machine_certificate(
    *, public_key: rsa.RSAPublicKey, vm_id: str, validity: dt.timedelta = MACHINE_CERT_VALIDITY
) -> IssuedCertificate:
    """An identity certificate for a machine's key, issued by the portal CA (client auth, CN = vmId)."""
    directory = pki_dir()
    if not (directory / CA_KEY_FILE).exists():
        ensure_pki()
    ca_cert, ca_key = _load_ca(directory)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, vm_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCertificate(
        pem=cert.public_bytes(serialization.Encoding.PEM),
        thumbprint_sha1=certificate_thumbprint(cert),
        not_after=cert.not_valid_after_utc,
    )
