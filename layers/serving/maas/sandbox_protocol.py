"""What the verification child and its parent agree on: the stage lines the child
prints, how a memory failure reads, and /proc figures. Imported by both, so the
parent never imports the child (which imports what it checks with)."""

from __future__ import annotations

from pathlib import Path

STAGE_PREFIX = "maas-sandbox-stage: "

#: How an allocation that hit the limit shows up in messages from Python,
#: protobuf (upb) and onnxruntime (BFCArena, std::bad_alloc).
MEMORY_MARKERS = (
    "memoryerror",
    "bad_alloc",
    "bad allocation",
    "failed to allocate",
    "alloc failed",
    "cannot allocate memory",
    "out of memory",
)


def is_memory_failure(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in MEMORY_MARKERS)


def status_kb(field: str, pid: int | str = "self") -> int:
    """A field of /proc/PID/status in KiB (0 where /proc or the field is not there)."""
    try:
        with Path(f"/proc/{pid}/status").open() as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
