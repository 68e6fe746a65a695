"""Forms of the + Add → Generate script wizard: one per tab (Basics, Tags). Validation only, no saving.

Basics offers and accepts only the scopes its user may use (``onboarding.wizard_scopes``): a subscription or group
posted by hand that the user may not use is a field error, like any other invalid input, and nothing is written."""

from __future__ import annotations

from django import forms

from arcportal import authz
from arcportal.arm import ids
from arcportal.forms import GuardedForm
from identity import selectors as identity_selectors
from machines import validation
from machines.regions import REGION_CHOICES
from onboarding.scripts import OS_CHOICES, OS_LINUX, validate_guid, validate_proxy_url
from onboarding.wizard_scopes import WizardScopes

MODE_SINGLE = "single"
MODE_SCALE = "scale"
RG_EXISTING, RG_NEW = "existing", "new"
CONNECTIVITY_PUBLIC, CONNECTIVITY_PROXY = "public", "proxy"
SP_EXISTING, SP_NEW, SP_MANUAL = "existing", "new", "manual"
PHYSICAL_TAGS = [
    ("tag_datacenter", "Datacenter"),
    ("tag_city", "City"),
    ("tag_state_or_district", "StateOrDistrict"),
    ("tag_country_or_region", "CountryOrRegion"),
]
DEFAULT_SP_NAME = "Arc server onboarding account"


def _run(check, *args):
    try:
        return check(*args)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from exc


