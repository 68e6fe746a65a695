"""Extra bootstrap steps, in order. Each is a callable returning lines to print; each must be idempotent.

Apps register here instead of the bootstrap command importing every app (the PKI step lives in onboarding).
"""

from collections.abc import Callable, Iterable

STEPS: list[Callable[[], Iterable[str]]] = []


def register(step: Callable[[], Iterable[str]]) -> Callable[[], Iterable[str]]:
    STEPS.append(step)
    return step
