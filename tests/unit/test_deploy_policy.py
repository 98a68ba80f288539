from __future__ import annotations

import re
from typing import Any

from maas.deploy_policy import Skip, plan_move


def manifest(version: int, weight: float | None = None) -> dict[str, Any]:
    return {
        "name": "digits",
        "version": version,
        "deploy": {"alias": "production", "canary_weight": weight},
    }


def alias(
    version: int, previous: int | None = None, canary: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "alias": "production",
        "version": version,
        "canary": canary,
        "previous": previous,
        "updated_at": "2026-11-28T12:00:00Z",
    }


def test_first_deployment_creates_the_alias() -> None:
    assert plan_move(manifest(1), None, set()) == {"version": 1, "canary": None, "previous": None}
    # A canary needs a main version; with none, the version is promoted outright.
    outright = plan_move(manifest(1, 0.2), None, set())
    assert outright is not None and not isinstance(outright, Skip)
    assert outright["version"] == 1


def test_a_newer_version_moves_the_alias_and_remembers_the_old_one() -> None:
    assert plan_move(manifest(3), alias(2, previous=1), set()) == {
        "version": 3,
        "canary": None,
        "previous": 2,
    }


def test_an_older_version_never_moves_it() -> None:
    skip = plan_move(manifest(4), alias(5), set())
    assert isinstance(skip, Skip) and re.search(
        "older than production's current version 5", skip.reason
    )


def test_a_rolled_back_version_never_moves_it() -> None:
    skip = plan_move(manifest(3), alias(2), {3})
    assert isinstance(skip, Skip) and re.search("rolled back from version 3", skip.reason)


def test_redelivery_changes_nothing() -> None:
    assert plan_move(manifest(2), alias(2, previous=1), set()) is None
    canary = {"version": 3, "weight": 0.1}
    assert plan_move(manifest(3, 0.1), alias(2, canary=canary), set()) is None


def test_a_canary_policy_sets_the_canary_and_keeps_the_main_version() -> None:
    assert plan_move(manifest(3, 0.1), alias(2, previous=1), set()) == {
        "version": 2,
        "canary": {"version": 3, "weight": 0.1},
        "previous": 1,
    }
    skip = plan_move(manifest(2, 0.1), alias(2), set())
    assert isinstance(skip, Skip) and re.search("already production's main version", skip.reason)


def test_promoting_the_canary_version_fully_clears_the_canary() -> None:
    current = alias(2, previous=1, canary={"version": 3, "weight": 0.1})
    assert plan_move(manifest(3), current, set()) == {"version": 3, "canary": None, "previous": 2}
