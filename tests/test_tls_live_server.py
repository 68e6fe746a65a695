"""The TLS live server that ARM and agent tests use presents a certificate issued by the portal CA."""

import httpx
import pytest


def test_tls_live_server_is_trusted_through_the_portal_ca(tls_live_server):
    response = httpx.get(f"{tls_live_server.url}/healthz", verify=tls_live_server.ca_file)
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_tls_live_server_is_not_trusted_without_the_ca(tls_live_server):
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_live_server.url}/healthz")
