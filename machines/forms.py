"""Portal input forms: parse and validate with ``machines.validation``; saving is the services' job."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from arcportal.forms import GuardedForm, parse_id
from machines import validation
from machines.regions import REGION_CHOICES

# Empty tag rows the forms offer; a resource may still hold up to validation.MAX_TAGS tags.
TAG_ROWS = 5


def _validated(func, *args):
    try:
        return func(*args)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class TagRowForm(GuardedForm):
    """One name/value row. A blank row is ignored; a value without a name is an error."""

    name = forms.CharField(required=False, strip=True, label="Name")
    value = forms.CharField(required=False, strip=False, label="Value")

    def clean(self):
        cleaned = super().clean()
        name, value = cleaned.get("name", ""), cleaned.get("value", "")
        if not name and value:
            self.add_error("name", "A tag needs a name.")
        elif name:
            try:
                validation.validate_tag_name(name)
            except ValueError as exc:
                self.add_error("name", str(exc))
            try:
                validation.validate_tag_value(name, value)
            except ValueError as exc:
                self.add_error("value", str(exc))
        return cleaned


class BaseTagRowFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        tags = self.tags()
        if len(tags) > validation.MAX_TAGS:
            raise ValidationError(
                f"A resource can have at most {validation.MAX_TAGS} tags; {len(tags)} were given.", code="too_many"
            )
        seen: dict[str, str] = {}
        for form in self.forms:
            name = form.cleaned_data.get("name")
            if not name:
                continue
            if name.casefold() in seen:
                form.add_error("name", f"The tag name '{name}' is given twice (tag names are case-insensitive).")
            seen[name.casefold()] = name
        _validated(validation.validate_tags, tags)

    def tags(self) -> dict[str, str]:
        return {
            form.cleaned_data["name"]: form.cleaned_data.get("value", "")
            for form in self.forms
            if form.cleaned_data.get("name")
        }


def tag_formset(*, data=None, initial: dict[str, str] | None = None, extra: int = TAG_ROWS, prefix: str = "tags"):
    """A formset of tag rows: the given tags first, then ``extra`` blank rows. Over 50 tags is a formset error."""
    formset_class = forms.formset_factory(
        TagRowForm,
        formset=BaseTagRowFormSet,
        extra=extra,
        max_num=validation.MAX_TAGS,
        absolute_max=validation.MAX_TAGS + 50,
    )
    rows = [{"name": key, "value": value} for key, value in (initial or {}).items()]
    return formset_class(data=data, initial=rows, prefix=prefix)


class ResourceGroupCreateForm(GuardedForm):
    subscription = forms.ModelChoiceField(queryset=None, empty_label=None, label="Subscription")
    name = forms.CharField(label="Resource group", max_length=90, strip=False)
    location = forms.ChoiceField(label="Region", choices=REGION_CHOICES)

    def __init__(self, *args, subscriptions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"].queryset = subscriptions
        self.fields["subscription"].to_field_name = "subscription_id"
        self.fields["name"].error_messages["max_length"] = "The resource group name must be 1 to 90 characters long."
        self.fields["location"].error_messages["invalid_choice"] = "'%(value)s' is not a supported region."

    def clean_name(self):
        return _validated(validation.validate_resource_group_name, self.cleaned_data["name"])


class ResourceGroupDeleteForm(GuardedForm):
    """Azure's rule: type the resource group's name to confirm."""

    confirm_name = forms.CharField(
        label="Type the resource group name",
        strip=True,
        error_messages={"required": "Type the resource group's name to confirm the deletion."},
    )

    def __init__(self, *args, resource_group_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.resource_group_name = resource_group_name

    def clean_confirm_name(self):
        typed = self.cleaned_data["confirm_name"]
        if typed != self.resource_group_name:
            raise ValidationError(f"The name you typed doesn't match '{self.resource_group_name}'.")
        return typed


class MachineIdsField(forms.Field):
    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Select at least one machine.",
        "invalid": "The selection is not a list of machines.",
        "too_many": "Select at most %(limit)s machines at a time.",
    }
    limit = 1000

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        parsed = [parse_id(item) for item in value]
        if None in parsed:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        ids = sorted(set(parsed))
        if len(ids) > self.limit:
            raise ValidationError(self.error_messages["too_many"], code="too_many", params={"limit": self.limit})
        return ids


class MachineAssignTagsForm(GuardedForm):
    """The list's *Assign tags*: one name/value pair merged into each selected machine's tags."""

    machine = MachineIdsField()
    tag_name = forms.CharField(label="Name", strip=True, error_messages={"required": "A tag needs a name."})
    tag_value = forms.CharField(label="Value", required=False, strip=False)

    def clean_tag_name(self):
        return _validated(validation.validate_tag_name, self.cleaned_data["tag_name"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("tag_name") is not None and "tag_value" in cleaned:
            try:
                validation.validate_tag_value(cleaned["tag_name"], cleaned["tag_value"])
            except ValueError as exc:
                self.add_error("tag_value", str(exc))
        return cleaned


class MachineDeleteForm(GuardedForm):
    """Azure's bulk delete: type "delete" to confirm."""

    machine = MachineIdsField()
    confirm = forms.CharField(
        label='Type "delete" to confirm',
        strip=True,
        error_messages={"required": 'Type "delete" to confirm the deletion.'},
    )

    def clean_confirm(self):
        typed = self.cleaned_data["confirm"]
        if typed.lower() != "delete":
            raise ValidationError('Type "delete" to confirm the deletion.')
        return typed
