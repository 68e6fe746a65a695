"""HIMDS in the agent service: IMDS metadata, Arc's token challenge, the machine identity's tokens from the portal,
and azure-identity's ManagedIdentityCredential using it for real."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from azcmagent.himds import Challenges, HimdsHandler, HimdsServer, is_loopback, valid_resource

ARM = "https://management.azure.com"
TOKEN_PATH = "/metadata/identity/oauth2/token"


def _token_request(host, resource=ARM, *, authorization=None, api_version="2020-06-01", **extra):
    headers = {"Metadata": "true"}
    if authorization is not None:
        headers["Authorization"] = authorization
    params = {"api-version": api_version, "resource": resource, **extra}
    return host.himds(TOKEN_PATH, params=params, headers=headers)


def _challenge(host, resource=ARM) -> Path:
    response = _token_request(host, resource)
    assert response.status_code == 401, response.text
    scheme, _, path = response.headers["WWW-Authenticate"].partition(" realm=")
    assert scheme == "Basic"
    return Path(path)


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- metadata --------------------------------------------------------------------------------------------------


def test_metadata_needs_the_header_and_answers_while_the_portal_is_down(make_host, fake_portal):
    host = make_host(tags={"scenario": "Managed Identity", "env": "test"})
    host.start()
    compute = host.himds(
        "/metadata/instance/compute", params={"api-version": "2020-06-01"}, headers={"Metadata": "true"}
    )
    assert compute.status_code == 200, compute.text
    data = compute.json()
    config = host.agentconfig
    assert data["name"] == "web-01" and data["resourceGroupName"] == "rg-arc" and data["location"] == "westeurope"
    assert data["subscriptionId"] == config["subscriptionId"] and data["vmId"] == host.vm_id
    assert data["resourceId"] == config["resourceId"] and data["osType"] == "linux"
    assert data["azEnvironment"] == "AzurePublicCloud" and data["sku"] and data["version"]
    assert data["tags"] == "scenario:Managed Identity;env:test"
    assert data["tagsList"] == [{"name": "scenario", "value": "Managed Identity"}, {"name": "env", "value": "test"}]
    instance = host.himds("/metadata/instance", params={"api-version": "2020-06-01"}, headers={"Metadata": "true"})
    assert instance.json()["compute"] == data and "network" in instance.json()

    no_header = host.himds("/metadata/instance/compute", params={"api-version": "2020-06-01"})
    assert no_header.status_code == 400 and "Metadata: true" in no_header.json()["error_description"]
    wrong_header = host.himds("/metadata/instance", params={"api-version": "2020-06-01"}, headers={"Metadata": "yes"})
    assert wrong_header.status_code == 400
    assert host.himds("/metadata/instance", headers={"Metadata": "true"}).status_code == 400  # no api-version
    assert host.himds("/metadata/nothing", headers={"Metadata": "true"}).status_code == 404
    relayed = host.himds(
        "/metadata/instance",
        params={"api-version": "2020-06-01"},
        headers={"Metadata": "true", "X-Forwarded-For": "1.2.3.4"},
    )
    assert relayed.status_code == 400

    fake_portal.stop()  # the portal is unreachable: metadata still answers
    offline = host.himds(
        "/metadata/instance/compute", params={"api-version": "2020-06-01"}, headers={"Metadata": "true"}
    )
    assert offline.status_code == 200 and offline.json() == data


# --- the token challenge ---------------------------------------------------------------------------------------


def test_the_token_challenge_gives_a_token_for_exactly_the_resource_asked(make_host, fake_portal):
    host = make_host()
    host.start()
    key_file = _challenge(host)
    assert key_file.parent == host.tokens_dir and key_file.suffix == ".key" and key_file.exists()
    mode = stat.S_IMODE(key_file.stat().st_mode)
    assert mode == 0o640 and key_file.stat().st_size <= 4096 and key_file.stat().st_uid == os.getuid()
    secret = key_file.read_text()

    answer = _token_request(host, authorization=f"Basic {secret}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= {"access_token", "expires_in", "expires_on", "resource", "token_type"}
    assert body["resource"] == ARM and body["token_type"] == "Bearer" and 3000 < int(body["expires_in"]) <= 3600
    claims = _claims(body["access_token"])
    assert claims["aud"] == ARM and claims["oid"] == host.principal_id and claims["xms_mirid"].endswith("/web-01")
    assert not key_file.exists(), "a used secret file must be removed"
    (request,) = fake_portal.token_requests
    assert request["client_id"] == host.principal_id and request["scope"] == f"{ARM}/.default"

    reused = _token_request(host, authorization=f"Basic {secret}")
    assert reused.status_code == 401 and "access_token" not in reused.text
    assert _token_request(host, authorization="Basic not-the-secret").status_code == 401
    _challenge(host)  # an open challenge does not make a wrong secret right
    assert _token_request(host, authorization="Bearer " + secret).status_code == 401

    vault = "https://vault.azure.net"
    other = _token_request(host, vault, authorization=f"Basic {_challenge(host, vault).read_text()}")
    assert other.status_code == 200 and _claims(other.json()["access_token"])["aud"] == vault
    assert other.json()["resource"] == vault
    again = _token_request(host, authorization=f"Basic {_challenge(host).read_text()}")
    assert _claims(again.json()["access_token"])["aud"] == ARM
    assert len(fake_portal.token_requests) == 2, "the ARM token comes from the cache the second time"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"resource": ""}, 400),
        ({"resource": "not a uri"}, 400),
        ({"api-version": "2017-09-01"}, 400),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, 400),
        ({"msi_res_id": "/subscriptions/x"}, 400),
    ],
)
def test_bad_token_requests_are_refused_before_any_challenge(make_host, params, status):
    host = make_host()
    host.start()
    query = {"api-version": "2020-06-01", "resource": ARM, **params}
    response = host.himds(TOKEN_PATH, params=query, headers={"Metadata": "true"})
    assert response.status_code == status and "WWW-Authenticate" not in response.headers
    assert not host.tokens_dir.exists() or not list(host.tokens_dir.iterdir())
    assert host.himds(TOKEN_PATH, params={"api-version": "2020-06-01", "resource": ARM}).status_code == 400


def test_a_refused_identity_gets_no_token(make_host, fake_portal):
    """The portal refuses the machine's client assertion (deleted, Expired, revoked): HIMDS passes the refusal on.
    (A deleted or Expired machine also stops the agent service at its next heartbeat: 410/403.)"""
    host = make_host()
    host.start()
    fake_portal.machines[host.vm_id].identity_refused = True
    answer = _token_request(host, authorization=f"Basic {_challenge(host).read_text()}")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    assert "access_token" not in answer.json()


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6; state 0A = LISTEN)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_himds_listens_on_loopback_only(make_host):
    host = make_host()
    host.start()
    assert _listeners(host.himds_port) == {"0100007F"}  # 127.0.0.1, nothing else


# --- units -----------------------------------------------------------------------------------------------------


class _Identity:
    def __init__(self):
        self.asked = []

    def token(self, resource):
        self.asked.append(resource)
        return {"access_token": "t", "expires_on": 2**40, "not_before": 0, "resource": resource, "token_type": "Bearer"}


def test_loopback_and_resources():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1") and not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback("192.0.2.7") and not is_loopback("localhost") and not is_loopback("")
    assert (
        valid_resource(ARM)
        and valid_resource("api://my-app")
        and valid_resource("0f8fad5b-d9cb-469f-a165-70867728950e")
    )
    for bad in ("", "management", "ftp://x", "https://", "https://a b", "https://x\x00", "https://x/" + "a" * 1000):
        assert not valid_resource(bad)


def test_a_request_from_outside_loopback_is_refused(tmp_path):
    server = HimdsServer(port=0, tokens_dir=tmp_path / "tokens", identity=_Identity(), metadata=lambda: {"vmId": "v"})
    try:
        assert server.server_address[0] == "127.0.0.1"
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.sendall(b"GET /metadata/instance?api-version=2020-06-01 HTTP/1.1\r\nMetadata: true\r\n\r\n")
            HimdsHandler(ours, ("192.0.2.7", 50000), server)  # handles the one request from a LAN address
            ours.shutdown(socket.SHUT_WR)
            answer = theirs.recv(65536).decode()
        assert answer.startswith("HTTP/1.0 403") and "loopback only" in answer and '"vmId"' not in answer
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.sendall(b"GET /metadata/instance?api-version=2020-06-01 HTTP/1.1\r\nMetadata: true\r\n\r\n")
            HimdsHandler(ours, ("127.0.0.1", 50000), server)
            ours.shutdown(socket.SHUT_WR)
            assert theirs.recv(65536).decode().startswith("HTTP/1.0 200")
    finally:
        server.server_close()


def test_challenge_files_are_one_time_private_and_expire(tmp_path):
    now = [1000.0]
    challenges = Challenges(tmp_path / "tokens", lifetime=60, clock=lambda: now[0])
    first = challenges.issue()
    assert stat.S_IMODE(first.stat().st_mode) == 0o640 and len(first.read_bytes()) == 64
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o750
    secret = first.read_text()
    assert challenges.redeem(secret) and not first.exists()
    assert not challenges.redeem(secret)
    late = challenges.issue()
    now[0] += 61
    assert not challenges.redeem(late.read_text()) and not late.exists()
    kept = challenges.issue()
    challenges.close()
    assert not kept.exists()


def test_challenge_files_left_by_a_killed_run_are_removed_at_start(tmp_path):
    directory = tmp_path / "tokens"
    directory.mkdir()
    old, fresh, other = directory / "old.key", directory / "fresh.key", directory / "notes.txt"
    for path in (old, fresh, other):
        path.write_text("x")
    # Every mtime is set from the clock the agent reads, so the test holds whatever date the clock shows.
    now = time.time()
    os.utime(fresh, (now, now))
    os.utime(old, (now - 3600, now - 3600))
    os.utime(other, (now - 3600, now - 3600))
    Challenges(directory)
    assert not old.exists() and fresh.exists() and other.exists()


# --- azure-identity against the agent --------------------------------------------------------------------------

REAL_TOKENS_DIR = Path("/var/opt/azcmagent/tokens")
SNIPPET = """
import json
from azure.identity import ManagedIdentityCredential
token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
print(json.dumps({"token": token.token, "expires_on": token.expires_on}))
"""


@pytest.fixture
def real_tokens_dir():
    """azure-identity and MSAL read the challenge file only from /var/opt/azcmagent/tokens (Linux), whatever the
    realm says: this test runs the agent with that directory (CI runs as root) and leaves the machine as it was."""
    created = [p for p in (REAL_TOKENS_DIR.parent, REAL_TOKENS_DIR) if not p.exists()]
    before = set(REAL_TOKENS_DIR.iterdir()) if REAL_TOKENS_DIR.exists() else set()
    yield REAL_TOKENS_DIR
    leftovers = (set(REAL_TOKENS_DIR.iterdir()) if REAL_TOKENS_DIR.exists() else set()) - before
    for path in leftovers:
        path.unlink(missing_ok=True)
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()
    assert not leftovers, f"the agent left challenge files behind: {leftovers}"


def test_managed_identity_credential_gets_a_token_through_the_agent(make_host, fake_portal, real_tokens_dir):
    host = make_host(tokens_dir=real_tokens_dir)
    host.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZCMAGENT_", "AZURE_", "MSI_", "IDENTITY_"))}
    env.update(
        IDENTITY_ENDPOINT=f"http://localhost:{host.himds_port}/metadata/identity/oauth2/token",
        IMDS_ENDPOINT=f"http://localhost:{host.himds_port}",
        NO_PROXY="localhost,127.0.0.1",
    )
    result = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + host.log()
    token = json.loads(result.stdout)["token"]
    claims = jwt.decode(
        token, fake_portal.token_key.public_key(), algorithms=["RS256"], audience="https://management.azure.com"
    )
    assert claims["oid"] == host.principal_id and claims["idtyp"] == "app"
    assert [r["scope"] for r in fake_portal.token_requests] == ["https://management.azure.com/.default"]


def test_an_unwritable_tokens_directory_is_a_clear_500(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    server = HimdsServer(port=0, tokens_dir=blocker / "tokens", identity=_Identity(), metadata=dict).start()
    try:
        response = httpx.get(
            f"http://127.0.0.1:{server.server_address[1]}{TOKEN_PATH}",
            params={"api-version": "2020-06-01", "resource": ARM},
            headers={"Metadata": "true"},
        )
        assert response.status_code == 500 and "cannot write its challenge file" in response.json()["error_description"]
    finally:
        server.stop()
