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
from maas.cli_drift import register_drift
from maas.cli_ensemble import register as register_ensemble
from maas.cli_models import register as register_models
from maas.cli_output import alias_outcome, emit, progress_bar, registry_for
from maas.errors import InvalidInput, MaasError
from maas.names import check_writable_alias, check_writable_name

EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the error and exits 2; we want exactly one
        # line, raised through the same path as every other bad input.
        # "maas: error: " is printed once, by main(); name only the subcommand.
        where = self.prog.removeprefix("maas").strip()
        raise InvalidInput(f"{where}: {message}" if where else message)


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
    # Accepted before the subcommand too; the subcommand's own --registry wins.
    parser.add_argument("--registry", dest="registry_before", metavar="URL", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    publish = commands.add_parser(
        "publish", parents=[common], help="publish an ONNX file as the model's next version"
    )
    publish.add_argument("model", type=Path, metavar="MODEL.onnx")
    publish.add_argument("--name", required=True, type=check_writable_name)
    publish.add_argument(
        "--alias", type=check_writable_alias, help="then move ALIAS to the new version"
    )
    publish.add_argument("--reason", help="recorded in the alias history")
    publish.add_argument(
        "--reference-data",
        type=Path,
        metavar="NPZ",
        help="record drift reference statistics of this data (x, or one array per input) "
        "in the manifest, so serving and `maas drift` can score drift against it",
    )
    publish.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="class labels, one per line in class-index order (UTF-8); kept in the manifest "
        "and used by TF Serving's :classify",
    )
    publish.add_argument(
        "--force",
        action="store_true",
        help="move the alias even to a version whose signature differs (recorded as forced)",
    )
    publish.set_defaults(run=_publish)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="local HTTP API over a registry, for development and tests (not for production)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080)
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: one access line per request on stderr (default); json: what Lambda "
        "prints, structured logs and the EMF metric records, on stdout",
    )
    serve.set_defaults(run=_serve)

    register_models(commands, common)
    register_ensemble(commands, common)
    register_drift(commands, common)

    from maas.convert.cli import register as register_convert  # imports nothing heavy

    register_convert(commands, common)
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise InvalidInput(f"invalid port {text!r}: an integer from 0 to 65535 (0 = any free port)")
    return int(text)


# ------------------------------------------------------------------ commands


def _publish(args: argparse.Namespace) -> None:
    from maas.labels import read_labels
    from maas.promotion import release

    labels = read_labels(args.labels) if args.labels is not None else None
    registry = registry_for(args, create=True)
    size = args.model.stat().st_size if args.model.is_file() else 0
    with progress_bar(args, size, f"upload {args.model.name}") as progress:
        released = release(
            registry,
            args.model,
            args.name,
            alias=args.alias,
            progress=progress,
            reason=args.reason,
            force=args.force,
            details=_publish_details(args, labels),
        )
    document: dict[str, Any] = {"name": released.name, "version": released.version}
    if args.alias is not None:
        document["alias"] = released.alias_report()
    emit(args, document, str(released.version))
    # The bare version stays the whole of stdout (scripts read it); a skip warns on
    # stderr and a refusal exits 5, exactly as `maas convert --alias` reports them.
    alias_outcome(released)


def _publish_details(args: argparse.Namespace, labels: list[str] | None) -> dict[str, Any] | None:
    details: dict[str, Any] = {}
    if labels is not None:
        details["labels"] = labels
    if args.reference_data is not None:
        from maas.drift.samples import reference_from_file
        from maas.onnxfile import inspect_onnx

        info = inspect_onnx(args.model)
        details["monitoring"] = reference_from_file(
            args.model,
            args.reference_data,
            [spec.as_json() for spec in info.inputs],
            [spec.as_json() for spec in info.outputs],
        )
    return details or None


def _serve(args: argparse.Namespace) -> None:
    import dataclasses

    from maas.config import ServingConfig
    from maas.lambda_entry import inference_handler
    from maas.local_server import LocalApiServer
    from maas.store import registry_url

    config = dataclasses.replace(ServingConfig.from_env(), registry_url=registry_url(args.registry))
    registry_for(args)  # a mistyped registry fails here, naming the path
    handler = inference_handler(config)
    try:
        server = LocalApiServer(
            (args.host, args.port),
            handler,
            config.max_body_bytes,
            access_log=sys.stderr if args.log_format == "text" else None,
        )
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


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "registry", None) is None and args.registry_before:
            args.registry = args.registry_before
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
