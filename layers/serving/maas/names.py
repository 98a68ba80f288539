"""Model and alias names, and references such as ``digits:3`` or ``digits@production``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from maas.errors import InvalidInput

#: ``NAME:latest`` and the alias ``latest``: the highest committed version that is not
#: archived. Reserved: no alias of that name can be created.
LATEST = "latest"

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_RULE = "names match [a-z0-9][a-z0-9._-]{0,63}"


def check_name(name: str, what: str = "model name") -> str:
    """Return ``name`` unchanged if it is a valid model or alias name, else raise.

    Checked before any I/O, because names become storage keys: a slash or ``..``
    would otherwise address objects outside the model's own prefix.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(f"invalid {what} {name!r}: {_RULE}")
    return name


#: ``GET /v2/models/stats`` is Triton's statistics of every model, so no model may be
#: called that: its metadata route would be the statistics route.
RESERVED_MODEL_NAMES = frozenset({"stats"})


def check_writable_name(name: str) -> str:
    """A model name that may be published: valid, and not a reserved word."""
    check_name(name)
    if name in RESERVED_MODEL_NAMES:
        raise InvalidInput(
            f"{name!r} is reserved: GET /v2/models/{name} is the statistics route; "
            "choose another model name"
        )
    return name


def check_alias(alias: str) -> str:
    return check_name(alias, "alias name")


def check_writable_alias(alias: str) -> str:
    """An alias name that may be created or moved: valid, and not the reserved ``latest``."""
    check_alias(alias)
    if alias == LATEST:
        raise InvalidInput(
            f"{LATEST!r} is reserved: NAME:{LATEST} always names the highest unarchived "
            "version; choose another alias name"
        )
    return alias


def parse_version(text: str | int) -> int:
    """A version is a positive integer; accept it as text (from a URL or CLI)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 18:
        value = int(text)  # 18 digits: within int64, and far from Python's 4,300-digit limit
    else:
        shown = text if not isinstance(text, str) or len(text) <= 40 else text[:40] + "..."
        raise InvalidInput(f"invalid version {shown!r}: versions are positive integers")
    if value < 1:
        raise InvalidInput(f"invalid version {text!r}: versions are positive integers")
    return value


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        if "@" in text:
            name, _, alias = text.partition("@")
            return cls(check_name(name), alias=check_alias(alias))
        if ":" in text:
            name, _, version = text.partition(":")
            if version == LATEST:
                return cls(check_name(name), alias=LATEST)
            return cls(check_name(name), version=parse_version(version))
        return cls(check_name(text))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias == LATEST:
            return f"{self.name}:{LATEST}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