class BasicsForm(GuardedForm):
    subscription = forms.ChoiceField(
        label="Subscription",
        error_messages={
            "invalid_choice": "You may not onboard servers in the subscription '%(value)s', or it does not exist: "
            "choose one from the list."
        },
    )
    resource_group_mode = forms.ChoiceField(
        label="Resource group",
        choices=[(RG_EXISTING, "Use an existing resource group"), (RG_NEW, "Create new")],
        widget=forms.RadioSelect,
        initial=RG_EXISTING,
    )
    resource_group = forms.CharField(label="Existing resource group", required=False)
    new_resource_group = forms.CharField(
        label="New resource group name",
        required=False,
        max_length=90,
        help_text="1–90 letters, digits, underscores, hyphens, periods and parentheses; can't end with a period. "
        "It is created when the script is generated.",
    )
    location = forms.ChoiceField(label="Region", choices=REGION_CHOICES, initial="westeurope")
    os = forms.ChoiceField(label="Operating system", choices=OS_CHOICES, widget=forms.RadioSelect, initial=OS_LINUX)
    connectivity = forms.ChoiceField(
        label="How the agent connects",
        choices=[(CONNECTIVITY_PUBLIC, "Public endpoint"), (CONNECTIVITY_PROXY, "Proxy server")],
        widget=forms.RadioSelect,
        initial=CONNECTIVITY_PUBLIC,
    )
    proxy_url = forms.CharField(
        label="Proxy server URL",
        required=False,
        max_length=300,
        help_text="http://<proxyURL>:<proxyport>",
        widget=forms.TextInput(attrs={"placeholder": "http://proxy.example.com:3128"}),
    )
    # Add multiple servers: authentication through a service principal.
    sp_mode = forms.ChoiceField(
        label="Service principal",
        choices=[
            (SP_EXISTING, "Use an existing service principal"),
            (SP_NEW, "Create a new service principal"),
            (SP_MANUAL, "Enter an application (client) ID"),
        ],
        widget=forms.RadioSelect,
        required=False,
    )
    service_principal = forms.ChoiceField(label="Existing service principal", required=False)
    new_service_principal_name = forms.CharField(
        label="Name of the new service principal",
        required=False,
        max_length=200,
        initial=DEFAULT_SP_NAME,
        help_text="Created when the script is generated, with the role Azure Connected Machine Onboarding on the "
        "resource group chosen above. Its secret is put in the script and shown nowhere else.",
    )
    service_principal_id = forms.CharField(label="Application (client) ID", required=False, max_length=36)
    service_principal_secret = forms.CharField(
        label="Service principal secret",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Paste the secret, or leave it empty: the script then holds a placeholder for you to fill in. "
        "A pasted secret is kept on the server (encrypted) until the script is generated, once, and never shown "
        "again.",
    )

    def __init__(self, *args, user=None, mode: str = MODE_SINGLE, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.scopes = WizardScopes(user)
        self.subscriptions = self.scopes.subscriptions
        self.fields["subscription"].choices = [(str(s.subscription_id), s.display_name) for s in self.subscriptions]
        if self.subscriptions:
            self.fields["subscription"].initial = str(self.subscriptions[0].subscription_id)
        groups = self.scopes.groups
        self.resource_groups = groups
        self.fields["resource_group"].widget = forms.Select(
            choices=[("", "Select a resource group")]
            + [
                (s.display_name, [(g.name, g.name) for g in groups if g.subscription_id == s.pk])
                for s in self.subscriptions
            ]
        )
        if not groups:
            self.fields["resource_group_mode"].initial = RG_NEW
        if not self.scopes.offers_new_group:  # not offered; posted anyway, clean() says why it is refused
            self.fields["resource_group_mode"].widget.choices = [(RG_EXISTING, "Use an existing resource group")]
            self.fields["resource_group_mode"].initial = RG_EXISTING
        # The principals the Service principals page would show this user (their role assignment is readable).
        self.principals = (
            [
                principal
                for principal in identity_selectors.service_principal_list_usable()
                if authz.may_read_service_principal(user, principal.scope)
            ]
            if mode == MODE_SCALE
            else []
        )
        self.fields["service_principal"].choices = [("", "Select a service principal")] + [
            (str(p.client_id), f"{p.display_name} ({p.client_id})") for p in self.principals
        ]
        if mode == MODE_SCALE:
            self.fields["sp_mode"].required = True
            self.fields["sp_mode"].initial = SP_EXISTING if self.principals else SP_NEW
            if not self.scopes.offers_new_service_principal:  # not offered; posted anyway, refused in clean()
                sp_field = self.fields["sp_mode"]
                sp_field.widget.choices = [choice for choice in sp_field.choices if choice[0] != SP_NEW]
                sp_field.initial = SP_EXISTING if self.principals else SP_MANUAL
        else:
            for name in self.scale_field_names():
                del self.fields[name]

    @staticmethod
    def scale_field_names() -> list[str]:
        return [
            "sp_mode",
            "service_principal",
            "new_service_principal_name",
            "service_principal_id",
            "service_principal_secret",
        ]

    def clean_subscription(self):
        value = self.cleaned_data["subscription"]
        subscription = next((s for s in self.subscriptions if str(s.subscription_id) == value), None)
        if subscription is None:
            raise forms.ValidationError("Select a subscription.")
        return subscription

    def clean_proxy_url(self):
        value = self.cleaned_data.get("proxy_url", "")
        if self.data.get("connectivity") != CONNECTIVITY_PROXY:
            return ""
        if not value:
            raise forms.ValidationError("Enter the proxy server URL, or choose Public endpoint.")
        return _run(validate_proxy_url, value)

    def clean(self):
        cleaned = super().clean()
        subscription = cleaned.get("subscription")
        if cleaned.get("resource_group_mode") == RG_NEW:
            name = (cleaned.get("new_resource_group") or "").strip()
            refusal = subscription and self.scopes.refusal_new_group(subscription)
            if refusal:  # before the name is looked at: a refusal says nothing of which groups exist
                self.add_error("new_resource_group", refusal)
            else:
                self._clean_new_group(cleaned, subscription, name)
        elif cleaned.get("resource_group_mode") == RG_EXISTING:
            name = cleaned.get("resource_group") or ""
            refusal = subscription and name and self.scopes.refusal_existing_group(subscription, name)
            if not name:
                self.add_error("resource_group", "Select a resource group, or create a new one.")
            elif refusal:
                self.add_error("resource_group", refusal)
            elif subscription and self._group_named(subscription, name) is None:
                self.add_error("resource_group", f"The resource group '{name}' is not in this subscription.")
        if self.mode == MODE_SCALE:
            self._clean_service_principal(cleaned)
        secret = cleaned.get("service_principal_secret") or ""
        if "\x00" in secret:
            self.add_error("service_principal_secret", "The secret can't contain a NUL character.")
        return cleaned

    def _clean_new_group(self, cleaned, subscription, name: str) -> None:
        try:
            validation.validate_resource_group_name(name)
        except ValueError as exc:
            self.add_error("new_resource_group", str(exc))
            return
        cleaned["new_resource_group"] = name
        if subscription and self._group_named(subscription, name, fold=True):
            self.add_error(
                "new_resource_group",
                f"A resource group named '{name}' already exists: choose it under existing resource groups.",
            )

    def _clean_service_principal(self, cleaned) -> None:
        sp_mode = cleaned.get("sp_mode")
        if sp_mode == SP_EXISTING:
            value = cleaned.get("service_principal") or ""
            if not any(str(p.client_id) == value for p in self.principals):
                self.add_error("service_principal", "Select a service principal.")
        elif sp_mode == SP_NEW:
            name = (cleaned.get("new_service_principal_name") or "").strip()
            if not name:
                self.add_error("new_service_principal_name", "Enter a name for the new service principal.")
            cleaned["new_service_principal_name"] = name
            subscription, (group_field, group) = cleaned.get("subscription"), self._posted_group(cleaned)
            if subscription and group and not self.has_error(group_field):
                refusal = self.scopes.refusal_service_principal(subscription, group)
                if refusal:
                    self.add_error("new_service_principal_name", refusal)
        elif sp_mode == SP_MANUAL:
            try:
                cleaned["service_principal_id"] = validate_guid(
                    (cleaned.get("service_principal_id") or "").strip(), "application (client) ID"
                )
            except ValueError as exc:
                self.add_error("service_principal_id", str(exc))

    @staticmethod
    def _posted_group(cleaned) -> tuple[str, str]:
        """The field naming the resource group the script is for (new or existing), and its value."""
        field = "new_resource_group" if cleaned.get("resource_group_mode") == RG_NEW else "resource_group"
        return field, (cleaned.get(field) or "").strip()

    def _group_named(self, subscription, name: str, *, fold: bool = False):
        """The group of ``subscription`` called ``name`` (no query: the subscriptions and groups are read once per
        request, in ``__init__``); ``fold`` compares names as ARM does. Every group counts here, also those the user
        may not use (a new group must not take an existing name): whether one may be used is decided before."""
        key = ids.fold_name(name) if fold else name
        for group in self.scopes.all_groups:
            if group.subscription_id == subscription.pk and (ids.fold_name(group.name) if fold else group.name) == key:
                return group
        return None

    # --- What the wizard needs after validation ------------------------------------------------------------------

    @property
    def chosen_resource_group(self):
        """The existing group chosen (``None`` when a new one is to be created)."""
        if self.cleaned_data["resource_group_mode"] == RG_NEW:
            return None
        return self._group_named(self.cleaned_data["subscription"], self.cleaned_data["resource_group"])

    @property
    def resource_group_name(self) -> str:
        if self.cleaned_data["resource_group_mode"] == RG_NEW:
            return self.cleaned_data["new_resource_group"]
        return self.cleaned_data["resource_group"]

    @property
    def service_principal_client_id(self) -> str:
        if self.mode != MODE_SCALE:
            return ""
        if self.cleaned_data["sp_mode"] == SP_EXISTING:
            return self.cleaned_data["service_principal"]
        if self.cleaned_data["sp_mode"] == SP_MANUAL:
            return self.cleaned_data["service_principal_id"]
        return ""

    def summary(self) -> list[tuple[str, str]]:
        data = self.cleaned_data
        rows = [
            ("Subscription", f"{data['subscription'].display_name} ({data['subscription'].subscription_id})"),
            (
                "Resource group",
                self.resource_group_name + (" (new)" if data["resource_group_mode"] == RG_NEW else ""),
            ),
            ("Region", dict(REGION_CHOICES).get(data["location"], data["location"])),
            ("Operating system", dict(OS_CHOICES)[data["os"]]),
            ("Connectivity method", f"Proxy server {data['proxy_url']}" if data["proxy_url"] else "Public endpoint"),
        ]
        if self.mode == MODE_SCALE:
            rows.append(("Authentication", "Service principal"))
        else:
            rows.append(("Authentication", "Interactive sign-in (device code)"))
        return rows


class TagRow:
    def __init__(self, name: str, value: str, error: str = "") -> None:
        self.name, self.value, self.error = name, value, error


class TagsForm(GuardedForm):
    """Physical location tags plus custom name/value rows (``tag_name``/``tag_value`` lists). Empty tags are omitted."""

    tag_datacenter = forms.CharField(label="Datacenter", required=False, strip=False)
    tag_city = forms.CharField(label="City", required=False, strip=False)
    tag_state_or_district = forms.CharField(label="StateOrDistrict", required=False, strip=False)
    tag_country_or_region = forms.CharField(label="CountryOrRegion", required=False, strip=False)

    def __init__(self, data=None, *args, extra_rows: int = 0, remove_row: int | None = None, **kwargs):
        super().__init__(data, *args, **kwargs)
        names = data.getlist("tag_name") if data is not None else []
        values = data.getlist("tag_value") if data is not None else []
        rows = [TagRow(n, v) for n, v in zip(names, values + [""] * (len(names) - len(values)), strict=False)]
        if remove_row is not None and 0 <= remove_row < len(rows):
            del rows[remove_row]
        rows += [TagRow("", "") for _ in range(extra_rows)]
        if not rows:
            rows = [TagRow("", "")]
        self.rows = rows

    def clean(self):
        cleaned = super().clean()
        pairs: list[tuple[str, str, TagRow | str]] = []
        for field, name in PHYSICAL_TAGS:
            value = cleaned.get(field) or ""
            if value.strip():
                pairs.append((name, value, field))
        for row in self.rows:
            name = row.name.strip()
            if not name and not row.value.strip():
                continue
            if not name:
                row.error = "Enter a tag name for this value."
                continue
            if not row.value.strip():
                continue  # an empty tag is omitted
            pairs.append((name, row.value, row))
        tags: dict[str, str] = {}
        seen: dict[str, str] = {}
        for name, value, where in pairs:
            try:
                validation.validate_tag_name(name)
                validation.validate_tag_value(name, value)
                if "\x00" in value:
                    raise ValueError(f"The value of tag '{name}' can't contain a NUL character.")
                if name.casefold() in seen:
                    raise ValueError(f"The tag name '{name}' is given twice (tag names are case-insensitive).")
            except ValueError as exc:
                if isinstance(where, TagRow):
                    where.error = str(exc)
                else:
                    self.add_error(where, str(exc))
                continue
            seen[name.casefold()] = name
            tags[name] = value
        if any(row.error for row in self.rows):
            raise forms.ValidationError("Correct the tags marked below.")
        try:
            cleaned["tags"] = validation.validate_tags(tags)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned
