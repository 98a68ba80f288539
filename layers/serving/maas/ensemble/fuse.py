"""An ensemble fused into one ONNX graph with ``onnx.compose``.

The route that works on tf2onnx output (whose models all use ``input`` and
``Identity:0``, so an unprefixed merge fails on overlapping names): prefix each
member (``m0_``, ``m1_``...), merge them side by side (``io_map=[]``), feed every
member from one shared graph input through Identity nodes, and combine their
outputs with the combiner's arithmetic of :mod:`maas.ensemble.combine`, node for
operation: ``Mean`` (or ``Mul`` + ``Sum`` for weights), or the vote with its tie rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from maas.ensemble.combine import TIE_BONUS, TIE_TOLERANCE, Combiner, shares
from maas.ensemble.members import EnsembleRefused


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {op.domain or "ai.onnx": op.version for op in model.opset_import}


def _check_opsets(models: Sequence[onnx.ModelProto]) -> dict[str, int]:
    """One version per domain across the members (a merged graph has one opset each)."""
    merged: dict[str, int] = {}
    for index, model in enumerate(models):
        for domain, version in _opsets(model).items():
            if merged.setdefault(domain, version) != version:
                raise EnsembleRefused(
                    f"members use different {domain} opsets ({merged[domain]} and {version}, "
                    f"member {index + 1}): they cannot be fused into one graph"
                )
    return merged


def _value_info(name: str, spec: dict[str, Any]) -> onnx.ValueInfoProto:
    dims: list[int | str] = [
        d if d >= 0 else ("batch" if k == 0 else f"{name}_{k}") for k, d in enumerate(spec["shape"])
    ]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


class _Builder:
    """Nodes and constants appended after the merged members."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []

    def constant(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output


def _weighted_mean(
    b: _Builder, outputs: list[str], weights: Sequence[float], target: str, equal_as_mean: bool
) -> str:
    if equal_as_mean and len(set(weights)) == 1:
        return b.node("Mean", outputs, target)
    parts = [
        b.node("Mul", [out, b.constant(f"{target}_share{i}", share)], f"{target}_part{i}")
        for i, (out, share) in enumerate(zip(outputs, shares(weights), strict=True))
    ]
    return b.node("Sum", parts, target)


def _vote(
    b: _Builder, outputs: list[str], weights: Sequence[float], target: str, classes: int
) -> str:
    depth = b.constant(f"{target}_depth", classes, np.int64)
    votes = []
    for i, (out, share) in enumerate(zip(outputs, shares(weights), strict=True)):
        top1 = b.node("ArgMax", [out], f"{target}_top{i}", axis=-1, keepdims=0)
        on_off = b.constant(f"{target}_vote{i}", [0.0, float(share)])
        votes.append(b.node("OneHot", [top1, depth, on_off], f"{target}_votes{i}", axis=-1))
    fractions = b.node("Sum", votes, f"{target}_fractions")
    mean = _weighted_mean(b, outputs, weights, f"{target}_mean", equal_as_mean=False)
    best = b.node("ArgMax", [fractions], f"{target}_best", axis=-1, keepdims=1)
    top = b.node("GatherElements", [fractions, best], f"{target}_top", axis=-1)
    floor = b.node("Sub", [top, b.constant(f"{target}_tol", TIE_TOLERANCE)], f"{target}_floor")
    below = b.node("Less", [fractions, floor], f"{target}_below")
    tied = b.node("Not", [below], f"{target}_tied")
    masked = b.node("Where", [tied, mean, b.constant(f"{target}_none", -1.0)], f"{target}_masked")
    winner = b.node("ArgMax", [masked], f"{target}_winner", axis=-1, keepdims=0)
    bonus_values = b.constant(f"{target}_bonus_values", [0.0, TIE_BONUS])
    bonus = b.node("OneHot", [winner, depth, bonus_values], f"{target}_bonus", axis=-1)
    tied_f = b.node("Cast", [tied], f"{target}_tied_f", to=TensorProto.FLOAT)
    ones = b.constant(f"{target}_ones", np.ones((classes, 1)))
    count = b.node("MatMul", [tied_f, ones], f"{target}_count")
    several = b.node("Greater", [count, b.constant(f"{target}_one", 1.5)], f"{target}_several")
    several_f = b.node("Cast", [several], f"{target}_several_f", to=TensorProto.FLOAT)
    applied = b.node("Mul", [bonus, several_f], f"{target}_applied")
    return b.node("Add", [fractions, applied], target)


def fuse_models(
    models: Sequence[onnx.ModelProto],
    weights: Sequence[float],
    combiner: Combiner,
    signature: dict[str, list[dict[str, Any]]],
) -> onnx.ModelProto:
    """One graph answering as the unfused ensemble does (FP32 outputs)."""
    for output in signature["outputs"]:
        if output["datatype"] != "FP32":
            raise EnsembleRefused(
                f"output {output['name']!r} is {output['datatype']}: --fuse builds FP32 graphs"
            )
    opsets = _check_opsets(models)
    ir_version = max(model.ir_version for model in models)
    prefixed = []
    for index, model in enumerate(models):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        copy.ir_version = ir_version
        prefixed.append(compose.add_prefix(copy, f"m{index}_"))
    merged = prefixed[0]
    for other in prefixed[1:]:
        merged = compose.merge_models(merged, other, io_map=[])
    graph = merged.graph
    count = len(models)

    member_inputs = {f"m{i}_{spec['name']}" for i in range(count) for spec in signature["inputs"]}
    kept_inputs = [vi for vi in graph.input if vi.name not in member_inputs]
    feeds = []
    for spec in signature["inputs"]:
        template = next(vi for vi in models[0].graph.input if vi.name == spec["name"])
        shared = onnx.ValueInfoProto()
        shared.CopyFrom(template)
        feeds.append(shared)
    identities = [
        helper.make_node("Identity", [spec["name"]], [f"m{i}_{spec['name']}"])
        for i in range(count)
        for spec in signature["inputs"]
    ]

    b = _Builder()
    outputs = []
    for spec in signature["outputs"]:
        name = spec["name"]
        members = [f"m{i}_{name}" for i in range(count)]
        if combiner == "mean":
            _weighted_mean(b, members, weights, name, equal_as_mean=True)
        else:
            _vote(b, members, weights, name, int(spec["shape"][-1]))
        outputs.append(_value_info(name, spec))

    nodes = [*identities, *graph.node, *b.nodes]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.extend([*feeds, *kept_inputs])
    del graph.output[:]
    graph.output.extend(outputs)
    graph.initializer.extend(b.constants)
    graph.name = "maas_fused_ensemble"
    del merged.opset_import[:]  # the merge repeats each member's imports: one per domain
    merged.opset_import.extend(
        helper.make_opsetid("" if domain == "ai.onnx" else domain, version)
        for domain, version in opsets.items()
    )
    onnx.checker.check_model(merged, full_check=True)
    return merged
