"""Count an ONNX file's nodes on the protobuf wire, before anything parses it.

Parsing materialises every message: a 20 MB file of ten million empty nodes
takes 1.5 GB inside ``onnx.load`` alone. protobuf has no lazy or streaming
parser for Python, so this walks the wire format by hand, skipping every
length-delimited field it does not descend into (initializers and other
tensors cost nothing) and stopping as soon as the count passes the cap. The
file is memory-mapped, so its pages are file cache, not process memory.

Nodes are counted wherever they may be: the main graph, subgraph attributes
(``If``/``Loop``/``Scan`` bodies, nested to any depth), local functions and
their attribute defaults, and training graphs. The walk itself costs a
Python step per field it visits, so the fields of those messages are capped
too (:data:`FIELDS_PER_NODE` per allowed node): ten million empty
initializers are refused as fast as ten million empty nodes.
"""

from __future__ import annotations

import mmap
from pathlib import Path

# Field numbers from onnx/onnx.proto3 that can lead to a NodeProto.
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _FUNCTION, _TRAINING = range(6)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},  # graph, training_info, functions
    _GRAPH: {1: _NODE},  # node
    _NODE: {5: _ATTRIBUTE},  # attribute
    _ATTRIBUTE: {6: _GRAPH, 11: _GRAPH},  # g, graphs
    _FUNCTION: {7: _NODE, 11: _ATTRIBUTE},  # node, attribute_proto
    _TRAINING: {1: _GRAPH, 2: _GRAPH},  # initialization, algorithm
}
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5

#: Fields allowed per allowed node in the messages walked: a node has about
#: six (inputs, outputs, name, op_type, attributes), a graph adds an
#: initializer and a value_info or two per node; 16 leaves room to spare.
FIELDS_PER_NODE = 16


class MalformedProtobuf(ValueError):
    """The bytes are not a well-formed protobuf message (e.g. a truncated file)."""


def _varint(data: mmap.mmap | bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedProtobuf(f"a varint runs past its message at byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


class TooManyNodes(ValueError):
    """More nodes, or more fields around them, than allowed."""


def count_nodes_in(data: mmap.mmap | bytes, limit: int) -> int:
    """The number of nodes in a serialised ModelProto; :class:`TooManyNodes` once over ``limit``."""
    count = fields = 0
    max_fields = FIELDS_PER_NODE * limit
    stack = [(_MODEL, 0, len(data))]
    while stack:
        kind, pos, end = stack.pop()
        children = _CHILDREN[kind]
        while pos < end:
            fields += 1
            if fields > max_fields:
                raise TooManyNodes(
                    f"has more than {max_fields} protobuf fields in its graphs and nodes "
                    f"({FIELDS_PER_NODE} x MAAS_MAX_NODES)"
                )
            key, pos = _varint(data, pos, end)
            field, wire = key >> 3, key & 7
            if wire == _VARINT:
                _, pos = _varint(data, pos, end)
            elif wire == _FIXED64:
                pos += 8
            elif wire == _FIXED32:
                pos += 4
            elif wire == _LENGTH:
                size, pos = _varint(data, pos, end)
                child = children.get(field)
                if child is not None:
                    if pos + size > end:
                        raise MalformedProtobuf(f"field {field} runs past its message")
                    if child == _NODE:
                        count += 1
                        if count > limit:
                            raise TooManyNodes(f"has more than {limit} nodes (MAAS_MAX_NODES)")
                    stack.append((child, pos, pos + size))
                pos += size
            else:  # groups (3, 4) are not used by ONNX; 6 and 7 do not exist
                raise MalformedProtobuf(f"wire type {wire} at byte {pos}")
        if pos != end:
            raise MalformedProtobuf("a field runs past the end of its message")
    return count


def count_nodes(path: Path, limit: int) -> int:
    """:func:`count_nodes_in` on a file, memory-mapped."""
    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            return 0
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return count_nodes_in(data, limit)
