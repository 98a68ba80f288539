"""S3 faults on every path: throttling, 500s, timeouts and connection resets.

Faults are injected into the real botocore client, built by maas's own
:func:`~maas.store.s3.default_s3_client` (standard retries, 5 attempts), with a
``before-send`` hook that either answers for S3 (503 SlowDown, 500
InternalError) or raises what a broken network raises. Moto serves every
request the hook lets through.

- **Transient** faults (the first attempts of each request fail) are absorbed by
  botocore's retries: every request succeeds, attempts are counted.
- **Persistent** faults become :class:`StoreUnavailable` (503, exit 5) with
  nothing half-written visible; serving keeps answering loaded models through
  cached aliases (counting ``StaleServes``); the deployer raises (Lambda
  retries) and records nothing; a delivery after the fault clears succeeds once.

Run with ``-s`` to print the figures per path (faults injected, requests served
during the fault, errors seen).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus, unquote

import boto3
import botocore.endpoint
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError

from maas import metrics
from maas.cli import main
from maas.config import ServingConfig
from maas.errors import NotFound, StoreUnavailable
from maas.lambda_entry import InferenceHandler, inference_handler
from maas.local_server import LocalContext, build_event, response_body
from maas.promotion import release
from maas.registry import Registry
from maas.store import S3Store
from maas.store.s3 import default_s3_client
from maas.upload_events import Deployer
from tests.support.make_events import s3_put

KINDS = ("SlowDown", "InternalError", "ReadTimeout", "ConnectTimeout", "ConnectionReset")
#: What S3 answers when it throttles or fails: the status and error document it sends.
HTTP_FAULTS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}
NETWORK_FAULTS = {
    "ReadTimeout": ReadTimeoutError,
    "ConnectTimeout": ConnectTimeoutError,
    "ConnectionReset": ConnectionClosedError,
}
#: maas's default: botocore standard mode, 5 attempts per request.
ATTEMPTS = 5
PRODUCTION = {"alias": "production", "canary_weight": None}
FIGURES: list[dict[str, Any]] = []


# ------------------------------------------------------------ fault injection


class _ErrorBody:
    """The raw stream an AWSResponse reads its body from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@dataclass
class Rule:
    kinds: tuple[str, ...]  # taken in turn, one per injected fault
    operation: str  # a botocore operation name (GetObject, PutObject, ...) or "*"
    url_part: str  # a substring of the request's URL-decoded address
    first_attempts: int | None  # fail attempts 1..N of every request; None: every attempt
    lost_answer: bool = False  # S3 applies the request, then the answer is lost

    def matches(self, operation: str, url: str, attempt: int) -> bool:
        return (
            self.operation in ("*", operation)
            and self.url_part in url
            and (self.first_attempts is None or attempt <= self.first_attempts)
        )


class S3Faults:
    """Fails matching S3 requests; counts every attempt of every request.

    botocore stamps each request with ``amz-sdk-invocation-id`` (one per logical
    request, kept across its retries) and ``amz-sdk-request: attempt=N``: that
    is how retries are told apart from new requests.
    """

    def __init__(self, events: Any) -> None:
        self.rules: list[Rule] = []
        self.attempts: Counter[str] = Counter()  # per invocation
        self.faulted: dict[str, str] = {}  # invocation -> operation, for faulted ones
        self.injected = 0
        self._lock = threading.Lock()
        events.register("before-send.s3.*", self._before_send)

    def fail(
        self,
        kinds: str | tuple[str, ...] = KINDS,
        operation: str = "*",
        url_part: str = "",
        first_attempts: int | None = None,
        lost_answer: bool = False,
    ) -> None:
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        self.rules.append(Rule(kinds, operation, url_part, first_attempts, lost_answer))

    def clear(self) -> None:
        self.rules.clear()

    def faulted_attempts(self) -> list[int]:
        """Attempts made by each request that met a fault, in order."""
        return [self.attempts[invocation] for invocation in self.faulted]

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        url = unquote(request.url)
        invocation = _header(request, "amz-sdk-invocation-id")
        attempt = int(re.search(r"attempt=(\d+)", _header(request, "amz-sdk-request"))[1])  # type: ignore[index]
        with self._lock:
            self.attempts[invocation] += 1
            rule = next((r for r in self.rules if r.matches(operation, url, attempt)), None)
            if rule is None:
                return None
            kind = rule.kinds[self.injected % len(rule.kinds)]
            self.injected += 1
            self.faulted.setdefault(invocation, operation)
        address = request.url
        if kind in NETWORK_FAULTS:
            if rule.lost_answer:
                from moto.core.models import botocore_stubber

                botocore_stubber(event_name=event_name, request=request)  # S3 applies it
            # Raising stops the event here: the request never reaches moto's handler.
            raise NETWORK_FAULTS[kind](endpoint_url=address)
        if not rule.lost_answer:
            # botocore calls every before-send handler and keeps the first answer;
            # moto's handler runs after this one and would apply the request unless
            # its address is one moto does not serve.
            request.url = "https://fault-injected.invalid/"
        status, message = HTTP_FAULTS[kind]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{kind}</Code><Message>{message}</Message></Error>"
        ).encode()
        headers = HTTPHeaders()
        headers["content-type"] = "application/xml"
        return AWSResponse(address, status, headers, _ErrorBody(body))


