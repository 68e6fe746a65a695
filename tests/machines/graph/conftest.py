import pytest

from tests.machines.graph.fleet import Fleet, seed_fleet


@pytest.fixture
def fleet(db, subscription, now) -> Fleet:
    return seed_fleet(subscription=subscription, now=now)


@pytest.fixture
def run(now):
    """``run(query, scopes=EVERYTHING, **options)`` → GraphResult, at the fixed ``now``."""
    from machines.graph.executor import resource_graph_query
    from machines.graph.visibility import EVERYTHING

    def go(query: str, *, scopes=EVERYTHING, **options):
        return resource_graph_query(query=query, scopes=scopes, now=now, **options)

    return go
