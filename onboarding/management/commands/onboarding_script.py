"""Print an onboarding script, the same one the + Add wizard generates (for automation).

    python manage.py onboarding_script --os linux --subscription <id> --resource-group rg --location westeurope \
        [--proxy http://proxy:3128] [--tag Datacenter=CH01 --tag 'Owner=Shared Services'] \
        [--service-principal-id <app id> --service-principal-secret <secret>] [--create-resource-group]

Each run records a ScriptGeneration with a new correlation id (the secret is never stored).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from arcportal.exceptions import ApplicationError
from onboarding.scripts import OS_LINUX, OS_WINDOWS, ScriptOptions
from onboarding.services import script_generation_create


def parse_tag_arguments(values: list[str]) -> dict[str, str]:
    """``["k=v", "Owner=Shared Services"]`` → dict. Split at the first ``=``; a name given twice is an error."""
    tags: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--tag {item!r}: write it as NAME=VALUE.")
        name = name.strip()
        if name.casefold() in (n.casefold() for n in tags):
            raise CommandError(f"--tag {name!r} is given twice (tag names are case-insensitive).")
        if value != "":
            tags[name] = value
    return tags


class Command(BaseCommand):
    help = "Print the onboarding script the + Add wizard would generate, for the given options."

    def add_arguments(self, parser):
        parser.add_argument("--os", required=True, choices=[OS_LINUX, OS_WINDOWS])
        parser.add_argument("--subscription", required=True, help="Subscription id (GUID).")
        parser.add_argument("--resource-group", required=True)
        parser.add_argument("--location", required=True, help="Region, e.g. westeurope.")
        parser.add_argument("--proxy", default="", help="Proxy server URL, http(s)://host:port.")
        parser.add_argument("--tag", action="append", default=[], metavar="NAME=VALUE", help="Repeat for each tag.")
        parser.add_argument("--service-principal-id", default="", help="At scale: the application (client) id.")
        parser.add_argument(
            "--service-principal-secret", default="", help="At scale: the secret (a placeholder if left out)."
        )
        parser.add_argument(
            "--create-resource-group", action="store_true", help="Create the resource group if it doesn't exist."
        )

    def handle(self, *args, **opts):
        if opts["service_principal_secret"] and not opts["service_principal_id"]:
            raise CommandError("--service-principal-secret needs --service-principal-id.")
        options = ScriptOptions(
            os=opts["os"],
            subscription_id=opts["subscription"],
            resource_group=opts["resource_group"],
            location=opts["location"],
            proxy_url=opts["proxy"],
            tags=parse_tag_arguments(opts["tag"]),
            service_principal_id=opts["service_principal_id"],
            service_principal_secret=opts["service_principal_secret"],
        )
        try:
            options = options.validated()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        create = False
        if opts["create_resource_group"]:
            from machines import selectors

            subscription = selectors.subscription_get(subscription_id=options.subscription_id)
            create = subscription is not None and (
                selectors.resource_group_get(subscription=subscription, name=options.resource_group) is None
            )
        try:
            generated = script_generation_create(
                options=options, created_by_name="manage.py onboarding_script", create_resource_group=create
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(generated.script, ending="")
        self.stderr.write(f"Correlation id: {generated.generation.correlation_id}")
