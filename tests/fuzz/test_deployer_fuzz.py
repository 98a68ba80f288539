"""The deployer driven with generated S3 events (hypothesis), over moto S3.

Generated: object keys (valid and invalid names, URL-encoded with ``+`` and
``%xx``, other buckets, prefixes outside the registry, ``incoming/`` variants,
5,000-digit version numbers, non-manifest leaves), record and event shapes
(missing fields, wrong types, empty or non-list Records, non-dict records,
garbage ``eventName``), and duplicated, reordered deliveries of real events for
real published versions. Properties:

- no exception escapes (only StoreUnavailable could, and nothing injects faults);
- every outcome is succeeded, failed, skipped, duplicate or ignored;
- an ignored record writes nothing; anything else touches only its own model;
- a real version is promoted at most once, and never to an older version.

``FUZZ_EXAMPLES=N`` runs N examples per test (``make fuzz``); without it the
runs are short and derandomized, to keep ``make test`` bounded and repeatable.
Run with ``-s`` to print the events per second.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from maas import metrics
from maas.promotion import release
from maas.registry import Registry
from maas.store import S3Store
from maas.upload_events import Deployer, Outcome

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
BUCKET = "maas-fuzz-registry"
PREFIX = "reg"
STATUSES = {"succeeded", "failed", "skipped", "duplicate", "ignored"}
PRODUCTION = {"alias": "production", "canary_weight": None}
RATES: dict[str, tuple[int, float]] = {}
SEEN: Counter[str] = Counter()  # outcome statuses across examples, for the printout

#: Objects already in the registry that are not versions: what a stray `aws s3 cp`
#: or a half-finished tool may leave under a model's versions/ prefix.
STRAYS = {
    "models/digits/versions/²/manifest.json": b"{}",  # a Unicode digit, not a number
    "models/digits/versions/01/manifest.json": b"{}",  # a leading zero: not version 1
    "models/digits/versions/007/model.onnx": b"junk",
    "models/digits/versions/notes/readme.txt": b"notes",
    "models/digits/versions/3/notes.txt": b"a leaf that is no manifest",
}
UPLOAD = "incoming/digits/new model.onnx"
JUNK_UPLOAD = "incoming/digits/junk.onnx"


def _settings(default_examples: int) -> settings:
    return settings(
        max_examples=FUZZ_EXAMPLES or default_examples,
        deadline=None,  # a first deploy verifies a model in onnxruntime: slow, legitimately
        derandomize=not FUZZ_EXAMPLES,
        # The registry fixture is set up once per test on purpose (see `shared`).
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


@pytest.fixture(scope="module", autouse=True)
def print_rates() -> Iterator[None]:
    yield
    for test, (events, seconds) in RATES.items():
        print(f"\n{test}: {events} records in {seconds:.1f} s = {events / seconds:.0f}/s")
    print(f"outcomes: {dict(SEEN)}")


def count_rate(test: str, records: int, seconds: float) -> None:
    done, spent = RATES.get(test, (0, 0.0))
    RATES[test] = (done + records, spent + seconds)


@pytest.fixture
def bucket() -> Iterator[str]:
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield BUCKET


def open_registry(prefix: str) -> Registry:
    return Registry(S3Store(BUCKET, prefix, client=boto3.client("s3")), actor="fuzz")


def deployer_for(registry: Registry) -> Deployer:
    return Deployer(registry, "staging", metrics.Telemetry(EphemeralMetrics(namespace="fuzz")))


@pytest.fixture
def shared(bucket: str, onnx_model: Path, onnx_model_b: Path) -> Registry:
    """digits v1 on production, v2 committed and waiting for its event, two raw
    uploads and the strays. Shared by every example of a test: the deployer is
    idempotent, so every property holds in whatever state earlier examples left."""
    registry = open_registry(PREFIX)
    release(registry, onnx_model, "digits", alias="production")
    registry.publish(onnx_model_b, "digits", details={"deploy": PRODUCTION})
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{UPLOAD}", Body=onnx_model_b.read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{JUNK_UPLOAD}", Body=b"not onnx")
    for key, body in STRAYS.items():
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=body)
    return registry


# ------------------------------------------------------------------ strategies


def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], *unusual: st.SearchStrategy[Any]) -> Any:
    """``usual`` six times in seven, else one of ``unusual``: each part of an event
    goes wrong often, yet a whole, real event still comes up in most runs (and
    shrinking, which takes integers to 0, heads for the usual)."""
    if draw(st.integers(0, 6)) < 6:
        return draw(usual)
    return draw(st.one_of(*unusual))


NAMES = st.one_of(
    st.sampled_from(["digits", "ghost", "Digits", "a..", ".", "..", "", "bad name", "x" * 65]),
    st.text(max_size=12),
)
VERSIONS = st.one_of(
    st.integers(0, 4).map(str),
    # Non-ASCII digits for which str.isdigit() is true: superscript, Arabic-Indic, fullwidth.
    st.sampled_from(["01", "002", "-1", "1.0", "\u00b2", "\u0661", "\uff11", " 1", "1e3", ""]),
    st.integers(5, 10**40).map(str),
    # int() refuses strings of more than 4,300 digits.
    st.builds(str.__mul__, st.sampled_from("0179"), st.integers(4299, 6000)),
)
LEAVES = st.sampled_from(
    ["manifest.json", "model.onnx", "claim.json", "manifest.json.tmp", "MANIFEST.JSON", ""]
)
FILES = st.one_of(
    st.sampled_from(["new model.onnx", "junk.onnx", "m.onnx", "m.ONNX", "m.onnx.bak", ".onnx"]),
    st.text(max_size=12).map(lambda text: f"{text}.onnx"),
)
REAL = st.sampled_from(
    [
        Registry.manifest_key("digits", 1),
        Registry.manifest_key("digits", 2),
        UPLOAD,
        JUNK_UPLOAD,
        *STRAYS,
    ]
)
ODD_KEYS = st.one_of(
    st.builds("models/{}/versions/{}/{}".format, NAMES, VERSIONS, LEAVES),
    st.builds("incoming/{}/{}".format, NAMES, FILES),
    st.sampled_from(
        [
            "incoming/",
            "incoming/digits",
            "incoming//m.onnx",
            "incoming/digits/sub/m.onnx",
            "Incoming/digits/m.onnx",
            f"{UPLOAD}\n",
            f"{Registry.manifest_key('digits', 2)}\n",
            "models/digits/aliases/production.json",
            "models/digits/deployments/1.json",
            "models/digits/versions/",
            "",
        ]
    ),
    st.text(max_size=40),
)
JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.booleans(),
)
#: A path of the record to delete or to replace with a value of the wrong type.
PATHS = st.sampled_from(
    [("s3",), ("s3", "bucket"), ("s3", "object"), ("s3", "bucket", "name"), ("s3", "object", "key"),
     ("eventName",)]
)  # fmt: skip


def encode(key: str, how: str) -> str:
    """How a key may arrive in a notification: S3 sends it URL-encoded with '+'
    for a space; forged or hand-made events may do anything."""
    if how == "percent":
        return quote(key, safe="/")
    if how == "twice":
        return quote_plus(quote_plus(key, safe="/"), safe="/")
    if how == "broken":
        return key.replace("/", "%2", 1) + "%zz%"
    return key if how == "raw" else quote_plus(key, safe="/")


@st.composite
def event_keys(draw: st.DrawFn) -> str:
    relative = mostly(draw, REAL, ODD_KEYS)
    where = mostly(
        draw,
        st.just(f"{PREFIX}/"),  # inside the registry
        st.sampled_from(["", "other/", "re/", "reg2/", "REG/", "/"]),  # outside it
    )
    how = mostly(draw, st.just("plus"), st.sampled_from(["percent", "raw", "twice", "broken"]))
    return encode(where + relative, how)


@st.composite
def records(draw: st.DrawFn) -> Any:
    shape = mostly(draw, st.just("whole"), st.sampled_from(["missing", "mistyped", "not a dict"]))
    if shape == "not a dict":
        return draw(JUNK)
    bucket = mostly(draw, st.just(BUCKET), st.sampled_from(["other-bucket", "", "MAAS"]))
    event_name = mostly(
        draw,
        st.sampled_from(["ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload"]),
        st.sampled_from(["ObjectRemoved:Delete", "s3:TestEvent", "ObjectCreated", ""]),
        st.text(max_size=20),
        JUNK,
    )
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": draw(event_keys()), "size": 1, "eTag": "0123", "sequencer": "01"},
        },
    }
    if shape != "whole":
        *parents, leaf = draw(PATHS)
        holder = record
        for part in parents:
            holder = holder[part]
        if shape == "missing":
            del holder[leaf]
        else:
            holder[leaf] = draw(JUNK)
    return record


@st.composite
def events(draw: st.DrawFn) -> Any:
    return mostly(
        draw,
        st.builds(lambda rs: {"Records": rs}, st.lists(records(), max_size=4)),
        st.builds(
            lambda junk: {"Records": junk},
            st.one_of(JUNK, st.dictionaries(st.text(max_size=3), JUNK)),
        ),
        st.just({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}),
        JUNK,
    )


# ------------------------------------------------------------------ properties


def snapshot() -> dict[str, str]:
    """Every object under the registry, by key, with its ETag. Read from moto's
    in-memory bucket, not through the S3 API: a listing per example would cost
    more than all the deployer's work."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    objects = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[BUCKET].keys
    return {
        key[len(PREFIX) + 1 :]: found.etag
        for key, found in objects.items()
        if key.startswith(f"{PREFIX}/")
    }


