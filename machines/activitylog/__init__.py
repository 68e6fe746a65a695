"""The activity log's faces in the machines layer: the Azure Monitor ARM list (``api.py``) and the portal's Activity
log pages at subscription, resource-group and machine scope (``views.py``). The events and their writer are the
core's (``arcportal.activity``)."""
