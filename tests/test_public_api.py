"""Every package's public names: listed in a sorted tuple ``__all__``, and all importable."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = (
    "actors",
    "actors.persistence",
    "actors.pipeline",
    "actors.providers",
    "actors.room",
    "actors.tools",
    "supervisor",
    "supervisor.coordination",
    "supervisor.webhook",
    "supervisor.host",
    "supervisor.workers",
)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_a_sorted_tuple_of_existing_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, tuple)

    # isort style: CONSTANTS, then Classes, then functions, each alphabetical.
    def kind(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    assert list(exported) == sorted(exported, key=kind), f"{name}.__all__ is not sorted"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