def _header(request: Any, name: str) -> str:
    value = request.headers[name]
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(autouse=True)
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore sleeps between attempts (standard mode: jittered exponential, up to
    20 s); record each delay instead of waiting it, so retries are real but quick."""
    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=delays.append))
    return delays


@pytest.fixture(scope="module", autouse=True)
def print_figures() -> Iterator[None]:
    yield
    if not FIGURES:
        return
    columns = list(FIGURES[0])
    print("\n" + " | ".join(columns))
    for row in FIGURES:
        print(" | ".join(str(row.get(c, "")) for c in columns))


def figure(path: str, kinds: str, mode: str, faults: S3Faults, **counts: Any) -> None:
    FIGURES.append(
        {
            "path": path,
            "fault": kinds,
            "mode": mode,
            "faults injected": faults.injected,
            "attempts (faulted requests)": sum(faults.faulted_attempts()),
            "requests served": counts.get("served", 0),
            "errors seen": counts.get("errors", 0),
            "stale serves": counts.get("stale", 0),
        }
    )


def faulty_registry(bucket: str, prefix: str) -> tuple[Registry, S3Faults]:
    """A registry over maas's own default client, with faults to inject into it."""
    client = default_s3_client()
    return Registry(S3Store(bucket, prefix, client=client), actor="pytest"), S3Faults(
        client.meta.events
    )


def assert_gave_up_after_retries(faults: S3Faults) -> None:
    """botocore made all its attempts before giving up, until standard mode's retry
    quota ran out (500 tokens per client, 5 per throttling retry and 14 per other):
    from then on it fails at the first error, which is what the quota is for."""
    attempts = faults.faulted_attempts()
    assert attempts and attempts[0] == ATTEMPTS and max(attempts) == ATTEMPTS, attempts


def clean_registry(bucket: str, prefix: str) -> Registry:
    """The same registry through a client no fault reaches: what every reader sees."""
    return Registry(S3Store(bucket, prefix, client=boto3.client("s3")), actor="pytest")


def moves(registry: Registry, alias: str = "production") -> list[tuple[int | None, int]]:
    return [(r["from"], r["to"]) for r in registry.history("digits", alias)]


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    """The ObjectCreated notification S3 sends for ``key`` (URL-encoded, as S3 does)."""
    event = s3_put(quote_plus(key, safe="/"), 1, "etag", "01")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    return event


def record_of(registry: Registry, version: int) -> dict[str, Any] | None:
    return registry.read_record(Registry.deployment_key("digits", version))


# --------------------------------------------------------------------- settings


@pytest.mark.parametrize(("setting", "attempts"), [(None, ATTEMPTS), ("1", 1), ("3", 3)])
def test_aws_max_attempts_is_the_total_number_of_attempts(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, setting: str | None, attempts: int
) -> None:
    """botocore documents AWS_MAX_ATTEMPTS as total attempts; the README promises
    that AWS_MAX_ATTEMPTS=1 fails fast."""
    if setting is not None:
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", setting)
    registry, faults = faulty_registry(s3_bucket, "settings")
    faults.fail("SlowDown")
    with pytest.raises(StoreUnavailable, match="SlowDown"):
        registry.list_versions("digits")
    assert faults.faulted_attempts() == [attempts]


@pytest.mark.parametrize("setting", ["0", "five", "-2"])
def test_a_bad_aws_max_attempts_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    from maas.errors import InvalidInput

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", setting)
    with pytest.raises(InvalidInput, match="AWS_MAX_ATTEMPTS"):
        default_s3_client()


