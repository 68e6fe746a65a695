"""Portal pages of the machines app (placeholder until the Machines blade lands)."""

from django.shortcuts import render


def machine_list(request):
    return render(request, "machines/machine_list.html", {})


def resource_group_list(request):
    return render(request, "machines/machine_list.html", {})
