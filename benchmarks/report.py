"""The last step of `make bench`: package sizes, cost per million predictions, the
Targets table (inserted under the machine description) and the chart, from what the
benches recorded in results.json in this run.

Not a test.
"""

from __future__ import annotations

import math
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common import TARGETS_MARKER, record, results
from tests.infra.test_build import (
    FUNCTION_LAYERS,
    INFERENCE_LIMIT_BYTES,
    LIMIT_BYTES,
    build_dir,
    inspect,
)

CHART = Path("benchmarks/results.png")
MB = 2**20
#: Published prices, us-east-1, as listed on the pages named (read for this issue, 2026-12).
LAMBDA_GB_S = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
SAGEMAKER_SERVERLESS_PER_S = {1024: 0.0000200, 2048: 0.0000400}
PRICE_SOURCES = (
    "Lambda: aws.amazon.com/lambda/pricing ($0.0000166667 per GB-s x86_64, $0.0000133334 "
    "arm64, $0.20 per million requests); HTTP API: aws.amazon.com/api-gateway/pricing ($1.00 "
    "per million, first 300 million); SageMaker Serverless Inference: "
    "aws.amazon.com/sagemaker/pricing ($0.0000200 per second at 1 GB, $0.0000400 at 2 GB, "
    "data processing not counted). us-east-1, as published when read for this run "
    "(2026-12); prices change, check them."
)
#: Lambda gives a full vCPU at 1,769 MB, and CPU in proportion below it.
FULL_VCPU_MB = 1769


def distribution_bytes(name: str, seen: set[str] | None = None) -> int:
    """Installed size of a distribution and everything it requires (unextra'd)."""
    seen = set() if seen is None else seen
    key = name.lower().replace("_", "-")
    if key in seen:
        return 0
    seen.add(key)
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0
    files = [Path(str(dist.locate_file(f))) for f in dist.files or []]
    total = sum(path.stat().st_size for path in files if path.is_file())
    for requirement in dist.requires or []:
        if "extra ==" in requirement:
            continue
        dep = requirement.split(";")[0].strip().split(" ")[0]
        for stop in "<>=!~[(":
            dep = dep.split(stop)[0]
        total += distribution_bytes(dep, seen)
    return total


def sizes() -> dict[str, Any]:
    out: dict[str, Any] = {"limit_mb": LIMIT_BYTES / MB, "target_mb": INFERENCE_LIMIT_BYTES / MB}
    for arch in ("x86_64", "arm64"):
        directory = build_dir(arch)
        if (directory / "ServingLayer").is_dir():
            report = inspect(directory, arch)
            out[arch] = {name: report.total(name) / MB for name in FUNCTION_LAYERS}
    out["tensorflow_cpu_mb"] = distribution_bytes("tensorflow-cpu") / MB
    return out


