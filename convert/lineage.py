"""Where a converted model came from: library versions and the git commit."""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from maas import __version__

#: Manifest key → distributions that provide it (first one installed wins).
_LIBRARIES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"),
    "keras": ("keras",),
    "tf2onnx": ("tf2onnx",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
}


def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported)."""
    found = {"maas": __version__}
    for key, distributions in _LIBRARIES.items():
        for distribution in distributions:
            try:
                found[key] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return found


def git_commit(where: Path | None = None) -> tuple[str | None, bool]:
    """The commit checked out at ``where`` (default: the working directory) and whether
    the tree has uncommitted changes; ``(None, False)`` outside a git checkout."""
    git = shutil.which("git")
    if git is None:
        return None, False
    cwd = str(where or Path.cwd())
    try:
        head = subprocess.run(
            [git, "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return None, False
        status = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, False
    return head.stdout.strip() or None, bool(status.stdout.strip())


#: Written by `maas distill` beside the student it trained.
DISTILL_FILE = "distill.json"


def read_distillation(model_path: Path, model_sha256: str) -> dict[str, Any] | None:
    """The ``distill.json`` beside a student, for its lineage (teacher, settings, figures):
    only when it names this very file, so a teacher saved beside it is not "distilled"."""
    import json

    path = model_path.parent / DISTILL_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None  # not ours, or damaged: lineage goes without it rather than failing
    if not isinstance(document, dict) or document.get("student_sha256") != model_sha256:
        return None
    return document
