from tests.machines.graph.fleet import fleet, run  # noqa: F401  (fixtures)