def cost(handler_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dollars per million predictions from the measured warm durations, one request each.

    The duration measured here (one core) is scaled by Lambda's CPU share below a
    full vCPU; Lambda bills per started millisecond.
    """
    rows = []
    for model, batch in (("digits", 1), ("mlp", 64)):
        measured = next(
            r["p50_us"] / 1000
            for r in handler_rows
            if (r["model"], r["batch"], r["case"]) == (model, batch, "handler, V2 JSON")
        )
        for memory in (512, 1024, 2048):
            billed_ms = math.ceil(measured * max(1.0, FULL_VCPU_MB / memory))
            row: dict[str, Any] = {"model": model, "batch": batch, "memory": memory}
            row["billed_ms"] = billed_ms
            for arch, gb_s in LAMBDA_GB_S.items():
                compute = billed_ms / 1000 * memory / 1024 * gb_s
                per_request = compute + LAMBDA_REQUEST + HTTP_API_REQUEST
                row[arch] = per_request * 1e6 / batch  # per million predictions
            sagemaker = SAGEMAKER_SERVERLESS_PER_S.get(memory)
            row["sagemaker"] = (
                None if sagemaker is None else billed_ms / 1000 * sagemaker * 1e6 / batch
            )
            rows.append(row)
    return rows


def targets(data: dict[str, Any]) -> list[tuple[str, str, bool]]:
    by = {(r["model"], r["batch"], r["case"]): r for r in data["handler"]}
    mlp = by[("mlp", 64, "handler, V2 JSON")]["vs_stdlib"]
    digits = by[("digits", 1, "handler, V2 JSON")]["vs_stdlib"]
    cold = {r["case"]: r for r in data["cold"]}["maas"]
    out = [
        (
            "MLP 784-1024-1024-10, batch 64: JSON handler <= 0.4x the stdlib baseline",
            f"{mlp:.3f}x",
            mlp <= 0.4,
        ),
        (
            "digits, batch 1: JSON handler p50 <= 2.5x the stdlib baseline",
            f"{digits:.3f}x",
            digits <= 2.5,
        ),
        (
            "cold start from S3 <= 1.2x the naive handler (wall)",
            f"{cold['wall_vs_naive']:.3f}x",
            cold["wall_vs_naive"] <= 1.2,
        ),
        (
            "cold start peak RSS <= 1.1x the naive handler's",
            f"{cold['rss_vs_naive']:.3f}x",
            cold["rss_vs_naive"] <= 1.1,
        ),
    ]
    x86 = data["sizes"].get("x86_64")
    if x86:
        size = x86["InferenceFunction"]
        out.append(
            (
                "inference function + layers <= 120 MB unzipped, x86_64",
                f"{size:.1f} MB",
                size <= 120,
            )
        )
    else:
        out.append(("inference function + layers <= 120 MB unzipped, x86_64", "not built", False))
    return out


def chart(data: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    handler = data["handler"]
    cases = list(dict.fromkeys(r["case"] for r in handler if "predict" not in r["case"]))
    groups = list(dict.fromkeys((r["model"], r["batch"]) for r in handler))
    ax = axes[0][0]
    width = 0.8 / len(cases)
    for i, case in enumerate(cases):
        values = [
            next(r["p50_us"] for r in handler if (r["model"], r["batch"], r["case"]) == (*g, case))
            for g in groups
        ]
        ax.bar([j + i * width for j in range(len(groups))], values, width, label=case)
    ax.set_xticks([j + 0.4 for j in range(len(groups))], [f"{m} b{b}" for m, b in groups])
    ax.set_yscale("log")
    ax.set_ylabel("p50 (µs, log)")
    ax.set_title("Warm latency (Keras predict left out: tens of ms)")
    ax.legend(fontsize=7)

    ax = axes[0][1]
    mobile = data.get("mobilenet", {}).get("rows", [])
    names = [r["variant"] for r in mobile]
    for offset, batch in ((0.0, 1), (0.4, 8)):
        ax.bar(
            [j + offset for j in range(len(names))],
            [r[f"p50_b{batch}"] for r in mobile],
            0.4,
            label=f"batch {batch}",
        )
    ax.set_xticks([j + 0.2 for j in range(len(names))], names, fontsize=8)
    ax.set_ylabel("p50 (ms)")
    ax.set_title("MobileNetV2 0.35 @96: variants against Keras")
    ax.legend()

    ax = axes[0][2]
    cold = data["cold"]
    ax.barh([r["case"][:34] for r in cold], [r["wall_ms"] for r in cold])
    for y, r in enumerate(cold):
        ax.text(r["wall_ms"], y, f" {r['peak_mib']:.0f} MiB", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fresh process to first answer (ms, log); peak RSS beside")
    ax.set_title("Cold start, model in S3 (moto)")

    ax = axes[1][0]
    sizes_ = data["sizes"]
    labels, values = [], []
    for arch in ("x86_64", "arm64"):
        for name, size in (sizes_.get(arch) or {}).items():
            labels.append(f"{arch}\n{name.removesuffix('Function')}")
            values.append(size)
    labels.append("tensorflow-cpu\n(installed)")
    values.append(sizes_["tensorflow_cpu_mb"])
    ax.bar(labels, values)
    ax.axhline(sizes_["limit_mb"], color="red", label="Lambda's 250 MB")
    ax.axhline(sizes_["target_mb"], color="orange", linestyle="--", label="120 MB target")
    ax.set_ylabel("unzipped MB")
    ax.set_title("Function + layers")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend()

    ax = axes[1][1]
    costs = data["cost"]
    labels = [f"{r['model']} b{r['batch']}\n{r['memory']} MB" for r in costs]
    for offset, key in ((0.0, "x86_64"), (0.27, "arm64"), (0.54, "sagemaker")):
        ax.bar(
            [j + offset for j in range(len(costs))],
            [r[key] or 0 for r in costs],
            0.27,
            label=key if key != "sagemaker" else "SageMaker Serverless",
        )
    ax.set_xticks([j + 0.27 for j in range(len(costs))], labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("$ per million predictions (log)")
    ax.set_title("Cost, from measured durations")
    ax.legend(fontsize=8)

    ax = axes[1][2]
    ax.axis("off")
    rows = [[t, m, "met" if ok else "NOT met"] for t, m, ok in targets(data)]
    redeploy = data.get("redeploy")
    if redeploy:
        rows.append(
            ["redeploy: upload to promoted", f"{redeploy['upload_to_promoted_s']:.2f} s", ""]
        )
        rows.append(["failed requests during the switch", str(redeploy["failed"]), ""])
    table = ax.table(
        cellText=rows,
        colLabels=["target", "measured", ""],
        loc="center",
        colWidths=[0.7, 0.18, 0.12],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    ax.set_title("Targets (this run)")
    fig.tight_layout()
    fig.savefig(CHART, dpi=90)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/RESULTS.md")
    data = results()
    data["sizes"] = sizes()
    record("sizes", data["sizes"])
    data["cost"] = cost(data["handler"])
    record("cost", data["cost"])
    lines = ["## Targets (this run)", "", "| target | measured | met |", "|---|---:|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(data)]
    lines += ["", f"![benchmarks](results.png) (`{CHART}`, regenerated by each run)", ""]
    text = out.read_text(encoding="utf-8").replace(TARGETS_MARKER, "\n".join(lines))
    text += "\n".join(size_section(data["sizes"]) + cost_section(data["cost"]))
    out.write_text(text, encoding="utf-8")
    chart(data)
    print("\n".join(lines))
    return 0


def size_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "# Package sizes",
        "",
        "From the SAM builds in `.aws-sam/build-ARCH` (`make build-x86_64 build-arm64`), unzipped,",
        "against Lambda's 250 MB; tensorflow-cpu is its installed size with its requirements",
        "(this venv), what a Keras handler would have to ship.",
        "",
        "| function + layers | x86_64 (MB) | arm64 (MB) |",
        "|---|---:|---:|",
    ]
    for name in FUNCTION_LAYERS:
        cells = [f"{(data.get(a) or {}).get(name, float('nan')):.1f}" for a in ("x86_64", "arm64")]
        lines.append(f"| {name} ({' + '.join(FUNCTION_LAYERS[name])}) | {' | '.join(cells)} |")
    lines += [
        f"| tensorflow-cpu alone (installed, with requirements) | "
        f"{data['tensorflow_cpu_mb']:.0f} | - |",
        "",
    ]
    return lines


def cost_section(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "# Cost per million predictions",
        "",
        "From the JSON handler's measured p50 (one core here), scaled by Lambda's CPU share",
        f"below {FULL_VCPU_MB} MB (one vCPU) and billed per started millisecond; one request",
        "per batch; Lambda request and HTTP API fees included. SageMaker Serverless Inference",
        "at the same duration and memory, its compute price alone. arm64 is priced at the",
        "x86_64 duration (no arm64 machine measured here).",
        "",
        "| model | batch | memory (MB) | billed ms | x86_64 ($) | arm64 ($) "
        "| SageMaker Serverless ($) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sagemaker = "-" if r["sagemaker"] is None else f"{r['sagemaker']:.4f}"
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['memory']} | {r['billed_ms']} | "
            f"{r['x86_64']:.4f} | {r['arm64']:.4f} | {sagemaker} |"
        )
    lines += ["", f"Prices: {PRICE_SOURCES}", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
