"""OpenAPI 3 at /api/schema/ and Swagger UI at /api/docs/: public, real shapes, assets served locally."""

from __future__ import annotations

import re

import pytest
import yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def openapi(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_describes_every_arm_operation_by_its_operation_id(openapi):
    operation_ids = {
        operation["operationId"]
        for path, item in openapi["paths"].items()
        if path.startswith("/subscriptions")
        for operation in item.values()
    }
    assert operation_ids >= {
        "Subscriptions_List",
        "Subscriptions_Get",
        "ResourceGroups_List",
        "ResourceGroups_Get",
        "ResourceGroups_CheckExistence",
        "ResourceGroups_CreateOrUpdate",
        "ResourceGroups_Update",
        "ResourceGroups_Delete",
        "Machines_ListBySubscription",
        "Machines_ListByResourceGroup",
        "Machines_Get",
        "Machines_CreateOrUpdate",
        "Machines_Update",
        "Machines_Delete",
        "MachineExtensions_List",
        "MachineExtensions_Get",
        "MachineExtensions_CreateOrUpdate",
        "MachineExtensions_Update",
        "MachineExtensions_Delete",
    }


def test_schema_has_real_shapes_api_version_and_bearer_security(openapi):
    machine_path = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.HybridCompute/machines/{machineName}"  # noqa: E501
    put = openapi["paths"][machine_path]["put"]
    names = {p["name"] for p in put["parameters"]}
    assert names >= {"subscriptionId", "resourceGroupName", "machineName", "api-version"}
    assert next(p for p in put["parameters"] if p["name"] == "api-version")["required"] is True
    assert set(put["responses"]) >= {"200", "400", "401", "403", "404"}
    machine = openapi["components"]["schemas"]["MachineOutput"]["properties"]
    assert {"id", "name", "type", "location", "tags", "identity", "properties", "systemData"} <= set(machine)
    properties = openapi["components"]["schemas"]["MachinePropertiesOutput"]["properties"]
    status_ref = properties["status"]["allOf"][0]["$ref"].rsplit("/", 1)[-1]
    assert openapi["components"]["schemas"][status_ref]["enum"] == [
        "Connected",
        "Disconnected",
        "Error",
        "AwaitingConnection",
        "Expired",
    ]
    assert properties["mssqlDiscovered"]["type"] == "string"
    extension_input = openapi["components"]["schemas"]["ExtensionPropertiesInputRequest"]["properties"]
    assert "protectedSettings" in extension_input
    assert "protectedSettings" not in openapi["components"]["schemas"]["ExtensionPropertiesOutput"]["properties"]
    error = openapi["components"]["schemas"]["ErrorResponse"]
    assert "error" in error["properties"]
    assert openapi["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_swagger_ui_is_public_and_loads_its_assets_locally(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert re.findall(r'(?:src|href)="(https?://[^"]+)"', html) == []
    assert "cdn" not in html.lower()
