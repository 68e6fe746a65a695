"""``GET /metadata/endpoints``: the portal as an Azure cloud for ``az cloud register`` — public, one cloud object
from api-version 2022-09-01 on (a list before), every URL the host the client used, ARM errors for bad input."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


def test_one_cloud_object_with_this_portal_as_resource_manager_and_authority(client, settings):
    settings.ALLOWED_HOSTS = ["arc.example.com"]
    response = client.get("/metadata/endpoints?api-version=2022-09-01", secure=True, HTTP_HOST="arc.example.com")
    assert response.status_code == 200  # no sign-in: the CLI reads it before any login
    cloud = json.loads(response.content)
    assert cloud["name"] == "ArcPortal"
    assert cloud["resourceManager"] == "https://arc.example.com/"
    assert cloud["authentication"]["loginEndpoint"] == "https://arc.example.com"
    assert cloud["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert cloud["suffixes"] == {}


def test_the_path_the_cli_builds_from_a_url_ending_in_a_slash(client):
    """``--endpoint-resource-manager https://host/`` + ``/metadata/endpoints`` = ``https://host//metadata/…``."""
    query = {"api-version": "2022-09-01"}
    response = client.get("/metadata/endpoints", query, secure=True, PATH_INFO="//metadata/endpoints")
    assert response.status_code == 200 and json.loads(response.content)["name"] == "ArcPortal"


def test_older_api_versions_list_the_clouds(client):
    response = client.get("/metadata/endpoints?api-version=2019-05-01", secure=True)
    assert [cloud["name"] for cloud in json.loads(response.content)] == ["ArcPortal"]


@pytest.mark.parametrize(
    ("query", "code"),
    [("", "MissingApiVersionParameter"), ("?api-version=yesterday", "InvalidApiVersionParameter")],
)
def test_bad_api_version_is_an_arm_400(client, query, code):
    response = client.get(f"/metadata/endpoints{query}", secure=True)
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == code


def test_other_methods_and_hostile_input_are_arm_errors(client):
    response = client.post("/metadata/endpoints?api-version=2022-09-01", secure=True)
    assert response.status_code == 405
    assert json.loads(response.content)["error"]["code"] == "MethodNotAllowed"
    response = client.get("/metadata/endpoints?api-version=2022-09-01%00", secure=True)
    assert response.status_code == 400
    assert "error" in json.loads(response.content)
