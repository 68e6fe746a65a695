"""Management locks (``Microsoft.Authorization/locks``, issue 13): ``CanNotDelete`` and ``ReadOnly`` at subscription,
resource-group and machine scope, enforced by the services of machines on every caller's write and delete
(``enforcement.py``). A Django app of its own (label ``locks``) in the machines layer: its migrations never collide
with machines' own."""
