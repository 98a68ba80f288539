"""The OpenAPI document is as strict as the server: what it calls valid, the server's
parsers accept, and what they reject before looking at any model, it rejects too."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maas.errors import InvalidInput
from maas.http_api import openapi_document, version_or_alias
from maas.names import check_alias, check_name, parse_version
from maas.protocol import tfclassify, tfserving, v2

DOCUMENT = openapi_document()
SIGNATURE = [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}]

#: path parameter → the server's own parser for it
PARSERS: dict[str, Callable[[str], object]] = {
    "model": check_name,
    "label": check_alias,
}


def parser_for(path: str, name: str) -> Callable[[str], object]:
    if name == "version":
        return version_or_alias if path.startswith("/v2/") else parse_version
    return PARSERS[name]


def path_parameters() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    found.append((path, parameter["name"], parameter["schema"]))
    return found


def schema_accepts(schema: dict[str, Any], text: str) -> bool:
    """A path parameter's schema against the text a client puts in the URL."""
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]+", text):
            return False
        value: Any = int(text)
    else:
        value = text
    try:
        fastjsonschema.compile(schema)(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def server_accepts(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except InvalidInput:
        return False
    return True


SAMPLES = [
    "1", "7", "007", "0", "00", "-1", "+1", "1.0", "\u0661", "\u00b2", "digits", "production", "a",
    "a.b", "a_b-c", "A", "Digits", ".hidden", "-x", "a" * 64, "a" * 65, "1a", "0a", "",
    "a b", "a/b", "%41", "9" * 30,
]  # fmt: skip


@pytest.mark.parametrize(("path", "name", "schema"), path_parameters())
def test_path_parameter_schemas_accept_exactly_what_the_server_parses(
    path: str, name: str, schema: dict[str, Any]
) -> None:
    parse = parser_for(path, name)
    disagreements = [
        text for text in SAMPLES if schema_accepts(schema, text) != server_accepts(parse, text)
    ]
    assert not disagreements, f"{path} {{{name}}}: document and server disagree on {disagreements}"


@given(st.text(alphabet="abz019._-A/+ ", max_size=70))
def test_version_or_alias_schema_agrees_with_the_server_on_any_text(text: str) -> None:
    for path, name, schema in path_parameters():
        if name in ("version", "label"):
            assert schema_accepts(schema, text) == server_accepts(parser_for(path, name), text)


# ------------------------------------------------------------------------ bodies


def body_validator(component: str) -> Callable[[Any], Any]:
    schema = {"$ref": f"#/components/schemas/{component}", "components": DOCUMENT["components"]}
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


def valid(validate: Callable[[Any], Any], body: Any) -> bool:
    try:
        validate(body)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def tensor(**overrides: Any) -> dict[str, Any]:
    return {"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [1, 2], **overrides}


V2_REJECTED = {
    "no inputs": {},
    "empty inputs": {"inputs": []},
    "inputs not a list": {"inputs": {"name": "input"}},
    "input not an object": {"inputs": [1]},
    "empty name": {"inputs": [tensor(name="")]},
    "no shape": {"inputs": [{"name": "input", "datatype": "FP32", "data": [1]}]},
    "negative dimension": {"inputs": [tensor(shape=[-1, 2])]},
    "unknown datatype": {"inputs": [tensor(datatype="FLOAT")]},
    "no data in a JSON body": {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32"}]},
    "binary size in a JSON body": {"inputs": [{**tensor(), "parameters": {"binary_data_size": 8}}]},
    "binary size without header": {
        "inputs": [
            {
                "name": "input",
                "shape": [1, 2],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 8},
            }
        ]
    },
    "id not a string": {"id": 3, "inputs": [tensor()]},
    "parameters not an object": {"parameters": [], "inputs": [tensor()]},
    "binary_data_output not a flag": {
        "parameters": {"binary_data_output": 1},
        "inputs": [tensor()],
    },
    "outputs not a list": {"inputs": [tensor()], "outputs": {"name": "x"}},
    "output without a name": {"inputs": [tensor()], "outputs": [{}]},
    "output name empty": {"inputs": [tensor()], "outputs": [{"name": ""}]},
    "binary_data not a flag": {
        "inputs": [tensor()],
        "outputs": [{"name": "x", "parameters": {"binary_data": "yes"}}],
    },
}


@pytest.mark.parametrize("case", sorted(V2_REJECTED))
def test_the_v2_request_schema_rejects_what_the_server_rejects_for_any_model(case: str) -> None:
    body = V2_REJECTED[case]
    with pytest.raises(InvalidInput):
        v2.decode_infer_request(json.dumps(body).encode())
    assert not valid(body_validator("InferenceRequest"), body), case


def test_the_v2_request_schema_accepts_a_request_the_server_decodes() -> None:
    body = {
        "id": "r1",
        "parameters": {"binary_data_output": False, "priority": 1},
        "inputs": [tensor(parameters={"content_type": "x"})],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    v2.decode_infer_request(json.dumps(body).encode())
    assert valid(body_validator("InferenceRequest"), body)


TF_REJECTED = {
    "neither instances nor inputs": {},
    "only a signature": {"signature_name": "serving_default"},
    "both forms": {"instances": [[1, 2]], "inputs": [[1, 2]]},
    "empty instances": {"instances": []},
    "instances not a list": {"instances": {"input": [1, 2]}},
    "signature not a string": {"signature_name": 1, "instances": [[1, 2]]},
}


@pytest.mark.parametrize("case", sorted(TF_REJECTED))
def test_the_tf_predict_schema_rejects_what_the_server_rejects_for_any_model(case: str) -> None:
    body = TF_REJECTED[case]
    with pytest.raises(InvalidInput):
        tfserving.decode_predict(json.dumps(body).encode(), SIGNATURE)
    assert not valid(body_validator("TfPredictRequest"), body), case


@pytest.mark.parametrize(
    "body", [{"instances": [[1, 2]]}, {"inputs": [[1, 2]]}, {"inputs": {"input": [[1, 2]]}}]
)
def test_the_tf_predict_schema_accepts_both_forms(body: dict[str, Any]) -> None:
    tfserving.decode_predict(json.dumps(body).encode(), SIGNATURE)
    assert valid(body_validator("TfPredictRequest"), body)


CLASSIFY_REJECTED = {
    "no examples": {},
    "empty examples": {"examples": []},
    "examples not a list": {"examples": {"input": [1, 2]}},
    "an example not an object": {"examples": [[1, 2]]},
    "context not an object": {"examples": [{"input": [1, 2]}], "context": [1]},
    "an unknown field": {"examples": [{"input": [1, 2]}], "instances": [[1, 2]]},
    "another signature": {"examples": [{"input": [1, 2]}], "signature_name": "predict"},
}


@pytest.mark.parametrize("case", sorted(CLASSIFY_REJECTED))
def test_the_classify_schema_rejects_what_the_server_rejects_for_any_model(case: str) -> None:
    body = CLASSIFY_REJECTED[case]
    with pytest.raises(InvalidInput):
        tfclassify.decode_classify(json.dumps(body).encode(), SIGNATURE)
    assert not valid(body_validator("TfClassifyRequest"), body), case


@pytest.mark.parametrize(
    "body",
    [
        {"examples": [{"input": [1, 2]}, {"input": [3, 4]}]},
        {"examples": [{}], "context": {"input": [1, 2]}, "signature_name": ""},
    ],
)
def test_the_classify_schema_accepts_examples_and_context(body: dict[str, Any]) -> None:
    tfclassify.decode_classify(json.dumps(body).encode(), SIGNATURE)
    assert valid(body_validator("TfClassifyRequest"), body)


def test_every_operation_declares_its_error_responses_as_json_errors() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "500" in responses, f"{method} {path} does not declare 500"
            if "{" in path:
                assert {"400", "404", "503"} <= set(responses), f"{method} {path}"
            if "requestBody" in operation:
                assert "413" in responses, f"{method} {path}"
