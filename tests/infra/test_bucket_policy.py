"""The registry's access rules, evaluated from the rendered policies (tests/infra/iam.py).

Each S3 request is modelled as IAM sees it: PutObject, CreateMultipartUpload,
UploadPart and CompleteMultipartUpload are all the action s3:PutObject, told
apart by s3:ObjectCreationOperation (true for the two that create the object);
an If-None-Match header sets s3:if-none-match. Every request is over TLS 1.3
unless a test says otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.iam import Decision, Request, conditions_hold, decide, matches
from tests.infra.stack import ACCOUNT, BUCKET, BUCKET_ARN, Stack

INFERENCE = f"arn:aws:iam::{ACCOUNT}:role/maas-test-InferenceFunctionRole-ABC"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/maas-test-DeployerFunctionRole-DEF"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/ops"  # a maas CLI user with full S3 rights
LOGGING = "logging.s3.amazonaws.com"
ADMIN_POLICY = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]

TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
CREATES_OBJECT = {  # S3 operation -> s3:ObjectCreationOperation
    "PutObject": "true",
    "CreateMultipartUpload": "false",
    "UploadPart": "false",
    "CompleteMultipartUpload": "true",
}
VERSION_FILES = ["claim.json", "model.onnx", "manifest.json"]


def write(
    operation: str,
    key: str,
    principal: str = ADMIN,
    *,
    if_none_match: bool = False,
    if_match: bool = False,
    context: dict[str, str] | None = None,
) -> Request:
    ctx = dict(TLS, **{"s3:ObjectCreationOperation": CREATES_OBJECT[operation]})
    if if_none_match:
        ctx["s3:if-none-match"] = "*"
    if if_match:
        ctx["s3:if-match"] = '"0123456789abcdef"'
    ctx.update(context or {})
    return Request("s3:PutObject", f"{BUCKET_ARN}/{key}", principal, ctx)


def listing(principal: str, prefix: str | None) -> Request:
    ctx = dict(TLS) if prefix is None else dict(TLS, **{"s3:prefix": prefix})
    return Request("s3:ListBucket", BUCKET_ARN, principal, ctx)


def read(principal: str, key: str) -> Request:
    return Request("s3:GetObject", f"{BUCKET_ARN}/{key}", principal, dict(TLS))


def bucket_policy(stack: Stack, name: str = "ModelBucketPolicy") -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = stack.resource(name)["PolicyDocument"]["Statement"]
    return statements


def identity(stack: Stack, principal: str) -> list[dict[str, Any]]:
    if principal == INFERENCE:
        return stack.statements("InferenceFunction")
    if principal == DEPLOYER:
        return stack.statements("DeployerFunction")
    return ADMIN_POLICY if principal == ADMIN else []


def decision(request: Request, stack: Stack | None = None) -> Decision:
    stack = stack or Stack()
    return decide(request, identity(stack, request.principal), bucket_policy(stack))


def missing_key_status(principal: str, key: str) -> int:
    """S3's answer to a GetObject of a missing key: 404 only to a caller allowed
    s3:ListBucket, checked with the requested key as s3:prefix; 403 otherwise."""
    if decision(read(principal, key)) != "allow":
        return 403
    return 404 if decision(listing(principal, key)) == "allow" else 403


# ------------------------------------------------------- write-once versions


@pytest.mark.parametrize("principal", [ADMIN, DEPLOYER])
@pytest.mark.parametrize("name", VERSION_FILES)
def test_a_put_under_versions_needs_if_none_match(principal: str, name: str) -> None:
    key = f"models/digits/versions/7/{name}"
    assert decision(write("PutObject", key, principal)) == "explicit deny"
    assert decision(write("PutObject", key, principal, if_none_match=True)) == "allow"


def test_a_compare_and_swap_cannot_replace_a_version_either() -> None:
    key = "models/digits/versions/7/manifest.json"
    assert decision(write("PutObject", key, if_match=True)) == "explicit deny"


@pytest.mark.parametrize("principal", [ADMIN, DEPLOYER])
def test_a_multipart_upload_under_versions_is_checked_at_completion(principal: str) -> None:
    key = "models/digits/versions/7/model.onnx"
    for operation in ("CreateMultipartUpload", "UploadPart"):  # they take no conditional header
        assert decision(write(operation, key, principal)) == "allow", operation
    assert decision(write("CompleteMultipartUpload", key, principal)) == "explicit deny"
    completed = write("CompleteMultipartUpload", key, principal, if_none_match=True)
    assert decision(completed) == "allow"


@pytest.mark.parametrize(
    "key",
    [
        "models/digits/aliases/production.json",
        "models/digits/history/00000000000001-production.json",
        "models/digits/deployments/7.json",
        "models/digits/deployments/incoming-abc.json",
    ],
)
def test_writes_outside_versions_are_unaffected(key: str) -> None:
    for request in (write("PutObject", key, DEPLOYER), write("PutObject", key, ADMIN)):
        assert decision(request) == "allow", request
    assert decision(write("PutObject", key, DEPLOYER, if_match=True)) == "allow"  # alias moves
    assert decision(write("CompleteMultipartUpload", key, ADMIN)) == "allow"


def test_raw_uploads_to_incoming_need_no_header() -> None:
    """`aws s3 cp model.onnx s3://BUCKET/incoming/NAME/` stays possible for an operator."""
    key = "incoming/digits/model.onnx"
    assert decision(write("PutObject", key, ADMIN)) == "allow"
    assert decision(write("CompleteMultipartUpload", key, ADMIN)) == "allow"
    assert decision(write("PutObject", key, DEPLOYER)) == "implicit deny"


def test_the_inference_function_writes_nothing() -> None:
    for key in ("models/digits/versions/7/model.onnx", "models/digits/aliases/production.json"):
        assert decision(write("PutObject", key, INFERENCE, if_none_match=True)) == "implicit deny"


def test_plain_http_and_old_tls_are_refused_even_with_the_header() -> None:
    key = "models/digits/versions/7/model.onnx"
    plain = write("PutObject", key, if_none_match=True, context={"aws:SecureTransport": "false"})
    old = write("PutObject", key, if_none_match=True, context={"s3:TlsVersion": "1.1"})
    assert decision(plain) == decision(old) == "explicit deny"


def test_the_write_once_statement_is_the_one_the_s3_guide_shows() -> None:
    (statement,) = [st for st in bucket_policy(Stack()) if st.get("Sid") == "VersionsAreWriteOnce"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == f"{BUCKET_ARN}/models/*/versions/*"
    # A bare Null in YAML would parse as None and the condition would never apply.
    assert statement["Condition"] == {
        "Null": {"s3:if-none-match": "true"},
        "Bool": {"s3:ObjectCreationOperation": "true"},
    }


# ------------------------------------------------------------------- listing


def test_inference_lists_models_only() -> None:
    assert decision(listing(INFERENCE, "models/")) == "allow"
    assert decision(listing(INFERENCE, "models/digits/versions/")) == "allow"
    assert decision(listing(INFERENCE, "incoming/")) == "implicit deny"
    assert decision(listing(INFERENCE, "")) == "implicit deny"
    assert decision(listing(INFERENCE, None)) == "implicit deny"  # the bucket root, no prefix


def test_deployer_lists_models_and_incoming_only() -> None:
    assert decision(listing(DEPLOYER, "models/digits/versions/")) == "allow"
    assert decision(listing(DEPLOYER, "incoming/digits/")) == "allow"
    assert decision(listing(DEPLOYER, "")) == "implicit deny"
    assert decision(listing(DEPLOYER, None)) == "implicit deny"


@pytest.mark.parametrize(
    "key",
    [
        "models/digits/aliases/production.json",
        "models/unknown/aliases/production.json",
        "models/digits/versions/99/manifest.json",
    ],
)
def test_a_missing_key_under_models_reads_as_404(key: str) -> None:
    assert missing_key_status(INFERENCE, key) == 404
    assert missing_key_status(DEPLOYER, key) == 404


def test_outside_models_the_inference_function_learns_nothing() -> None:
    assert missing_key_status(INFERENCE, "incoming/digits/model.onnx") == 403
    assert missing_key_status(DEPLOYER, "incoming/digits/model.onnx") == 404
    assert missing_key_status(DEPLOYER, "elsewhere.json") == 403


# ----------------------------------------------------------- access-log bucket


def log_delivery(key: str, source: str = BUCKET_ARN, account: str = ACCOUNT) -> Request:
    log_arn = f"arn:aws:s3:::{Stack().ref('AccessLogBucket')}"
    context = dict(TLS, **{"aws:SourceArn": source, "aws:SourceAccount": account})
    context["s3:ObjectCreationOperation"] = "true"
    return Request("s3:PutObject", f"{log_arn}/{key}", LOGGING, context)


def log_decision(request: Request) -> Decision:
    return decide(request, [], bucket_policy(Stack(), "AccessLogBucketPolicy"))


def test_only_the_logging_service_delivers_and_only_for_the_registry() -> None:
    key = "registry/123456789012/eu-west-1/" + BUCKET + "/2026/01/02/2026-01-02-03-04-05-ABC"
    assert log_decision(log_delivery(key)) == "allow"
    assert log_decision(log_delivery(key, source="arn:aws:s3:::someone-else")) == "implicit deny"
    assert log_decision(log_delivery(key, account="210987654321")) == "implicit deny"
    assert log_decision(log_delivery("elsewhere/log")) == "implicit deny"
    impostor = Request("s3:PutObject", log_delivery(key).resource, DEPLOYER, dict(TLS))
    assert log_decision(impostor) == "implicit deny"
    plain = log_delivery(key)
    plain = Request(
        plain.action, plain.resource, LOGGING, {**plain.context, "aws:SecureTransport": "false"}
    )
    assert log_decision(plain) == "explicit deny"


# ------------------------------------------------------------- the evaluator


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"Null": {"k:x": "true"}}, {}, True),
        ({"Null": {"k:x": "true"}}, {"k:x": "*"}, False),
        ({"Null": {"k:x": "false"}}, {"k:x": "*"}, True),
        ({"StringLike": {"k:p": "models/*"}}, {}, False),
        ({"StringLikeIfExists": {"k:p": "models/*"}}, {}, True),
        ({"StringLikeIfExists": {"k:p": "models/*"}}, {"k:p": "incoming/"}, False),
        ({"StringLike": {"k:p": ["a/*", "b/*"]}}, {"k:p": "b/c"}, True),
        ({"StringLike": {"k:p": "[a]*"}}, {"k:p": "a1"}, False),  # no character classes in IAM
        ({"StringEquals": {"k:a": "1"}}, {"k:a": "1"}, True),
        ({"StringNotEquals": {"k:a": "1"}}, {}, True),  # negated operators match an absent key
        ({"StringNotEquals": {"k:a": "1"}}, {"k:a": "1"}, False),
        ({"Bool": {"k:b": "false"}}, {"k:b": "False"}, True),
        ({"Bool": {"k:b": "true"}}, {}, False),
        ({"NumericLessThan": {"k:n": "1.2"}}, {"k:n": "1.1"}, True),
        ({"NumericLessThan": {"k:n": "1.2"}}, {"k:n": "1.3"}, False),
        ({"Null": {"k:x": "true"}, "Bool": {"k:b": "true"}}, {"k:b": "true"}, True),
        ({"Null": {"k:x": "true"}, "Bool": {"k:b": "true"}}, {"k:b": "false"}, False),
    ],
)
def test_the_evaluator_follows_iam_condition_semantics(
    condition: dict[str, Any], context: dict[str, str], holds: bool
) -> None:
    assert conditions_hold(condition, context) is holds


def test_the_evaluator_refuses_what_it_does_not_know() -> None:
    with pytest.raises(AssertionError, match="DateLessThan"):
        conditions_hold({"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}, {})
    with pytest.raises(AssertionError, match="bare Null"):
        conditions_hold({None: {"s3:if-none-match": "true"}}, {})  # type: ignore[dict-item]


def test_wildcards_cross_slashes_in_resources_and_ignore_case_in_actions() -> None:
    assert matches(f"{BUCKET_ARN}/models/*/versions/*", f"{BUCKET_ARN}/models/a/versions/1/m")
    assert not matches(f"{BUCKET_ARN}/models/*/versions/*", f"{BUCKET_ARN}/models/a/aliases/p")
    assert matches("s3:Get*", "s3:getobject", ignore_case=True)
