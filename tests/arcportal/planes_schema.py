"""A second OpenAPI 3 schema for the public planes drf-spectacular does not describe (the ARM schema at
``/api/schema/`` covers the ARM plane and the certificate endpoint): identity (OIDC discovery, JWKS, token, device
code), the agent plane's heartbeat and failure reports, downloads and health. Request shapes only — the
schemathesis run checks these operations for server errors, not their response bodies."""

from __future__ import annotations

ANY_RESPONSE = {"default": {"description": "Any answer but a server error."}}
TENANT = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}
FORM = "application/x-www-form-urlencoded"


def _form(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": True, "content": {FORM: {"schema": schema}}}


def _json(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


TEXT = {"type": "string"}
FACTS = {
    "type": "object",
    "properties": {
        **{
            key: {"oneOf": [TEXT, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}
            for key in ("agentVersion", "osName", "osType", "osVersion", "osSku", "computerName", "fqdn", "domainName")
        },
        "detectedProperties": {"type": "object", "additionalProperties": True},
    },
    "additionalProperties": True,
}
REPORT = {
    "type": "object",
    "properties": dict.fromkeys(
        (
            "subscriptionId",
            "resourceGroup",
            "tenantId",
            "location",
            "correlationId",
            "authType",
            "operation",
            "messageType",
            "message",
        ),
        TEXT,
    ),
    "additionalProperties": True,
}

PLANES_SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "ArcPortal identity, agent plane and downloads", "version": "1"},
    "paths": {
        "/{tenant}/v2.0/.well-known/openid-configuration": {
            "get": {"operationId": "OpenIdConfiguration", "parameters": [TENANT], "responses": ANY_RESPONSE}
        },
        "/{tenant}/discovery/v2.0/keys": {
            "get": {"operationId": "Jwks", "parameters": [TENANT], "responses": ANY_RESPONSE}
        },
        "/{tenant}/oauth2/v2.0/token": {
            "post": {
                "operationId": "Token",
                "parameters": [TENANT],
                "requestBody": _form(
                    {
                        "grant_type": {
                            "type": "string",
                            "enum": ["client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "x"],
                        },
                        "client_id": TEXT,
                        "client_secret": TEXT,
                        "client_assertion_type": {
                            "type": "string",
                            "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "x"],
                        },
                        "client_assertion": TEXT,
                        "scope": TEXT,
                        "device_code": TEXT,
                    }
                ),
                "responses": ANY_RESPONSE,
            }
        },
        "/{tenant}/oauth2/v2.0/devicecode": {
            "post": {
                "operationId": "DeviceCode",
                "parameters": [TENANT],
                "requestBody": _form(
                    {
                        "client_id": TEXT,
                        "scope": TEXT,
                        "machine_name": TEXT,
                        "resource_group": TEXT,
                        "subscription_id": TEXT,
                    }
                ),
                "responses": ANY_RESPONSE,
            }
        },
        "/his/machines/{vmId}/heartbeat": {
            "post": {
                "operationId": "Heartbeat",
                "parameters": [{"name": "vmId", "in": "path", "required": True, "schema": TEXT}],
                "requestBody": _json(FACTS),
                "responses": ANY_RESPONSE,
            }
        },
        "/his/log": {
            "put": {"operationId": "FailureReport", "requestBody": _json(REPORT), "responses": ANY_RESPONSE},
            "post": {"operationId": "FailureReportPost", "requestBody": _json(REPORT), "responses": ANY_RESPONSE},
        },
        "/downloads/ca.pem": {"get": {"operationId": "CaCertificate", "responses": ANY_RESPONSE}},
        "/downloads/install_linux_azcmagent.sh": {"get": {"operationId": "InstallLinux", "responses": ANY_RESPONSE}},
        "/downloads/install_windows_azcmagent.ps1": {
            "get": {"operationId": "InstallWindows", "responses": ANY_RESPONSE}
        },
        "/downloads/{filename}": {
            "get": {
                "operationId": "AgentWheel",
                "parameters": [{"name": "filename", "in": "path", "required": True, "schema": TEXT}],
                "responses": ANY_RESPONSE,
            }
        },
        "/healthz": {"get": {"operationId": "Health", "responses": ANY_RESPONSE}},
    },
}
