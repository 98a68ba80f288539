"""``maas models ...``: list, show, move, roll back, pull and read the history of models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from maas.cli_lifecycle import describe_tags
from maas.cli_lifecycle import register as register_lifecycle
from maas.cli_output import describe_alias, describe_manifest, emit, progress_bar, registry_for
from maas.errors import InvalidInput
from maas.names import ModelRef, check_alias, check_name, check_writable_alias, parse_version


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``models`` and its subcommands to the ``maas`` parser."""
    models = commands.add_parser("models", help="inspect and move models, versions, aliases")
    sub = models.add_subparsers(dest="models_command", required=True, parser_class=type(models))

    listing = sub.add_parser("list", parents=[common], help="list the models")
    listing.set_defaults(run=_list)

    show = sub.add_parser("show", parents=[common], help="show NAME, NAME:VERSION or NAME@ALIAS")
    show.add_argument("ref", type=ModelRef.parse, metavar="NAME[:VERSION|@ALIAS]")
    show.set_defaults(run=_show)

    alias = sub.add_parser("alias", parents=[common], help="move an alias by compare-and-swap")
    alias.add_argument("name", type=check_name)
    alias.add_argument("alias", type=check_writable_alias)
    alias.add_argument("version", type=parse_version, nargs="?", help="omitted with --delete")
    alias.add_argument(
        "--delete", action="store_true", help="delete the alias (compare-and-swap, recorded)"
    )
    alias.add_argument("--canary", type=parse_version, metavar="VERSION")
    alias.add_argument("--weight", type=_weight, metavar="W", help="canary share, 0 < W < 1")
    alias.add_argument("--reason", help="recorded in the alias history")
    alias.add_argument(
        "--force",
        action="store_true",
        help="move the alias even to a version whose signature differs (recorded as "
        "forced); with --delete, delete even the default alias",
    )
    alias.set_defaults(run=_alias)

    rollback = sub.add_parser("rollback", parents=[common], help="move an alias back")
    rollback.add_argument("name", type=check_name)
    rollback.add_argument(
        "alias",
        nargs="?",
        type=check_alias,
        help="the alias to move back (default: $MAAS_DEFAULT_ALIAS, else production)",
    )
    # The earlier spelling, kept so scripts keep working.
    rollback.add_argument("--alias", dest="alias_flag", type=check_alias, help=argparse.SUPPRESS)
    rollback.add_argument("--reason", help="recorded in the alias history")
    rollback.set_defaults(run=_rollback)

    pull = sub.add_parser(
        "pull", parents=[common], help="download a version's model, verified against its manifest"
    )
    pull.add_argument("ref", type=ModelRef.parse, metavar="NAME[:VERSION|@ALIAS]")
    pull.add_argument("--out", type=Path, required=True, metavar="PATH")
    pull.set_defaults(run=_pull)

    history = sub.add_parser("history", parents=[common], help="show the alias moves")
    history.add_argument("name", type=check_name)
    history.add_argument("--alias", type=check_alias, help="only this alias")
    history.add_argument(
        "--repair",
        action="store_true",
        help="first write any alias move whose history record failed to be written",
    )
    history.set_defaults(run=_history)

    register_lifecycle(sub, common)


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"invalid canary weight {text!r}: a number between 0 and 1") from None
    if not 0.0 < value < 1.0:
        raise InvalidInput(f"invalid canary weight {text!r}: must be strictly between 0 and 1")
    return value


def _list(args: argparse.Namespace) -> None:
    from maas.registry.index import model_entry

    registry = registry_for(args)
    rows = [model_entry(registry, name) for name in registry.list_models()]
    lines = [f"{'NAME':<24} {'LATEST':>6}  ALIASES"]
    for row in rows:
        cells = [
            _alias_cell(a, v, row.get("canaries", {}).get(a)) for a, v in row["aliases"].items()
        ]
        shown = ", ".join(cells) or "-"
        lines.append(f"{row['name']:<24} {row['latest_version']:>6}  {shown}")
    emit(args, rows, "\n".join(lines) if rows else "no models")


def _alias_cell(alias: str, version: int, canary: dict[str, Any] | None) -> str:
    if canary is None:
        return f"{alias}={version}"
    return f"{alias}={version} (canary {canary['version']} at {canary['weight']:.0%})"


def _show(args: argparse.Namespace) -> None:
    registry = registry_for(args)
    ref: ModelRef = args.ref
    if ref.version is not None:
        manifest = registry.get_manifest(ref.name, ref.version)
        tags = registry.read_tags(ref.name, ref.version)
        emit(
            args,
            {**manifest, "tags": tags},
            describe_manifest(manifest) + "\n" + describe_tags(ref.name, tags),
        )
    elif ref.alias is not None:
        doc = registry.get_alias(ref.name, ref.alias)
        manifest = registry.get_manifest(ref.name, doc["version"])
        tags = registry.read_tags(ref.name, doc["version"])
        emit(
            args,
            {**manifest, "alias": doc, "tags": tags},
            describe_alias(ref.name, doc)
            + "\n"
            + describe_manifest(manifest)
            + "\n"
            + describe_tags(ref.name, tags),
        )
    else:
        versions = registry.require_model(ref.name)
        aliases = registry.list_aliases(ref.name)
        human = [f"{ref.name}: versions {', '.join(map(str, versions))}"]
        human += ["  " + describe_alias(ref.name, doc) for doc in aliases.values()]
        emit(args, {"name": ref.name, "versions": versions, "aliases": aliases}, "\n".join(human))