def check_outcome(outcome: Outcome) -> None:
    assert outcome.status in STATUSES, outcome
    if outcome.status == "ignored":
        return
    # Acted on: the key is exactly a manifest's or a raw upload's, inside the registry.
    manifest = f"{PREFIX}/{Registry.manifest_key(str(outcome.name), outcome.version or 0)}"
    upload = f"{PREFIX}/incoming/{outcome.name}/"
    assert outcome.key == manifest or (
        outcome.key.startswith(upload) and outcome.key.endswith(".onnx")
    ), outcome


def check_promotions(registry: Registry) -> None:
    """Each alias moved forward only, and to each version at most once."""
    for alias in ("production", "staging"):
        targets = [r["to"] for r in registry.history("digits", alias) if r["action"] == "move"]
        assert targets == sorted(set(targets)), (alias, targets)


def not_object_created(record: Any) -> bool:
    name = record.get("eventName") if isinstance(record, dict) else None
    return not (isinstance(name, str) and name.startswith("ObjectCreated:"))


def one_record(key: str, event_name: Any = "ObjectCreated:Put") -> dict[str, Any]:
    s3 = {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key, safe="/")}}
    return {"Records": [{"eventName": event_name, "s3": s3}]}


@given(event=events())
# Each defect this test found once, kept as an explicit case:
@example(event=None)  # AttributeError: 'NoneType' object has no attribute 'get'
@example(event={"Records": [7]})  # AttributeError on a non-dict record
@example(event=one_record(f"{PREFIX}/models/digits/versions/{'9' * 5000}/manifest.json"))
@example(event=one_record(f"{PREFIX}/models/digits/versions/01/manifest.json"))  # deployed v1
@example(event=one_record(f"{PREFIX}/{UPLOAD}"))  # ValueError: int('²') in the listing
@example(event=one_record(f"{PREFIX}/{Registry.manifest_key('digits', 1)}\n"))
@example(event=one_record(f"{PREFIX}/{Registry.manifest_key('digits', 1)}", "ObjectRemoved:Delete"))
@_settings(default_examples=300)
def test_generated_events_never_crash_the_deployer_nor_write_for_ignored_keys(
    shared: Registry, event: Any
) -> None:
    deployer = deployer_for(shared)
    before = snapshot()
    started = time.perf_counter()
    outcomes = deployer.handle_event(event)
    elapsed = time.perf_counter() - started
    records_in = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records_in, list):
        assert len(outcomes) == len(records_in)
        for record, outcome in zip(records_in, outcomes, strict=True):
            if not_object_created(record):
                assert outcome.status == "ignored", (record, outcome)
    else:  # not an S3 notification at all
        assert [o.status for o in outcomes] == ["ignored"]
    for outcome in outcomes:
        check_outcome(outcome)
        SEEN[outcome.status] += 1
    after = snapshot()
    touched = {k for k in after.keys() | before.keys() if before.get(k) != after.get(k)}
    acted_on = {f"models/{o.name}/" for o in outcomes if o.status != "ignored"}
    assert all(any(k.startswith(model) for model in acted_on) for k in touched), (
        touched,
        outcomes,
    )
    if any("/aliases/" in key for key in touched):
        check_promotions(shared)
    count_rate("generated events", max(len(outcomes), 1), elapsed)


