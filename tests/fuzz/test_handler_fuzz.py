"""Property-based fuzzing of the inference handler with generated API Gateway events.

For every event: no exception escapes, the answer is well formed, a client's
mistake is never a 5xx, and afterwards a known-good request (to each model in
turn) still gets exactly the expected answer. ``FUZZ_EXAMPLES`` sets the number of events in total
(``make fuzz``: 100,000); plain ``pytest`` runs a couple of thousand.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import events as ev
from tests.fuzz.harness import Harness, events_for

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def fuzz_settings(weight: float) -> settings:
    return settings(
        max_examples=events_for(weight),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def serve(harness: Harness, event: dict[str, Any], test: str) -> None:
    harness.send(event, test)
    harness.one_still_serves_correctly()


MODELS = st.sampled_from(["digits", "strings"])
V2_INFER = {
    "digits": st.sampled_from(["/v2/models/digits/infer", "/v2/models/digits/versions/1/infer"]),
    "strings": st.sampled_from(
        ["/v2/models/strings/infer", "/v2/models/strings/versions/production/infer"]
    ),
}
TF_PREDICT = {
    "digits": st.sampled_from(
        ["/v1/models/digits:predict", "/v1/models/digits/versions/1:predict"]
    ),
    "strings": st.sampled_from(
        ["/v1/models/strings:predict", "/v1/models/strings/labels/production:predict"]
    ),
}
ANY_MODEL_PATH = st.one_of(*V2_INFER.values(), *TF_PREDICT.values())


def path_for(data: st.DataObject, routes: dict[str, st.SearchStrategy[str]], model: str) -> str:
    """Mostly the model the request was written for; sometimes the other one."""
    if data.draw(st.sampled_from([False] * 9 + [True])):
        model = "strings" if model == "digits" else "digits"
    return data.draw(routes[model])


def mutated_json(
    data: st.DataObject,
    documents: dict[str, st.SearchStrategy[Any]],
    routes: dict[str, st.SearchStrategy[str]],
) -> tuple[str, bytes]:
    """A path and a JSON body: a good request for a model, mutated and maybe damaged."""
    model = data.draw(MODELS)
    document = data.draw(ev.mutated(documents[model]))
    return path_for(data, routes, model), data.draw(ev.damaged(ev.dumps(document)))


@fuzz_settings(0.3)
@given(st.data())
def test_v2_json_requests(harness: Harness, data: st.DataObject) -> None:
    path, body = mutated_json(data, ev.GOOD_V2_BY_MODEL, V2_INFER)
    serve(harness, data.draw(ev.transported("POST", path, body, {})), "v2_json")


@fuzz_settings(0.2)
@given(st.data())
def test_v2_binary_requests(harness: Harness, data: st.DataObject) -> None:
    model = data.draw(MODELS)
    body, headers = data.draw(ev.binary_v2(model))
    path = path_for(data, V2_INFER, model)
    serve(harness, data.draw(ev.transported("POST", path, body, headers)), "v2_binary")


@fuzz_settings(0.2)
@given(st.data())
def test_tf_serving_requests(harness: Harness, data: st.DataObject) -> None:
    path, body = mutated_json(data, ev.GOOD_TF_BY_MODEL, TF_PREDICT)
    serve(harness, data.draw(ev.transported("POST", path, body, {})), "tf_serving")


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    ev.TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    ev.DEEP.map(ev.dumps),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 200_000).map(lambda n: b'{"inputs":' + b"[" * n),
    st.sampled_from([b"1" * 5000, b'{"inputs": 1' + b"0" * 5000 + b"}", b"NaN", b"{}", b""]),
    ev.JSON_VALUES.map(ev.dumps),
)


@fuzz_settings(0.1)
@given(st.data())
def test_raw_bodies(harness: Harness, data: st.DataObject) -> None:
    body = data.draw(RAW_BODIES)
    path = data.draw(ANY_MODEL_PATH)
    headers = data.draw(st.sampled_from([{}, {"inference-header-content-length": "2"}]))
    serve(harness, data.draw(ev.transported("POST", path, body, headers)), "raw_bodies")


@fuzz_settings(0.2)
@given(st.data())
def test_any_route_method_and_headers(harness: Harness, data: st.DataObject) -> None:
    method = data.draw(ev.METHODS)
    path = data.draw(ev.paths())
    headers = data.draw(ev.HEADERS)
    body = data.draw(st.sampled_from([b""]) | ev.GOOD_V2.map(ev.dumps) | ev.GOOD_TF.map(ev.dumps))
    serve(harness, data.draw(ev.transported(method, path, body, headers)), "any_route")
