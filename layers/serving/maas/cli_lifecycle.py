"""``maas models tag|archive|deployments``: the lifecycle of versions beside their bytes."""

from __future__ import annotations

import argparse
from typing import Any

from maas.cli_output import emit, registry_for
from maas.errors import InvalidInput
from maas.names import ModelRef, check_name, parse_version


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    tag = sub.add_parser(
        "tag",
        parents=[common],
        help="set tags (KEY=VALUE), remove them (--remove KEY) or describe a version",
    )
    tag.add_argument("ref", type=_version_ref, metavar="NAME:VERSION")
    tag.add_argument("tags", nargs="*", metavar="KEY=VALUE")
    tag.add_argument("--remove", action="append", default=[], metavar="KEY", help="drop a tag")
    tag.add_argument("--description", help="a free-text description of the version")
    tag.set_defaults(run=_tag)

    archive = sub.add_parser(
        "archive",
        parents=[common],
        help="archive a version: no alias may move to it; its bytes stay, for lineage",
    )
    archive.add_argument("ref", type=_version_ref, metavar="NAME:VERSION")
    archive.add_argument("--undo", action="store_true", help="restore an archived version")
    archive.set_defaults(run=_archive)

    deployments = sub.add_parser(
        "deployments", parents=[common], help="read the deployer's records of a model"
    )
    deployments.add_argument("name", type=check_name)
    deployments.add_argument("--version", type=parse_version, metavar="V")
    deployments.set_defaults(run=_deployments)


def _version_ref(text: str) -> ModelRef:
    ref = ModelRef.parse(text)
    if ref.version is None:
        raise InvalidInput(f"{text!r}: give NAME:VERSION (an exact version)")
    return ref


def _tag(args: argparse.Namespace) -> None:
    from maas.registry.tags import parse_tag

    additions = dict(parse_tag(t) for t in args.tags)
    removals = tuple(args.remove)
    if not additions and not removals and args.description is None:
        raise InvalidInput("models tag: give KEY=VALUE, --remove KEY or --description")
    doc = registry_for(args).update_tags(
        args.ref.name,
        args.ref.version,
        tags=additions,
        remove=removals,
        description=args.description,
    )
    emit(args, doc, describe_tags(args.ref.name, doc))


def _archive(args: argparse.Namespace) -> None:
    doc = registry_for(args).update_tags(args.ref.name, args.ref.version, archived=not args.undo)
    state = "archived" if doc["archived"] else "restored"
    emit(args, doc, f"{args.ref.name}:{args.ref.version} {state}")


def describe_tags(name: str, doc: dict[str, Any]) -> str:
    tags = ", ".join(f"{k}={v}" for k, v in sorted(doc["tags"].items())) or "-"
    lines = [f"{name}:{doc['version']}  tags {tags}" + ("  [archived]" if doc["archived"] else "")]
    if doc["description"]:
        lines.append(f"  {doc['description']}")
    return "\n".join(lines)


def _deployments(args: argparse.Namespace) -> None:
    registry = registry_for(args)
    versions = [args.version] if args.version else registry.require_model(args.name)
    if args.version:
        registry.get_manifest(args.name, args.version)
    records = [
        record
        for version in versions
        if (record := registry.read_record(registry.deployment_key(args.name, version)))
    ]
    lines = [f"{'VERSION':>7}  {'STATUS':<10} {'AT':<21} REASON"]
    lines += [f"{r['version']:>7}  {r['status']:<10} {r['at']:<21} {r['reason']}" for r in records]
    emit(args, records, "\n".join(lines) if records else f"no deployment records for {args.name}")
