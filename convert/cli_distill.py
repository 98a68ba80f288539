"""`maas distill`: its arguments, and its output (the table, or --json)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from maas.errors import InvalidInput


def register_distill(commands: Any, common: argparse.ArgumentParser) -> None:
    from .distill import DEFAULT_ALPHA, DEFAULT_EPOCHS, DEFAULT_TEMPERATURE

    distill = commands.add_parser(
        "distill",
        parents=[common],
        help="train a smaller dense student on a teacher's soft labels",
        description="Knowledge distillation: train a dense student (--hidden) on TEACHER's "
        "soft labels at --temperature with alpha*CE(hard) + (1-alpha)*T^2*KL(soft), and the "
        "same student on hard labels alone as the baseline. Writes DIR/model.keras (run "
        "`maas convert` on it) and DIR/distill.json (settings, teacher, figures).",
    )
    distill.add_argument(
        "teacher", metavar="TEACHER", help="a .keras file, or NAME:VERSION / NAME@ALIAS"
    )
    distill.add_argument("--train-data", type=Path, required=True, metavar="NPZ")
    distill.add_argument("--eval-data", type=Path, required=True, metavar="NPZ")
    distill.add_argument("--out", type=Path, required=True, metavar="DIR")
    distill.add_argument(
        "--hidden",
        type=_hidden,
        default=[32],
        metavar="W[,W...]",
        help="the student's hidden layer widths (default: 32)",
    )
    distill.add_argument(
        "--temperature", type=_number("--temperature"), default=DEFAULT_TEMPERATURE, metavar="T"
    )
    distill.add_argument(
        "--alpha",
        type=_number("--alpha"),
        default=DEFAULT_ALPHA,
        help="weight of the hard-label loss (default: 0.3)",
    )
    distill.add_argument("--epochs", type=_number("--epochs", int), default=DEFAULT_EPOCHS)
    distill.add_argument("--seed", type=_number("--seed", int), default=0)
    distill.set_defaults(run=run_distill)


def _hidden(text: str) -> list[int]:
    from .distill import parse_hidden

    return parse_hidden(text)


def _number(flag: str, kind: type = float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise InvalidInput(f"invalid {flag} {text!r}: a number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"invalid {flag} {text!r}: a finite number")
        return value

    return parse


def run_distill(args: argparse.Namespace) -> int:
    from .distill import DistillOptions, distill
    from .progress import Reporter

    result = distill(
        DistillOptions(
            teacher=args.teacher,
            train_data=args.train_data,
            eval_data=args.eval_data,
            out=args.out,
            hidden=args.hidden,
            temperature=args.temperature,
            alpha=args.alpha,
            epochs=args.epochs,
            seed=args.seed,
            registry=args.registry,
        ),
        Reporter.for_cli(args.json),
    )
    print(json.dumps(result.as_json(), indent=2) if args.json else result.table())
    return 0
