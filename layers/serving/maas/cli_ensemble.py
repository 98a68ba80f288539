"""``maas ensemble create``: several models answering as one, versioned like any model."""

from __future__ import annotations

import argparse
import math
from typing import Any

from maas.cli_output import alias_outcome, emit, registry_for
from maas.errors import InvalidInput
from maas.names import check_writable_alias, check_writable_name


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``ensemble`` and its subcommand to the ``maas`` parser."""
    ensemble = commands.add_parser("ensemble", help="combine models into one that answers")
    sub = ensemble.add_subparsers(
        dest="ensemble_command", required=True, parser_class=type(ensemble)
    )
    create = sub.add_parser(
        "create",
        parents=[common],
        help="publish the next version of NAME as an ensemble of the members",
    )
    create.add_argument("name", type=check_writable_name, metavar="NAME")
    create.add_argument(
        "--member",
        action="append",
        required=True,
        metavar="REF",
        help="NAME@ALIAS (followed within the alias TTL) or NAME:VERSION; at least two",
    )
    create.add_argument(
        "--weight",
        action="extend",
        nargs="+",
        type=_weight,
        metavar="W",
        help="one positive weight per member, in --member order (default: all 1)",
    )
    create.add_argument(
        "--combiner",
        choices=("mean", "vote"),
        required=True,
        help="mean: weighted mean of the probabilities; vote: weighted majority of the top-1",
    )
    create.add_argument(
        "--alias", type=check_writable_alias, help="then move ALIAS to the new version"
    )
    create.add_argument(
        "--fuse",
        action="store_true",
        help="publish one ONNX graph (onnx.compose) instead; NAME:VERSION members only",
    )
    create.add_argument("--reason", help="recorded in the alias history")
    create.add_argument(
        "--force",
        action="store_true",
        help="move the alias even to a version whose signature differs (recorded as forced)",
    )
    create.set_defaults(run=_create)


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"invalid weight {text!r}: a positive number") from None
    if not (math.isfinite(value) and value > 0):
        raise InvalidInput(f"invalid weight {text!r}: weights must be positive")
    return value


def _create(args: argparse.Namespace) -> None:
    from maas.ensemble.create import create_ensemble
    from maas.ensemble.members import member_specs

    specs = member_specs(args.member, args.weight)
    registry = registry_for(args, create=True)
    released = create_ensemble(
        registry,
        args.name,
        specs,
        args.combiner,
        alias=args.alias,
        reason=args.reason,
        force=args.force,
        fuse=args.fuse,
    )
    document: dict[str, Any] = {"name": released.name, "version": released.version}
    if args.alias is not None:
        document["alias"] = released.alias_report()
    emit(args, document, str(released.version))
    alias_outcome(released)
