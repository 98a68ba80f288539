"""Hypothesis strategies for API Gateway HTTP API (payload 2.0) events.

Most events start from a request that would succeed and break it a little
(a mutated field, a lying length, a cut body, a broken gzip), because a
near-miss reaches much deeper into the code than noise does; the rest are
noise: any route, method, header and body.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import zlib
from typing import Any

from hypothesis import strategies as st

from maas.local_server import build_event


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int) -> Any:
    """``common`` ``odds`` times out of ``odds + 1``, else ``rare`` (``|`` would be 50/50)."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda c: common if c else rare)


HUGE_INTEGERS = st.sampled_from(
    [2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**4000]
)
INTEGERS = st.integers(-3, 70) | st.integers() | HUGE_INTEGERS
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan, 1e308, -0.0])
#: Any text, lone surrogates included: JSON can carry them as \ud800 escapes.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
NAMES = st.sampled_from(["input", "text", "x", "", "echo", "probabilities", "b64"]) | TEXT
B64 = st.builds(
    lambda raw, cut: {"b64": base64.b64encode(raw).decode()[:cut]},
    st.binary(max_size=12),
    st.integers(0, 24),
) | st.builds(lambda text: {"b64": text}, TEXT)

JSON_LEAVES = st.none() | st.booleans() | INTEGERS | FLOATS | TEXT | B64
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=24,
)


def nested(depth: int, leaf: Any = 0.5) -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    return value


DEEP = st.builds(nested, st.integers(60, 1100), st.sampled_from([0.5, "a", {"b64": "YQ=="}]))
SHAPES = (
    st.sampled_from([[1, 8, 8], [2, 8, 8], [0, 8, 8], [1, 64], [3], [0], [], [1] * 65])
    | st.lists(INTEGERS, max_size=8)
    | st.lists(st.just(1), min_size=60, max_size=70)
    | JSON_VALUES
)
DATATYPES = (
    st.sampled_from(
        ["FP32", "FP64", "FP16", "INT64", "INT8", "UINT64", "BOOL", "BYTES", "fp32", "STRING"]
    )
    | JSON_VALUES
)


# ------------------------------------------------------------- good requests
def digits_v2(batch: int = 1) -> dict[str, Any]:
    tensor = {"name": "input", "shape": [batch, 8, 8], "datatype": "FP32"}
    return {"inputs": [{**tensor, "data": [0.25] * (64 * batch)}]}


def strings_v2(texts: list[str]) -> dict[str, Any]:
    return {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}


#: Shapes that multiply to 0 elements, so that empty data matches them, whatever the rest.
EMPTY_SHAPES = st.sampled_from([[2**40, 2**40, 0], [2**63, 0, 1], [0] * 65, [0, 8, 8], [0]]) | (
    st.lists(INTEGERS.filter(lambda d: d >= 0), max_size=6).map(lambda dims: [*dims, 0])
)


@st.composite
def empty_tensor(draw: st.DrawFn, name: str) -> dict[str, Any]:
    datatype = draw(st.sampled_from(["FP32", "BYTES", "INT64"]))
    tensor = {"name": name, "shape": draw(EMPTY_SHAPES), "datatype": datatype, "data": []}
    return {"inputs": [tensor]}


OUTPUTS = {"digits": ["probabilities"], "strings": ["echo", "echo_bytes"]}


@st.composite
def with_options(draw: st.DrawFn, document: dict[str, Any], model: str) -> dict[str, Any]:
    """Optional parts of a V2 request: an id, requested outputs, binary flags."""
    if draw(st.booleans()):
        document["id"] = draw(TEXT)
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(OUTPUTS[model]), unique=True, max_size=2))
        document["outputs"] = [
            {"name": name, "parameters": {"binary_data": draw(st.booleans())}} for name in names
        ]
    if draw(st.booleans()):
        document["parameters"] = {"binary_data_output": draw(st.booleans())}
    return document