def _alias(args: argparse.Namespace) -> None:
    from maas.config import cli_default_alias

    registry = registry_for(args)
    if args.delete:
        if args.version is not None or args.canary is not None:
            raise InvalidInput("--delete takes no version and no canary")
        protected = None if args.force else cli_default_alias()
        if not args.force:
            _refuse_followed(registry, args.name, args.alias)
        registry.delete_alias(args.name, args.alias, protected=protected, reason=args.reason)
        emit(args, {"name": args.name, "alias": args.alias, "deleted": True},
             f"{args.name}@{args.alias} deleted")  # fmt: skip
        return
    if args.version is None:
        raise InvalidInput("models alias: give the VERSION to point the alias at (or --delete)")
    existing = sorted(registry.alias_names(args.name)) if registry.list_versions(args.name) else []
    doc = registry.set_alias(
        args.name,
        args.alias,
        args.version,
        canary=args.canary,
        weight=args.weight,
        reason=args.reason,
        force=args.force,
    )
    emit(args, doc, describe_alias(args.name, doc))
    if args.alias not in existing:
        # A typo would otherwise create an alias silently: say so, and what exists.
        print(
            f"maas: warning: created a new alias {args.name}@{args.alias} "
            f"(existing aliases: {', '.join(existing) or 'none'})",
            file=sys.stderr,
        )


def _refuse_followed(registry: Any, name: str, alias: str) -> None:
    from maas.ensemble.members import ensembles_following

    followers = ensembles_following(registry, name, alias)
    if followers:
        shown = ", ".join(followers[:5]) + (
            f" and {len(followers) - 5} more" * (len(followers) > 5)
        )
        raise InvalidInput(
            f"{name}@{alias} is a member of the ensemble {shown}, which would stop "
            "answering without it; use --force to delete it anyway"
        )


def _rollback(args: argparse.Namespace) -> None:
    from maas.config import cli_default_alias

    alias = args.alias or args.alias_flag or cli_default_alias()
    doc = registry_for(args).rollback(args.name, alias, reason=args.reason)
    emit(args, doc, describe_alias(args.name, doc))


def _pull(args: argparse.Namespace) -> None:
    registry = registry_for(args)
    version, _ = registry.resolve(args.ref)
    if registry.kind(args.ref.name, version) == "ensemble":
        raise InvalidInput(
            f"{args.ref.name}:{version} is an ensemble: it has no bytes to pull; pull its "
            "members (`maas models show` lists them), or fuse it with `maas ensemble create "
            "--fuse`"
        )
    out: Path = args.out
    if out.is_dir():
        raise InvalidInput(f"--out {out} is a directory; give the file to write")
    if not out.parent.is_dir():
        raise InvalidInput(f"--out {out}: directory {out.parent} does not exist")
    manifest = registry.get_manifest(args.ref.name, version)
    with progress_bar(
        args, manifest["model"]["size"], f"download {args.ref.name}:{version}"
    ) as bar:
        registry.fetch_model(args.ref.name, version, out, bar)
    emit(
        args,
        {
            "name": args.ref.name,
            "version": version,
            "path": str(out),
            "sha256": manifest["model"]["sha256"],
        },
        f"{args.ref.name}:{version} -> {out}",
    )


def _history(args: argparse.Namespace) -> None:
    registry = registry_for(args)
    registry.require_model(args.name)
    if args.repair:
        for alias in registry.repair_history(args.name):
            print(f"maas: repaired the history of {args.name}@{alias}", file=sys.stderr)
    records = registry.history(args.name, args.alias)
    lines = [f"{'AT':<28} {'ALIAS':<12} {'FROM':>4} -> {'TO':<4} {'ACTION':<22} BY / REASON"]
    before: dict[str, dict[str, Any] | None] = {}
    for r in records:
        origin = "-" if r["from"] is None else str(r["from"])
        target = "-" if r["to"] is None else str(r["to"])
        action = r.get("action", "move")
        canary, had = r["canary"], before.get(r["alias"])
        if canary and canary != had:
            action = f"set canary {canary['version']} ({canary['weight']:.0%})"
        elif had and not canary and action == "move" and r["from"] == r["to"]:
            action = "cleared canary"
        before[r["alias"]] = canary
        forced = " [forced]" if r.get("forced") else ""
        lines.append(
            f"{r['at']:<28} {r['alias']:<12} {origin:>4} -> {target:<4} "
            f"{action + forced:<22} {r['by']} / {r['reason'] or ''}"
        )
    emit(args, records, "\n".join(lines) if records else "no alias moves")
