"""The ``maas train-example`` and ``maas convert`` subcommands.

:func:`register` adds them to the main parser's subcommands. This module
imports nothing heavy: TensorFlow, onnx and onnxruntime load only when one of
these commands runs, so ``maas --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from maas.errors import InvalidInput
from maas.names import check_writable_alias, check_writable_name

#: Duplicated from the modules that own them, which this module must not import.
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static")
PREFERENCES = ("smallest", "accurate", "fastest")
DATASETS = ("digits", "mnist")


def _precisions(text: str) -> list[str]:
    from .pipeline import parse_precisions

    return parse_precisions(text)


def _points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"invalid --max-accuracy-drop {text!r}: a number of points") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"invalid --max-accuracy-drop {text!r}: points must be >= 0")
    return value


def _sparsities(text: str) -> list[float]:
    from .prune import parse_sparsities

    return parse_sparsities(text)


def _count(what: str) -> Any:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or len(text) > 6:
            raise InvalidInput(f"invalid {what} {text!r}: a whole number >= 0")
        return int(text)

    return parse


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"invalid --min-agreement {text!r}: a percentage") from None
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise InvalidInput(f"invalid --min-agreement {text!r}: a percentage from 0 to 100")
    return value


def _positive(what: str) -> Any:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise InvalidInput(f"invalid {what} {text!r}: a positive integer")
        return int(text)

    return parse


def _seed(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"invalid --seed {text!r}: a non-negative integer")
    return int(text)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``train-example`` and ``convert`` to ``commands`` (the main parser's subparsers).

    ``common`` is the parent parser carrying ``--registry`` and ``--json``. Each
    subparser sets ``run``; a non-zero int it returns is the exit code.
    """
    train = commands.add_parser(
        "train-example",
        parents=[common],
        help="train the reference Keras model (digits, offline) and its eval/calib data",
        description="Train Flatten -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax) "
        "with Adam and write DIR/model.keras, DIR/eval.npz, DIR/calib.npz and "
        "DIR/training.json (the settings, kept for lineage).",
    )
    train.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's bundled 8x8 digits (default, offline); "
        "mnist: --data mnist.npz, or Keras' downloader when online",
    )
    train.add_argument("--data", type=Path, metavar="PATH", help="a local mnist.npz")
    train.add_argument(
        "--epochs",
        type=_positive("--epochs"),
        metavar="N",
        help="default: 30 for digits, 5 for mnist",
    )
    train.add_argument("--seed", type=_seed, default=0, metavar="S")
    train.add_argument("--out", type=Path, required=True, metavar="DIR")
    train.set_defaults(run=run_train)

    from .cli_distill import register_distill

    register_distill(commands, common)

    convert = commands.add_parser(
        "convert",
        parents=[common],
        help="convert a Keras/SavedModel/tflite/ONNX model to validated ONNX variants",
        description="Convert SRC to ONNX with tf2onnx, optimise it, build the requested "
        "precisions, validate every variant against SRC, refuse those that fail "
        "the quality gate and (with --publish) publish the others. Exits 2 when "
        "any variant was refused.",
    )
    convert.add_argument(
        "source",
        type=Path,
        metavar="SRC",
        help=".keras file, SavedModel directory, .tflite or .onnx",
    )
    convert.add_argument("--name", required=True, type=check_writable_name, help="the model's name")
    convert.add_argument(
        "--eval-data", type=Path, metavar="NPZ", help="x (and optionally y labels) to validate on"
    )
    convert.add_argument(
        "--calib-data",
        type=Path,
        metavar="NPZ",
        help="x to calibrate int8-static on (never the eval data)",
    )
    convert.add_argument(
        "--precision",
        type=_precisions,
        default=["fp32", "int8-dynamic"],
        dest="precisions",
        metavar="LIST",
        help=f"comma-separated, from {', '.join(PRECISIONS)} (default: fp32,int8-dynamic)",
    )
    convert.add_argument(
        "--max-accuracy-drop",
        type=_points,
        default=1.0,
        metavar="PTS",
        help="refuse a variant whose accuracy is more than PTS points below "
        "the source model's (default: 1.0)",
    )
    convert.add_argument(
        "--min-agreement",
        type=_percent,
        default=98.0,
        metavar="PCT",
        help="refuse a precision variant (fp16, int8) whose top-1 differs from its source's "
        "on more than 100-PCT percent of the eval rows (default: 98)",
    )
    convert.add_argument(
        "--prefer",
        choices=PREFERENCES,
        default="balanced",
        help="which passing variant --alias points at: balanced = the smallest whose p50 at "
        "batch 64 is at most 1.25x the fastest's (default); smallest; accurate; fastest",
    )
    convert.add_argument(
        "--opset", type=_positive("--opset"), metavar="N", help="ONNX opset (default: 17)"
    )
    convert.add_argument(
        "--publish", action="store_true", help="publish every passing variant as a new version"
    )
    convert.add_argument(
        "--alias",
        type=check_writable_alias,
        metavar="A",
        help="point A at the preferred passing variant (needs --publish)",
    )
    convert.add_argument(
        "--force",
        action="store_true",
        help="move the alias even to a version whose signature differs (recorded as forced)",
    )
    convert.add_argument(
        "--input-names",
        type=lambda text: _names(text, "--input-names"),
        metavar="A[,B]",
        help="rename the ONNX graph's inputs, in order (one signature across source formats)",
    )
    convert.add_argument(
        "--output-names",
        type=lambda text: _names(text, "--output-names"),
        metavar="Y[,Z]",
        help="rename the ONNX graph's outputs, in order",
    )
    convert.add_argument(
        "--prune",
        type=_sparsities,
        default=[],
        metavar="S[,S...]",
        help="also build magnitude-pruned variants at these sparsities (0 < S < 1), each at "
        "every --precision; Keras sources only",
    )
    convert.add_argument(
        "--train-data",
        type=Path,
        metavar="NPZ",
        help="the split the model was fitted on (x, y): --prune fine-tunes on it",
    )
    convert.add_argument(
        "--fine-tune-epochs",
        type=_count("--fine-tune-epochs"),
        default=10,
        metavar="N",
        help="epochs of fine-tuning while pruning (default: 10; 0 = one-shot pruning)",
    )
    convert.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="class labels, one per line in class-index order (UTF-8), kept in each "
        "manifest (default: those in the source's training.json, if any)",
    )
    convert.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also keep the variants here, as NAME-PRECISION.onnx",
    )
    convert.set_defaults(run=run_convert)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="the main job end to end: train, convert, publish, serve, call over HTTP",
        description="Train the reference model on digits, convert it to fp32 and int8-dynamic, "
        "validate and publish both to a local registry, start `maas serve` on a free "
        "port, call it with V2 JSON, V2 binary (tritonclient) and TF Serving "
        "requests, and print predictions beside the true labels.",
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=Path(".maas/demo"),
        metavar="DIR",
        help="working directory: new, empty, or one an earlier demo made (it empties only "
        "what it wrote; default: .maas/demo)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive("--epochs"),
        metavar="N",
        help="training epochs (default: the train-example default)",
    )
    demo.set_defaults(run=run_demo)