GOOD_V2_BY_MODEL = {
    "digits": mostly(st.integers(1, 3).map(digits_v2), empty_tensor("input"), odds=6).flatmap(
        lambda d: with_options(d, "digits")
    ),
    "strings": mostly(
        st.lists(TEXT, min_size=1, max_size=4).map(strings_v2), empty_tensor("text"), odds=6
    ).flatmap(lambda d: with_options(d, "strings")),
}
GOOD_TF_BY_MODEL = {
    "digits": st.sampled_from([{"instances": [[[0.5] * 8] * 8]}, {"inputs": [[[0.1] * 8] * 8]}]),
    "strings": st.one_of(
        st.lists(TEXT | B64, min_size=1, max_size=4).map(lambda texts: {"instances": texts}),
        st.lists(TEXT, min_size=1, max_size=4).map(lambda texts: {"inputs": {"text": texts}}),
    ),
}
GOOD_V2 = st.one_of(*GOOD_V2_BY_MODEL.values())
GOOD_TF = st.one_of(*GOOD_TF_BY_MODEL.values()).flatmap(
    lambda d: st.sampled_from([d, {**d, "signature_name": "serving_default"}])
)


# ---------------------------------------------------------------- mutation
def _paths(document: Any, prefix: tuple[Any, ...] = (), limit: int = 80) -> list[tuple[Any, ...]]:
    """Paths to the nodes below a JSON document's root, breadth first (so big lists don't
    crowd out the fields that matter). Replacing the root is the raw-body test's job."""
    found: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [(prefix, document)]
    while queue and len(found) < limit:
        path, node = queue.pop(0)
        children = (
            list(node.items())
            if isinstance(node, dict)
            else list(enumerate(node[:8]))
            if isinstance(node, list)
            else []
        )
        for key, child in children:
            found.append((*path, key))
            queue.append(((*path, key), child))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(document) if isinstance(document, dict) else list(document)
    if delete and not rest:
        del copy[head]
        return copy
    copy[head] = _replace(document[head], rest, value, delete) if rest else value
    return copy


KNOWN_KEYS = st.sampled_from(
    ["id", "name", "shape", "datatype", "data", "parameters", "outputs", "inputs", "instances"]
) | st.sampled_from(["binary_data_size", "binary_data", "binary_data_output", "signature_name"])


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> Any:
    """A good document with a few nodes replaced by, deleted for, or given a sibling of
    arbitrary JSON (a known key, mostly: unknown ones are ignored)."""
    document = draw(documents)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        value = draw(
            JSON_VALUES | SHAPES | DATATYPES | DEEP | st.sampled_from([[], {}, "", 0, -1, True])
        )
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if how == "add":
            path = (*path[:-1], draw(KNOWN_KEYS | NAMES))
            if not isinstance(_node(document, path[:-1]), dict):
                continue
        document = _replace(document, path, value, delete=how == "delete")
    return document


def _node(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def dumps(document: Any) -> bytes:
    """Python's JSON: bare NaN/Infinity tokens (which clients send) and \\u escapes."""
    return json.dumps(document).encode()


@st.composite
def damaged(draw: st.DrawFn, body: bytes) -> bytes:
    """The body, or the body cut short, padded with junk, or with one byte changed."""
    how = draw(st.sampled_from(["as is"] * 9 + ["cut", "junk", "flip"]))
    if how == "cut":
        return body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    if how == "junk":
        return body + draw(st.binary(min_size=1, max_size=8))
    if how == "flip" and body:
        index = draw(st.integers(0, len(body) - 1))
        return body[:index] + bytes([body[index] ^ draw(st.integers(1, 255))]) + body[index + 1 :]
    return body


# -------------------------------------------------------------- binary bodies
def _raw_tensor(spec: dict[str, Any]) -> bytes:
    if spec.get("datatype") == "BYTES":
        data = spec.get("data") or []
        encoded = [str(t).encode("utf-8", "surrogatepass") for t in data]
        return b"".join(len(e).to_bytes(4, "little") + e for e in encoded)
    count = len(spec.get("data") or [])
    return b"\x00\x00\x80\x3e" * count  # 0.25 as little-endian FP32


@st.composite
def binary_v2(draw: st.DrawFn, model: str) -> tuple[bytes, dict[str, str]]:
    """A binary-tensor request (JSON header + raw tensors), possibly lying about lengths."""
    document = draw(GOOD_V2_BY_MODEL[model])
    raws: list[bytes] = []
    for spec in document["inputs"]:
        raw = _raw_tensor(spec)
        raws.append(raw)
        spec.pop("data")
        spec["parameters"] = {"binary_data_size": len(raw)}
    document["parameters"] = {"binary_data_output": draw(st.booleans())}
    document = draw(mutated(st.just(document)))
    header = dumps(document)
    body = draw(damaged(header + b"".join(raws)))
    length: Any = len(header)
    lie = draw(st.sampled_from(["true"] * 6 + ["off", "text", "huge"]))
    if lie == "off":
        length += draw(st.integers(-len(header) - 2, 64))
    elif lie == "text":
        length = draw(TEXT)
    elif lie == "huge":
        length = draw(HUGE_INTEGERS)
    return body, {"inference-header-content-length": str(length)}


# -------------------------------------------------------------- transport
ENCODINGS = mostly(
    st.sampled_from(
        [None] * 12 + ["gzip", "deflate", "identity", "x-gzip", "gzip, gzip", "deflate, gzip", "br"]
    ),
    st.lists(st.sampled_from(["gzip", "identity", "deflate"]), min_size=3, max_size=40).map(
        ", ".join
    ),
    odds=12,
)


def encode(body: bytes, coding: str | None) -> bytes:
    """Apply the codings a Content-Encoding header names (unknown ones are left undone)."""
    for name in [c.strip() for c in (coding or "").split(",")][:4]:
        if name in ("gzip", "x-gzip"):
            body = gzip.compress(body, mtime=0)
        elif name == "deflate":
            body = zlib.compress(body)
    return body


HEADER_NAMES = st.sampled_from(
    ["content-type", "accept-encoding", "inference-header-content-length", "content-encoding"]
) | st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
HEADER_VALUES = st.sampled_from(
    ["application/json", "application/octet-stream", "gzip", "gzip;q=0", "*", "", "1" * 5000]
) | st.text(st.characters(min_codepoint=32, max_codepoint=0x7E), max_size=30)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)
ACCEPT = st.sampled_from([{}, {}, {"accept-encoding": "gzip"}, {"accept-encoding": "gzip;q=0"}])


