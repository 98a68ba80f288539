"""The modules under test, imported the way the installed CLI imports them.

At run time this is ``maas.convert`` (convert/ mapped in by pyproject's
package-dir). mypy knows the same files as the top-level package ``convert``
(its ``files`` setting), and cannot follow the package-dir mapping, so it is
shown that name instead: the code is identical.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convert import (
        cli,
        data,
        lineage,
        optimize,
        pipeline,
        progress,
        prune,
        quality_gate,
        sources,
        tfimport,
        to_onnx,
        train,
    )
else:
    from maas.convert import (
        cli,
        data,
        lineage,
        optimize,
        pipeline,
        progress,
        prune,
        quality_gate,
        sources,
        tfimport,
        to_onnx,
        train,
    )

__all__ = [
    "cli",
    "data",
    "lineage",
    "optimize",
    "pipeline",
    "progress",
    "prune",
    "quality_gate",
    "sources",
    "tfimport",
    "to_onnx",
    "train",
]