# ------------------------------------------------------- real events, any order


@pytest.fixture
def published(bucket: str, onnx_model: Path, onnx_model_b: Path) -> list[dict[str, Any]]:
    """Three committed versions asking for production, none deployed: their objects,
    copied into a fresh prefix by each example."""
    template = open_registry("template")
    for path in (onnx_model, onnx_model_b, onnx_model):
        template.publish(path, "digits", details={"deploy": PRODUCTION})
    s3 = boto3.client("s3")
    return [
        {
            "Key": item["Key"][len("template/") :],
            "Body": s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read(),
        }
        for item in s3.list_objects_v2(Bucket=bucket, Prefix="template/")["Contents"]
    ]


DELIVERIES = st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=3), min_size=1, max_size=6)


@given(deliveries=DELIVERIES)
@_settings(default_examples=25)
def test_real_events_duplicated_and_reordered_promote_once_and_never_backwards(
    published: list[dict[str, Any]], deliveries: list[list[int]]
) -> None:
    prefix = f"run-{time.monotonic_ns()}"
    s3 = boto3.client("s3")
    for item in published:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{item['Key']}", Body=item["Body"])
    registry = open_registry(prefix)
    deployer = deployer_for(registry)
    serving: int | None = None  # production's version, as the policy must leave it
    seen: set[int] = set()
    started = time.perf_counter()
    for batch in deliveries:
        keys = [
            quote_plus(f"{prefix}/{Registry.manifest_key('digits', v)}", safe="/") for v in batch
        ]
        event = {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": BUCKET}, "object": {"key": k}},
                }
                for k in keys
            ]
        }
        outcomes = deployer.handle_event(event)
        assert [o.version for o in outcomes] == batch
        for version, outcome in zip(batch, outcomes, strict=True):
            if version in seen:
                assert outcome.status == "duplicate", outcome
            elif serving is not None and version < serving:
                assert outcome.status == "skipped", outcome
            else:
                assert outcome.status == "succeeded", outcome
                serving = version
            seen.add(version)
    count_rate("real events", sum(map(len, deliveries)), time.perf_counter() - started)
    assert registry.get_alias("digits", "production")["version"] == max(seen) == serving
    moves = [(r["from"], r["to"]) for r in registry.history("digits", "production")]
    assert [to for _, to in moves] == sorted({to for _, to in moves})  # forward, once each
    for version in seen:  # one record per version, written by its first delivery
        assert registry.read_record(Registry.deployment_key("digits", version)) is not None
