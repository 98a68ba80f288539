"""What every CLI command shares: opening the registry, progress bars, human or
JSON output, and the alias outcome of a release, rendered alike by `maas publish`
and `maas convert`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from maas.errors import IntegrityError

if TYPE_CHECKING:
    from maas.promotion import Release


@contextmanager
def progress_bar(
    args: argparse.Namespace, total: int, label: str
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only for a person at a terminal and never with --json."""
    if args.json or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr, leave=False
    ) as bar:
        yield bar.update


def emit(args: argparse.Namespace, document: Any, human: str) -> None:
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(human)


def describe_alias(name: str, doc: dict[str, Any]) -> str:
    text = f"{name}@{doc['alias']} -> {doc['version']}"
    if doc["canary"]:
        text += f" (canary {doc['canary']['version']} at {doc['canary']['weight']:.0%})"
    if doc["previous"] is not None:
        text += f", previous {doc['previous']}"
    return text


def describe_manifest(manifest: dict[str, Any]) -> str:
    def tensors(specs: list[dict[str, Any]]) -> str:
        return ", ".join(f"{t['name']} {t['datatype']} {t['shape']}" for t in specs)

    if manifest.get("kind") == "ensemble":
        lines = [
            f"{manifest['name']}:{manifest['version']}  ensemble ({manifest['combiner']})  "
            f"created {manifest['created_at']}",
            f"  combiner {manifest['combiner']}",
            "  members  "
            + ", ".join(f"{m['ref']} (weight {m['weight']:g})" for m in manifest["members"]),
        ]
    else:
        model = manifest["model"]
        lines = [
            f"{manifest['name']}:{manifest['version']}  {manifest['precision']}  "
            f"{model['size']} bytes  opset {model['opset']}  created {manifest['created_at']}",
            f"  sha256   {model['sha256']}",
        ]
        lineage = manifest.get("lineage") or {}
        fused = lineage.get("members")
        if fused:
            lines.append(
                f"  fused    {lineage.get('combiner')} of "
                + ", ".join(f"{m['name']}:{m['version']}" for m in fused)
            )
    lines += [
        f"  inputs   {tensors(manifest['inputs'])}",
        f"  outputs  {tensors(manifest['outputs'])}",
    ]
    if manifest["metrics"]:
        lines.append("  metrics")
        width = max(len(k) for k in manifest["metrics"])
        lines += [
            f"    {key:<{width}}  {_value(value)}" for key, value in manifest["metrics"].items()
        ]
    if manifest.get("labels"):
        lines.append(f"  labels   {', '.join(map(str, manifest['labels']))}")
    lines.append(f"  golden samples: {len(manifest['golden_samples'])}")
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value)


def alias_outcome(release: Release) -> str | None:
    """What happened to the alias a release asked for.

    Moved: the ``NAME@ALIAS -> V`` line to show (``None`` without an alias).
    Skipped by the deploy policy: a warning on stderr; the exit code is unchanged.
    Refused when the registry's bytes were verified: :class:`IntegrityError` (exit 5).
    """
    status = release.alias_status
    if status is None:
        return None
    assert release.deployment is not None  # a status comes from a deployment
    reason = release.deployment.reason
    if status == "failed":
        raise IntegrityError(
            f"version {release.version} was published but failed verification from the "
            f"registry, so {release.alias_name} did not move: {reason}"
        )
    if status == "skipped":
        print(
            f"maas: warning: {release.name}@{release.alias_name} not moved: {reason}",
            file=sys.stderr,
        )
        return None
    return f"{release.name}@{release.alias_name} -> {release.version}"


def registry_for(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The registry ``--registry`` names. Only publishing creates one: any other
    command on a path that is not a registry fails (exit 4), naming the path."""
    from maas.registry import open_registry

    return open_registry(args.registry, must_exist=not create)
