"""The fleet simulator: a development tool, not a layer of the portal. It may import the agent package and any app;
no app imports it. It is an INSTALLED_APP only for ``manage.py simulate_fleet``. The simulation modules themselves
(``config``, ``keys``, ``transport``, ``tokens``, ``stats``, ``fleet``) import no Django: they speak HTTPS only."""
