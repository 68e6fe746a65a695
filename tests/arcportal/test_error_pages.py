"""Django's own error paths answer in the plane's language: ARM JSON under /subscriptions, HTML elsewhere."""

import pytest

pytestmark = pytest.mark.django_db


def test_disallowed_host_under_the_arm_plane_is_an_arm_json_400(client):
    response = client.get("/subscriptions?api-version=2022-12-01", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "BadRequest"


def test_disallowed_host_on_a_portal_page_is_html(client):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert b"Bad request" in response.content


def test_unknown_arm_route_is_an_arm_json_404(client):
    response = client.get("/subscriptions/x/nothing/here?api-version=2022-12-01")
    assert response.status_code == 404
    assert "error" in response.json()


def test_healthz_is_public_and_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