@st.composite
def transported(
    draw: st.DrawFn, method: str, path: str, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """The event for a request, maybe compressed (correctly or not) and maybe with a body
    that is not the base64 it claims to be."""
    coding = draw(ENCODINGS)
    merged = {**draw(ACCEPT), **headers}
    if coding is not None:
        merged["content-encoding"] = coding
        body = draw(damaged(encode(body, coding)))
    if draw(st.booleans()):
        merged.setdefault("content-type", "application/json")
    event = build_event(method, path, merged, body)
    if draw(st.sampled_from([False] * 19 + [True])):
        event["isBase64Encoded"] = True
        event["body"] = draw(st.sampled_from(["!!!", "abc", "YQ=", "=" * 5])) + draw(TEXT)
    return event


# ----------------------------------------------------------------- routes
MODELS = mostly(st.sampled_from(["digits", "strings", "ghost", "Digits", "..", "a" * 65]), TEXT, 3)
#: Version segments: numbers of every awkward length (int() refuses over 4,300 digits).
VERSIONS = mostly(
    st.sampled_from(["1", "2", "0", "-1", "01", "9" * 19, "production", "staging", "²"])
    | st.sampled_from(["1" * 4301, "1" * 5000, "0" * 5000 + "1", "1" * 100_000]),
    TEXT,
    odds=4,
)
ROUTES = [
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/v2/models/{m}",
    "/v2/models/{m}/ready",
    "/v2/models/{m}/infer",
    "/v2/models/{m}/versions/{v}",
    "/v2/models/{m}/versions/{v}/ready",
    "/v2/models/{m}/versions/{v}/infer",
    "/v1/models/{m}",
    "/v1/models/{m}/metadata",
    "/v1/models/{m}:predict",
    "/v1/models/{m}/versions/{v}",
    "/v1/models/{m}/versions/{v}/metadata",
    "/v1/models/{m}/versions/{v}:predict",
    "/v1/models/{m}/labels/{v}",
    "/v1/models/{m}/labels/{v}:predict",
    "/openapi.json",
    "/{m}",
    "/v2/models/{m}/{v}/{v}/infer",
]
METHODS = mostly(
    st.sampled_from(["GET", "POST"] * 3 + ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8),
    odds=8,
)


def _url_safe(segment: str) -> str:
    # build_event splits the target like a URL; '?' and '#' would end the path.
    return segment.replace("?", "%3F").replace("#", "%23").replace("/", "%2F")


@st.composite
def paths(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(ROUTES))
    path = template.replace("{m}", _url_safe(draw(MODELS)), 1)
    path = path.replace("{v}", _url_safe(draw(VERSIONS)))
    suffix = draw(st.sampled_from(["", "", "", "/", "?x=1", "//"]))
    return path + suffix
