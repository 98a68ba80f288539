"""The ``maas`` command line.

Every subcommand takes ``--registry URL`` and ``--json``. Errors are one line
on stderr and an exit code taken from the error class (see :mod:`maas.errors`):
2 bad input or refused model, 3 conflict, 4 not found, 5 registry/I-O/integrity.
Heavy modules (onnx, onnxruntime, boto3 and, for conversion, TensorFlow) are
imported only by the commands that need them, so ``maas --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from maas import __version__
from maas.cli_output import alias_outcome, describe_alias, describe_manifest, emit, progress_bar
from maas.errors import InvalidInput, MaasError
from maas.names import ModelRef, check_alias, check_name, parse_version

EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the error and exits 2; we want exactly one
        # line, raised through the same path as every other bad input.
        raise InvalidInput(f"{self.prog}: {message}")


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--registry",
        metavar="URL",
        help="s3://BUCKET[/PREFIX], file://PATH or a directory "
        "(default: $MAAS_REGISTRY, else .maas/registry)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog="maas", description="Machine-learning models as a service on AWS Lambda.")
    parser.add_argument("--version", action="version", version=f"maas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    publish = commands.add_parser(
        "publish", parents=[common], help="publish an ONNX file as the model's next version"
    )
    publish.add_argument("model", type=Path, metavar="MODEL.onnx")
    publish.add_argument("--name", required=True, type=check_name)
    publish.add_argument("--alias", type=check_alias, help="then move ALIAS to the new version")
    publish.add_argument("--reason", help="recorded in the alias history")
    publish.set_defaults(run=_publish)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="local HTTP API over a registry, for development and tests (not for production)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080)
    serve.set_defaults(run=_serve)

    models = commands.add_parser("models", help="inspect and move models, versions, aliases")
    sub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)

    listing = sub.add_parser("list", parents=[common], help="list the models")
    listing.set_defaults(run=_list)

    show = sub.add_parser("show", parents=[common], help="show NAME, NAME:VERSION or NAME@ALIAS")
    show.add_argument("ref", type=ModelRef.parse, metavar="NAME[:VERSION|@ALIAS]")
    show.set_defaults(run=_show)

    alias = sub.add_parser("alias", parents=[common], help="move an alias by compare-and-swap")
    alias.add_argument("name", type=check_name)
    alias.add_argument("alias", type=check_alias)
    alias.add_argument("version", type=parse_version)
    alias.add_argument("--canary", type=parse_version, metavar="VERSION")
    alias.add_argument("--weight", type=_weight, metavar="W", help="canary share, 0 < W < 1")
    alias.add_argument("--reason", help="recorded in the alias history")
    alias.set_defaults(run=_alias)

    rollback = sub.add_parser("rollback", parents=[common], help="move an alias back")
    rollback.add_argument("name", type=check_name)
    rollback.add_argument("--alias", type=check_alias, default="production")
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

    from maas.convert.cli import register as register_convert  # imports nothing heavy

    register_convert(commands, common)
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise InvalidInput(f"invalid port {text!r}: an integer from 0 to 65535 (0 = any free port)")
    return int(text)


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"invalid canary weight {text!r}: a number between 0 and 1") from None
    if not 0.0 < value < 1.0:
        raise InvalidInput(f"invalid canary weight {text!r}: must be strictly between 0 and 1")
    return value


# ------------------------------------------------------------------ commands


def _registry(args: argparse.Namespace) -> Any:
    from maas.registry import open_registry

    return open_registry(args.registry)


def _publish(args: argparse.Namespace) -> None:
    from maas.promotion import release

    registry = _registry(args)
    size = args.model.stat().st_size if args.model.is_file() else 0
    with progress_bar(args, size, f"upload {args.model.name}") as progress:
        released = release(
            registry, args.model, args.name, alias=args.alias, progress=progress, reason=args.reason
        )
    document: dict[str, Any] = {"name": released.name, "version": released.version}
    if args.alias is not None:
        document["alias"] = released.alias_report()
    emit(args, document, str(released.version))
    # The bare version stays the whole of stdout (scripts read it); a skip warns on
    # stderr and a refusal exits 5, exactly as `maas convert --alias` reports them.
    alias_outcome(released)


def _list(args: argparse.Namespace) -> None:
    registry = _registry(args)
    rows = []
    for name in registry.list_models():
        aliases = registry.list_aliases(name)
        rows.append(
            {
                "name": name,
                "latest_version": registry.latest_version(name),
                "aliases": {a: doc["version"] for a, doc in sorted(aliases.items())},
            }
        )
    lines = [f"{'NAME':<24} {'LATEST':>6}  ALIASES"]
    for row in rows:
        shown = ", ".join(f"{a}={v}" for a, v in row["aliases"].items()) or "-"
        lines.append(f"{row['name']:<24} {row['latest_version']:>6}  {shown}")
    emit(args, rows, "\n".join(lines) if rows else "no models")


def _show(args: argparse.Namespace) -> None:
    registry = _registry(args)
    ref: ModelRef = args.ref
    if ref.version is not None:
        manifest = registry.get_manifest(ref.name, ref.version)
        emit(args, manifest, describe_manifest(manifest))
    elif ref.alias is not None:
        doc = registry.get_alias(ref.name, ref.alias)
        manifest = registry.get_manifest(ref.name, doc["version"])
        emit(
            args,
            {**manifest, "alias": doc},
            describe_alias(ref.name, doc) + "\n" + describe_manifest(manifest),
        )
    else:
        versions = registry.require_model(ref.name)
        aliases = registry.list_aliases(ref.name)
        human = [f"{ref.name}: versions {', '.join(map(str, versions))}"]
        human += ["  " + describe_alias(ref.name, doc) for doc in aliases.values()]
        emit(args, {"name": ref.name, "versions": versions, "aliases": aliases}, "\n".join(human))


def _alias(args: argparse.Namespace) -> None:
    doc = _registry(args).set_alias(
        args.name,
        args.alias,
        args.version,
        canary=args.canary,
        weight=args.weight,
        reason=args.reason,
    )
    emit(args, doc, describe_alias(args.name, doc))


def _rollback(args: argparse.Namespace) -> None:
    doc = _registry(args).rollback(args.name, args.alias, reason=args.reason)
    emit(args, doc, describe_alias(args.name, doc))


def _pull(args: argparse.Namespace) -> None:
    registry = _registry(args)
    version, _ = registry.resolve(args.ref)
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


def _serve(args: argparse.Namespace) -> None:
    import dataclasses

    from maas.config import ServingConfig
    from maas.lambda_entry import inference_handler
    from maas.local_server import LocalApiServer
    from maas.store import registry_url

    config = dataclasses.replace(ServingConfig.from_env(), registry_url=registry_url(args.registry))
    handler = inference_handler(config)
    try:
        server = LocalApiServer((args.host, args.port), handler, config.max_body_bytes)
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    started = {"url": server.url, "registry": config.registry_url}
    # One line, so a supervising process can read the URL of a --port 0 server.
    print(
        json.dumps(started)
        if args.json
        else f"maas serving {config.registry_url} at {server.url} "
        "(development server; Ctrl-C stops)"
    )
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _history(args: argparse.Namespace) -> None:
    registry = _registry(args)
    registry.require_model(args.name)
    if args.repair:
        for alias in registry.repair_history(args.name):
            print(f"maas: repaired the history of {args.name}@{alias}", file=sys.stderr)
    records = registry.history(args.name, args.alias)
    lines = [f"{'AT':<28} {'ALIAS':<12} {'FROM':>4} -> {'TO':<4} {'ACTION':<8} BY / REASON"]
    for r in records:
        origin = "-" if r["from"] is None else str(r["from"])
        canary = f" +canary {r['canary']['version']}@{r['canary']['weight']}" if r["canary"] else ""
        lines.append(
            f"{r['at']:<28} {r['alias']:<12} {origin:>4} -> {r['to']:<4} "
            f"{r.get('action', 'move'):<8} {r['by']} / {r['reason'] or ''}{canary}"
        )
    emit(args, records, "\n".join(lines) if records else "no alias moves")


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = args.run(args)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            return code
    except MaasError as exc:
        print(f"maas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("maas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("MAAS_DEBUG"):
            raise
        print(
            f"maas: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(set MAAS_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
