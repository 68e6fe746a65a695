"""The CLI's setup against the portal (``az cloud register`` from ``/metadata/endpoints``, ``az login
--service-principal``) and ``az account show/list``."""

from __future__ import annotations


def test_cloud_login_and_account(az, subscription):
    """One sign-in (each costs seconds of CLI start-up): the registered cloud, the login output, the account."""
    cloud = az.json("cloud", "show", "--name", "ArcPortal")
    assert cloud["isActive"] is True
    assert cloud["endpoints"]["resourceManager"] == f"{az.server.url}/"
    assert cloud["endpoints"]["activeDirectory"] == az.server.url
    assert cloud["endpoints"]["activeDirectoryResourceId"] == "https://management.core.windows.net/"
    assert cloud["endpoints"]["management"] == "https://management.core.windows.net/"

    [entry] = az.login_output
    assert entry["cloudName"] == "ArcPortal"
    assert entry["id"] == str(subscription.subscription_id)
    assert entry["tenantId"] == az.tenant_id
    assert entry["user"] == {"name": az.client_id, "type": "servicePrincipal"}
    assert entry["state"] == "Enabled" and entry["isDefault"] is True

    shown = az.json("account", "show")
    assert shown["id"] == str(subscription.subscription_id)
    assert shown["name"] == subscription.display_name
    assert shown["environmentName"] == "ArcPortal"
    assert shown["tenantId"] == shown["homeTenantId"] == az.tenant_id
    listed = az.json("account", "list")
    assert [(a["id"], a["isDefault"]) for a in listed] == [(str(subscription.subscription_id), True)]
    by_name = az.json("account", "show", "--subscription", subscription.display_name)
    assert by_name["id"] == str(subscription.subscription_id)

    token = az.json("account", "get-access-token")
    assert token["tokenType"] == "Bearer" and token["tenant"] == az.tenant_id
    assert token["subscription"] == az.subscription_id
    assert token["accessToken"].count(".") == 2


def test_login_with_a_wrong_secret_is_refused(az_cli, az_principal, subscription):
    az_cli.tenant_id = str(subscription.tenant.tenant_id)
    az_cli.client_id, _ = az_principal
    az_cli.secret = "not-the-secret"
    az_cli.run("config", "set", "core.instance_discovery=false")
    az_cli.run("cloud", "register", "--name", "ArcPortal", "--endpoint-resource-manager", f"{az_cli.server.url}/")
    az_cli.run("cloud", "set", "--name", "ArcPortal")
    error = az_cli.fails(
        "login", "--service-principal", "-u", az_cli.client_id, "-p", "not-the-secret", "--tenant", az_cli.tenant_id
    )
    assert "Invalid client secret" in error
    assert az_cli.fails("account", "show")