def run_train(args: argparse.Namespace) -> int:
    from .progress import Reporter
    from .train import train_example

    result = train_example(
        args.out,
        dataset=args.dataset,
        data=args.data,
        epochs=args.epochs,
        seed=args.seed,
        reporter=Reporter.for_cli(args.json),
    )
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        s = result.settings
        print(
            f"trained on {s['dataset']['name']} for {s['epochs']} epochs (seed {s['seed']}): "
            f"train accuracy {s['final_accuracy']:.2%}, eval accuracy {s['eval_accuracy']:.2%}"
        )
        print(f"  model  {result.model}")
        print(f"  eval   {result.eval_data}  ({s['samples']['eval']} samples)")
        print(f"  calib  {result.calib_data}  ({s['samples']['calib']} samples)")
        print(
            f"  train  {result.train_data}  ({s['samples']['train']} samples, the split it fitted)"
        )
    return 0


def _names(text: str, flag: str) -> list[str]:
    from .io_names import parse_names

    return parse_names(text, flag)


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    return demo(args.workdir, args.epochs, args.registry, args.json)


def run_convert(args: argparse.Namespace) -> int:
    from maas.cli_output import alias_outcome
    from maas.labels import read_labels

    from .pipeline import ConvertOptions, convert_model
    from .progress import Reporter

    options = ConvertOptions(
        source=args.source,
        name=args.name,
        precisions=args.precisions,
        eval_data=args.eval_data,
        calib_data=args.calib_data,
        max_accuracy_drop=args.max_accuracy_drop,
        min_agreement=args.min_agreement,
        prefer=args.prefer,
        opset=args.opset,
        publish=args.publish,
        alias=args.alias,
        registry=args.registry,
        out=args.out,
        force=args.force,
        input_names=args.input_names,
        output_names=args.output_names,
        labels=read_labels(args.labels) if args.labels is not None else None,
        prune=args.prune,
        train_data=args.train_data,
        fine_tune_epochs=args.fine_tune_epochs,
    )
    result = convert_model(options, Reporter.for_cli(args.json))
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(result.table())
        if not args.publish and args.out is None:
            print("nothing kept: a dry run (add --publish to publish, --out DIR to keep the files)")
    if result.alias_release is not None:
        moved = alias_outcome(result.alias_release)
        if moved is not None and not args.json:
            print(moved)
    return result.exit_code
