"""The Locks page's forms: add a lock, delete one."""

from django import forms

from arcportal.forms import GuardedForm
from machines.locks.models import LockLevel


class LockAddForm(GuardedForm):
    name = forms.CharField(max_length=260, label="Lock name")
    level = forms.ChoiceField(choices=LockLevel.choices, label="Lock type")
    notes = forms.CharField(max_length=512, required=False, label="Notes")


class LockDeleteForm(GuardedForm):
    delete = forms.CharField(max_length=260)