# ---------------------------------------------------------------------- serving

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.25] * 64}]}
).encode()
IN_TURN = "all five in turn"


@pytest.fixture
def served(s3_bucket: str, onnx_model: Path, onnx_model_b: Path) -> Registry:
    """digits v1 on production and v2 published: what the inference function serves."""
    registry = clean_registry(s3_bucket, "serve")
    release(registry, onnx_model, "digits", alias="production")
    registry.publish(onnx_model_b, "digits")
    return registry


class Function:
    """The real inference handler, with faults injected into its own S3 client.

    The alias TTL is 0, so every request re-reads its alias (a conditional GET):
    every request meets the fault on the alias refresh path.
    """

    def __init__(self, registry: Registry, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        handler = inference_handler(
            ServingConfig(registry_url=registry.url, cache_dir=cache_dir, alias_ttl_seconds=0),
            telemetry=metrics.Telemetry(EphemeralMetrics(namespace="maas-faults")),
        )
        assert isinstance(handler, InferenceHandler)
        self.handler = handler
        store = handler.plane.registry.store
        assert isinstance(store, S3Store)
        self.faults = S3Faults(store.client.meta.events)

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
        headers = {"content-type": "application/json"} if body else {}
        response = self.handler(build_event(method, path, headers, body), LocalContext())
        return response["statusCode"], json.loads(response_body(response))

    def infer(self, target: str = "") -> tuple[int, dict[str, Any]]:
        return self.call("POST", f"/v2/models/digits{target}/infer", BODY)

    def wait_for_version(self, version: str, timeout: float = 30.0) -> None:
        """Request until ``version`` answers; every answer until then must be a 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.infer()
            assert status == 200, body
            if body["model_version"] == version:
                return
            time.sleep(0.05)
        raise AssertionError(f"version {version} never answered within {timeout} s")


def stale_serves(capsys: pytest.CaptureFixture[str]) -> int:
    """StaleServes records the serving core printed (EMF lines on stdout) since last asked."""
    lines = capsys.readouterr().out.splitlines()
    return sum(1 for line in lines if '"_aws"' in line and "StaleServes" in json.loads(line))


def test_transient_faults_on_serving_are_retried_away(
    served: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    function = Function(served, tmp_path / "cache")
    function.faults.fail(first_attempts=2)  # every request, the five kinds in turn
    first = function.infer()  # alias, manifest and model download, all retried
    assert first[0] == 200 and first[1]["model_version"] == "1", first
    requests = 5
    answers = [function.infer() for _ in range(requests)]  # a conditional alias GET each
    assert answers == [first] * requests
    assert function.infer("/versions/2")[1]["model_version"] == "2"  # a cold download
    assert set(function.faults.faulted_attempts()) == {3}
    assert stale_serves(capsys) == 0  # absorbed by retries: never served stale
    figure("serving", IN_TURN, "first 2 attempts", function.faults, served=requests + 2)


@pytest.mark.parametrize("kind", KINDS)
def test_an_s3_outage_serves_loaded_models_through_cached_aliases(
    served: Registry, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    function = Function(served, tmp_path / "cache")
    status, warm = function.infer()
    assert status == 200 and warm["model_version"] == "1"
    stale_serves(capsys)
    served.set_alias("digits", "production", 2)  # moved while the function cannot see S3
    function.faults.fail(kind)  # every request, every attempt
    requests = 6
    answers = [function.infer() for _ in range(requests)]
    assert all(status == 200 and body == warm for status, body in answers), answers
    assert function.call("GET", "/v2/models/digits/ready")[0] == 200
    assert function.call("GET", "/v2/health/ready")[0] == 200
    cold_status, cold = function.infer("/versions/2")  # never loaded: nothing to answer with
    assert cold_status == 503 and "digits" in cold["error"], cold
    assert stale_serves(capsys) == requests + 1  # the inferences and the model's ready probe
    assert function.faults.faulted_attempts() == [ATTEMPTS] * (requests + 2)
    figure(
        "alias refresh (S3 down)", kind, "persistent", function.faults, served=requests + 2,
        errors=1, stale=requests + 1,
    )  # fmt: skip
    function.faults.clear()
    # The move is seen at the next refresh; v1 answers while v2 loads in the background.
    function.wait_for_version("2")
    assert stale_serves(capsys) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_download_answers_503_and_the_loaded_version_keeps_serving(
    served: Registry, tmp_path: Path, kind: str
) -> None:
    function = Function(served, tmp_path / "cache")
    assert function.infer()[0] == 200  # v1 loaded
    function.faults.fail(kind, "GetObject", "/model.onnx")
    status, body = function.infer("/versions/2")
    assert status == 503, body
    assert "digits:2 is not loaded and the registry is unavailable" in body["error"]
    served.set_alias("digits", "production", 2)
    requests = 6
    for _ in range(requests):  # v2 fails to load in the background; v1 keeps answering
        status, body = function.infer()
        assert (status, body["model_version"]) == (200, "1"), body
    function.handler.plane.models.wait_idle()
    v1_sha = served.get_manifest("digits", 1)["model"]["sha256"]
    assert [p.name for p in function.cache_dir.iterdir()] == [f"{v1_sha}.onnx"]  # no partials
    assert_gave_up_after_retries(function.faults)
    figure("model download", kind, "persistent", function.faults, served=requests, errors=1)
    function.faults.clear()
    function.wait_for_version("2")


# ---------------------------------------------------------------------- publish


def step_cases(steps: dict[str, tuple[str, str]], transfers: set[str]) -> list[Any]:
    """One case per step with the five kinds in turn (each of its five attempts meets
    another one); steps that go through boto3's transfer manager get one case per
    kind, since what it raises depends on the kind of the last failure."""
    cases = []
    for step in steps:
        if step in transfers:
            cases += [pytest.param(step, (kind,), id=f"{step}-{kind}") for kind in KINDS]
        else:
            cases.append(pytest.param(step, KINDS, id=f"{step}-all kinds"))
    return cases


#: Each S3 request `maas publish --alias production` makes, in order. The version
#: is committed by the manifest write; the steps after it are its deploy.
PUBLISH_STEPS = {
    "number listing": ("ListObjectsV2", "/versions/"),
    "claim": ("PutObject", "/claim.json"),
    "model upload": ("PutObject", "/model.onnx"),
    "manifest commit": ("PutObject", "/manifest.json"),
    "deploy download": ("GetObject", "/model.onnx"),
    "alias write": ("PutObject", "/aliases/"),
    "record write": ("PutObject", "/deployments/"),
}
COMMITTED = ("deploy download", "alias write", "record write")


def test_transient_faults_during_publish_are_retried_away(
    s3_bucket: str, onnx_model: Path, onnx_model_b: Path, backoff: list[float]
) -> None:
    release(clean_registry(s3_bucket, "pub"), onnx_model, "digits", alias="production")
    registry, faults = faulty_registry(s3_bucket, "pub")
    faults.fail(first_attempts=2)  # every request of the publish, twice
    published = release(registry, onnx_model_b, "digits", alias="production")
    assert published.version == 2 and published.alias_status == "moved"
    reader = clean_registry(s3_bucket, "pub")
    assert reader.list_versions("digits") == [1, 2]
    assert moves(reader) == [(None, 1), (1, 2)]
    assert record_of(reader, 2)["status"] == "succeeded"  # type: ignore[index]
    assert set(faults.faulted_attempts()) == {3}
    assert len(backoff) == faults.injected  # one backoff before each retry
    figure("publish", IN_TURN, "first 2 attempts", faults, served=1)


@pytest.mark.parametrize(
    ("step", "kinds"), step_cases(PUBLISH_STEPS, {"model upload", "deploy download"})
)
def test_persistent_faults_during_publish_leave_nothing_half_written(
    s3_bucket: str,
    onnx_model: Path,
    onnx_model_b: Path,
    tmp_path: Path,
    step: str,
    kinds: tuple[str, ...],
) -> None:
    reader = clean_registry(s3_bucket, "pub")
    release(reader, onnx_model, "digits", alias="production")
    registry, faults = faulty_registry(s3_bucket, "pub")
    faults.fail(kinds, *PUBLISH_STEPS[step])
    with pytest.raises(StoreUnavailable) as caught:
        release(registry, onnx_model_b, "digits", alias="production")
    assert (caught.value.status, caught.value.exit_code) == (503, 5)
    assert_gave_up_after_retries(faults)
    if step in COMMITTED:
        # Committed whole: its manifest and verified bytes are there; only the deploy failed.
        assert reader.list_versions("digits") == [1, 2]
        reader.fetch_model("digits", 2, tmp_path / "committed.onnx")
    else:
        assert reader.list_versions("digits") == [1]
        with pytest.raises(NotFound):
            reader.get_manifest("digits", 2)
    # The alias write is the move: only a failure after it leaves the alias moved.
    moved = step == "record write"
    assert reader.get_alias("digits", "production")["version"] == (2 if moved else 1)
    assert record_of(reader, 2) is None
    faults.clear()
    if step in COMMITTED:  # the manifest's S3 event reaches the deployer, which retries
        deployer = Deployer(registry, "staging", metrics.Telemetry(EphemeralMetrics()))
        event = s3_event(s3_bucket, f"pub/{Registry.manifest_key('digits', 2)}")
        assert [o.status for o in deployer.handle_event(event)] == ["succeeded"]
        assert [o.status for o in deployer.handle_event(event)] == ["duplicate"]
        version = 2
    else:  # the publisher runs it again
        version = release(registry, onnx_model_b, "digits", alias="production").version
    assert reader.list_versions("digits") == [1, version]
    assert moves(reader) == [(None, 1), (1, version)]
    assert record_of(reader, version)["status"] == "succeeded"  # type: ignore[index]
    figure(f"publish: {step}", "/".join(kinds), "persistent", faults, errors=1)


def test_maas_publish_exits_5_with_one_line_when_s3_keeps_failing(
    s3_bucket: str,
    onnx_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI builds its own client from boto3's default session: inject there.
    session = boto3.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    faults = S3Faults(session.events)
    faults.fail("SlowDown", "PutObject", "/model.onnx")
    url = f"s3://{s3_bucket}/cli"
    code = main(["publish", str(onnx_model), "--name", "digits", "--alias", "production",
                 "--registry", url])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 5 and err.startswith("maas: error: ") and err.count("\n") == 1, err
    assert "SlowDown" in err
    assert clean_registry(s3_bucket, "cli").list_versions("digits") == []
    figure("publish (maas publish)", "SlowDown", "persistent", faults, errors=1)


def test_a_lost_answer_to_a_conditional_write_is_not_a_conflict(
    s3_bucket: str, onnx_model: Path, onnx_model_b: Path
) -> None:
    """A timeout can strike after S3 applied the write. botocore then retries the
    same ``If-None-Match: *`` create, which S3 refuses (412): the publisher must
    recognise its own write there, not take it for someone else's."""
    release(clean_registry(s3_bucket, "lost"), onnx_model, "digits", alias="production")
    registry, faults = faulty_registry(s3_bucket, "lost")
    faults.fail("ReadTimeout", "PutObject", first_attempts=1, lost_answer=True)
    published = release(registry, onnx_model_b, "digits", alias="production")
    reader = clean_registry(s3_bucket, "lost")
    assert published.version == 2 and reader.list_versions("digits") == [1, 2]
    assert published.deployment is not None and published.deployment.recorded
    assert published.deployment.reason == "production -> 2"  # its own move, not "already"
    assert reader.get_alias("digits", "production")["version"] == 2
    assert moves(reader) == [(None, 1), (1, 2)]
    assert record_of(reader, 2)["status"] == "succeeded"  # type: ignore[index]
    figure("publish: every answer lost once", "ReadTimeout", "first attempt", faults, served=1)


# ----------------------------------------------------------------------- deploy

#: Each S3 request the deployer makes for a manifest event, in order.
DEPLOY_STEPS = {
    "record read": ("GetObject", "/deployments/2.json"),
    "manifest read": ("GetObject", "/versions/2/manifest.json"),
    "model download": ("GetObject", "/versions/2/model.onnx"),
    "history listing": ("ListObjectsV2", "/history/"),
    "alias read": ("GetObject", "/aliases/production.json"),
    "alias write": ("PutObject", "/aliases/production.json"),
    "record write": ("PutObject", "/deployments/2.json"),
}
#: ... and for a raw upload to incoming/.
INCOMING_STEPS = {
    "upload head": ("HeadObject", "/incoming/"),
    "upload download": ("GetObject", "/incoming/"),
    "manifest commit": ("PutObject", "/manifest.json"),
    "upload record write": ("PutObject", "/deployments/incoming-"),
}


@pytest.fixture
def deploying(s3_bucket: str, onnx_model: Path, onnx_model_b: Path) -> Registry:
    """v1 on production; v2 committed, asking for production, not deployed yet."""
    reader = clean_registry(s3_bucket, "dep")
    release(reader, onnx_model, "digits", alias="production")
    reader.publish(onnx_model_b, "digits", details={"deploy": PRODUCTION})
    return reader


def faulty_deployer(bucket: str) -> tuple[Deployer, S3Faults]:
    registry, faults = faulty_registry(bucket, "dep")
    return Deployer(registry, "staging", metrics.Telemetry(EphemeralMetrics())), faults


def manifest_v2(bucket: str) -> dict[str, Any]:
    return s3_event(bucket, f"dep/{Registry.manifest_key('digits', 2)}")


def upload_event(bucket: str, body: bytes) -> dict[str, Any]:
    key = "dep/incoming/digits/new model.onnx"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return s3_event(bucket, key)


def test_transient_faults_during_deploy_are_retried_away(
    s3_bucket: str, deploying: Registry
) -> None:
    deployer, faults = faulty_deployer(s3_bucket)
    faults.fail(first_attempts=2)
    assert [o.status for o in deployer.handle_event(manifest_v2(s3_bucket))] == ["succeeded"]
    assert moves(deploying) == [(None, 1), (1, 2)]
    assert record_of(deploying, 2)["status"] == "succeeded"  # type: ignore[index]
    assert set(faults.faulted_attempts()) == {3}
    figure("deploy", IN_TURN, "first 2 attempts", faults, served=1)


def test_transient_faults_on_a_raw_upload_are_retried_away(
    s3_bucket: str, deploying: Registry, onnx_model_b: Path
) -> None:
    deployer, faults = faulty_deployer(s3_bucket)
    faults.fail(first_attempts=2)
    upload = upload_event(s3_bucket, onnx_model_b.read_bytes())
    assert [(o.status, o.version) for o in deployer.handle_event(upload)] == [("succeeded", 3)]
    assert moves(deploying, "staging") == [(None, 3)]
    assert set(faults.faulted_attempts()) == {3}
    figure("deploy upload", IN_TURN, "first 2 attempts", faults, served=1)


@pytest.mark.parametrize(("step", "kinds"), step_cases(DEPLOY_STEPS, {"model download"}))
def test_persistent_faults_during_deploy_raise_and_record_nothing(
    s3_bucket: str, deploying: Registry, step: str, kinds: tuple[str, ...]
) -> None:
    deployer, faults = faulty_deployer(s3_bucket)
    faults.fail(kinds, *DEPLOY_STEPS[step])
    with pytest.raises(StoreUnavailable):  # Lambda retries the event
        deployer.handle_event(manifest_v2(s3_bucket))
    assert_gave_up_after_retries(faults)
    assert record_of(deploying, 2) is None
    moved = step == "record write"  # the move is durable; only its record is missing
    assert deploying.get_alias("digits", "production")["version"] == (2 if moved else 1)
    faults.clear()
    assert [o.status for o in deployer.handle_event(manifest_v2(s3_bucket))] == ["succeeded"]
    assert [o.status for o in deployer.handle_event(manifest_v2(s3_bucket))] == ["duplicate"]
    assert moves(deploying) == [(None, 1), (1, 2)]
    assert record_of(deploying, 2)["status"] == "succeeded"  # type: ignore[index]
    figure(f"deploy: {step}", "/".join(kinds), "persistent", faults, errors=1)


@pytest.mark.parametrize(("step", "kinds"), step_cases(INCOMING_STEPS, {"upload download"}))
def test_persistent_faults_on_a_raw_upload_raise_and_create_nothing_half_written(
    s3_bucket: str, deploying: Registry, onnx_model_b: Path, step: str, kinds: tuple[str, ...]
) -> None:
    deployer, faults = faulty_deployer(s3_bucket)
    event = upload_event(s3_bucket, onnx_model_b.read_bytes())
    faults.fail(kinds, *INCOMING_STEPS[step])
    with pytest.raises(StoreUnavailable):
        deployer.handle_event(event)
    assert_gave_up_after_retries(faults)
    created = step == "upload record write"  # published and deployed; its record is missing
    assert deploying.list_versions("digits") == ([1, 2, 3] if created else [1, 2])
    assert list(deploying.store.list_keys("models/digits/deployments/incoming-")) == []
    faults.clear()
    (outcome,) = deployer.handle_event(event)
    assert outcome.status == ("duplicate" if created else "succeeded"), outcome
    assert [o.status for o in deployer.handle_event(event)] == ["duplicate"]
    (version,) = set(deploying.list_versions("digits")) - {1, 2}  # exactly one new version
    assert outcome.version == version
    assert moves(deploying, "staging") == [(None, version)]
    figure(f"deploy upload: {step}", "/".join(kinds), "persistent", faults, errors=1)
