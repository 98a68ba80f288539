from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from maas.documents import decode, encode, validate
from maas.errors import IntegrityError, InvalidInput

SHA = "a" * 64


def manifest() -> dict[str, Any]:
    return {
        "schema": "maas.manifest/1",
        "name": "digits",
        "version": 3,
        "created_at": "2026-11-28T12:00:00Z",
        "model": {"sha256": SHA, "size": 40312, "opset": 17},
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
        "precision": "fp32",
        "metrics": {"accuracy": 0.97},
        "labels": None,
        "golden_samples": [
            {
                "inputs": {"input": {"shape": [1, 8, 8], "data": [0.0] * 64}},
                "outputs": {"probabilities": {"shape": [1, 10], "data": [0.1] * 10}},
                "atol": 1e-4,
            }
        ],
        "source": {
            "framework": "onnx",
            "file_sha256": SHA,
            "converter": None,
            "libraries": {"onnxruntime": "1.32.0"},
        },
        "lineage": {"parent_version": None, "git_commit": None},
        "deploy": {"alias": "production", "canary_weight": None},
    }


def test_the_issue_example_manifest_is_valid_and_round_trips() -> None:
    document = manifest()
    assert decode("manifest", encode("manifest", document), "k") == document


def test_extra_fields_are_allowed() -> None:
    document = manifest() | {"notes": "hand-tuned"}
    assert validate("manifest", document)["notes"] == "hand-tuned"


def _broken(path: list[str], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(manifest())
    target = document
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "mentions"),
    [
        (["schema"], "maas.manifest/2", "schema"),
        (["version"], 0, "version"),
        (["model", "sha256"], "XYZ", "sha256"),
        (["model", "size"], KeyError, "size"),
        (["precision"], "int4", "precision"),
        (["inputs"], [], "inputs"),
        (["name"], "Bad/Name", "name"),
        (["golden_samples"], [{"inputs": {}}], "golden_samples"),
        (["deploy", "canary_weight"], 1.5, "canary_weight"),
        (["lineage"], KeyError, "lineage"),
    ],
)
def test_malformed_manifests_are_refused_naming_the_field(
    path: list[str], value: Any, mentions: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        encode("manifest", _broken(path, value))
    message = str(caught.value)
    assert message.startswith("malformed manifest")
    assert mentions in message


def test_bad_datatype_is_refused() -> None:
    document = manifest()
    document["inputs"][0]["datatype"] = "FLOAT"
    with pytest.raises(InvalidInput, match="datatype"):
        validate("manifest", document)


def test_a_stored_document_that_is_not_json_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError, match="not JSON"):
        decode("manifest", b"\x00garbage", "models/x/versions/1/manifest.json")


def test_a_stored_document_that_breaks_the_schema_is_an_integrity_error() -> None:
    data = json.dumps(_broken(["model", "sha256"], "nope")).encode()
    with pytest.raises(IntegrityError, match=r"models/x/versions/1/manifest.json.*sha256"):
        decode("manifest", data, "models/x/versions/1/manifest.json")


def test_alias_documents_are_validated() -> None:
    good = {
        "alias": "production",
        "version": 3,
        "canary": {"version": 4, "weight": 0.1},
        "previous": 2,
        "updated_at": "2026-11-28T12:00:00.000001Z",
    }
    assert validate("alias", good) == good
    with pytest.raises(InvalidInput, match="malformed alias"):
        validate("alias", good | {"canary": {"version": 4, "weight": 2}})
