"""template.yaml: the security and wiring properties the deployment promises.

tests/infra/stack.py resolves the template as CloudFormation would (fixed
pseudo parameters and bucket name); tests/infra/iam.py evaluates the policies,
and tests/infra/test_bucket_policy.py holds the registry's access rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.iam import Request, decide
from tests.infra.stack import ACCOUNT, BUCKET, BUCKET_ARN, TEMPLATE, Stack, listify, template

ROLE = f"arn:aws:iam::{ACCOUNT}:role/maas-test-FunctionRole"
ALL_PUBLIC_ACCESS_BLOCKED = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def allowed(
    statements: list[dict[str, Any]], action: str, resource: str, prefix: str | None = None
) -> bool:
    """Whether a function's own policy allows a request (no bucket policy involved).

    ``prefix=None`` is a request with no s3:prefix key: a ListBucket of the
    whole bucket."""
    context = {} if prefix is None else {"s3:prefix": prefix}
    return decide(Request(action, resource, ROLE, context), statements) == "allow"


# ----------------------------------------------------------------- parameters


def test_every_parameter_has_a_safe_default() -> None:
    params = template()["Parameters"]
    assert [n for n, p in params.items() if "Default" not in p] == []
    defaults = {name: str(p["Default"]) for name, p in params.items()}
    assert defaults["Architecture"] == "x86_64"
    assert set(params["Architecture"]["AllowedValues"]) == {"x86_64", "arm64"}
    assert defaults["Auth"] == "AWS_IAM"
    assert set(params["Auth"]["AllowedValues"]) == {"AWS_IAM", "NONE", "JWT"}
    assert defaults["DefaultAlias"] == "production"
    assert defaults["AliasTtlSeconds"] == "10"
    assert defaults["ProvisionedConcurrency"] == "0"
    assert defaults["SnapStart"] == "off"
    # Unset: a reservation fails the deploy on an account with the minimum limit.
    assert defaults["InferenceReservedConcurrency"] == ""
    assert defaults["DeployerReservedConcurrency"] == ""
    for name in ("MemorySize", "ThrottlingRateLimit", "ThrottlingBurstLimit", "LogRetentionDays"):
        assert name in params
    assert "10038" in params["Architecture"]["Description"]  # the arm64 history


def test_architecture_parameter_drives_functions_and_layer() -> None:
    t = template()
    assert t["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    for name in ("InferenceFunction", "DeployerFunction"):
        assert "Architectures" not in t["Resources"][name]["Properties"]
    layer = t["Resources"]["ServingLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["ContentUri"] == "layers/serving"


# --------------------------------------------------------------------- bucket


def test_bucket_is_private_versioned_encrypted_and_kept() -> None:
    raw = template()["Resources"]["ModelBucket"]
    bucket = Stack().resource("ModelBucket")
    assert bucket["BucketName"] == BUCKET
    assert len(BUCKET) <= 63 and BUCKET.lower() == BUCKET
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == ALL_PUBLIC_ACCESS_BLOCKED
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert raw["DeletionPolicy"] == "Retain" and raw["UpdateReplacePolicy"] == "Retain"


def log_bucket_name() -> str:
    return str(Stack().ref("AccessLogBucket"))


@pytest.mark.parametrize(
    ("policy", "bucket"), [("ModelBucketPolicy", BUCKET), ("AccessLogBucketPolicy", None)]
)
def test_both_bucket_policies_deny_plain_http(policy: str, bucket: str | None) -> None:
    bucket = bucket or log_bucket_name()
    arn = f"arn:aws:s3:::{bucket}"
    props = Stack().resource(policy)
    assert props["Bucket"] == bucket
    tls = [
        st
        for st in props["PolicyDocument"]["Statement"]
        if st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(tls) == 1
    (st,) = tls
    assert st["Effect"] == "Deny" and st["Principal"] == "*" and st["Action"] == "s3:*"
    assert set(st["Resource"]) == {arn, f"{arn}/*"}


def test_the_registry_policy_only_denies() -> None:
    """Grants live in the roles; the bucket policy only takes away."""
    statements = Stack().resource("ModelBucketPolicy")["PolicyDocument"]["Statement"]
    assert all(st["Effect"] == "Deny" for st in statements)
    assert {st["Sid"] for st in statements} == {
        "DenyInsecureTransport",
        "DenyTlsBelow12",
        "VersionsAreWriteOnce",
    }


def test_registry_requests_are_logged_to_a_private_expiring_log_bucket() -> None:
    stack = Stack()
    logging = stack.resource("ModelBucket")["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == log_bucket_name()
    assert logging["LogFilePrefix"] == "registry/"
    raw = template()["Resources"]["AccessLogBucket"]
    assert raw["DeletionPolicy"] == "Retain" and raw["UpdateReplacePolicy"] == "Retain"
    logs = stack.resource("AccessLogBucket")
    (rule,) = logs["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    # S3 delivers server access logs only to buckets whose default encryption is SSE-S3.
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert logs["PublicAccessBlockConfiguration"] == ALL_PUBLIC_ACCESS_BLOCKED
    # ACLs off: the logging service writes under the bucket policy, not the log-delivery ACL.
    assert logs["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    expiry = [r for r in logs["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert [(r["Status"], r["ExpirationInDays"]) for r in expiry] == [("Enabled", "30")]
    retention = template()["Resources"]["AccessLogBucket"]["Properties"]["LifecycleConfiguration"]
    assert {"Ref": "LogRetentionDays"} in [r.get("ExpirationInDays") for r in retention["Rules"]]
    assert "LoggingConfiguration" not in logs  # a log bucket logging into itself never ends
    (allow,) = [
        st
        for st in stack.resource("AccessLogBucketPolicy")["PolicyDocument"]["Statement"]
        if st["Effect"] == "Allow"
    ]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == f"arn:aws:s3:::{log_bucket_name()}/registry/*"
    assert allow["Condition"] == {
        "ArnLike": {"aws:SourceArn": BUCKET_ARN},  # the computed name is the registry's name
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }


def test_notifications_go_straight_to_the_deployer_with_both_filters() -> None:
    stack = Stack()
    config = stack.resource("ModelBucket")["NotificationConfiguration"]
    assert set(config) == {"LambdaConfigurations"}
    seen = set()
    for entry in config["LambdaConfigurations"]:
        assert entry["Event"] == "s3:ObjectCreated:*"
        assert entry["Function"] == stack.getatt("DeployerFunction", "Arn")
        rules = {r["Name"]: r["Value"] for r in entry["Filter"]["S3Key"]["Rules"]}
        seen.add((rules["prefix"], rules["suffix"]))
    assert seen == {("models/", "manifest.json"), ("incoming/", ".onnx")}
    assert len(config["LambdaConfigurations"]) == 2


def test_s3_may_invoke_the_deployer_for_this_bucket_only() -> None:
    stack = Stack()
    permission = stack.resource("DeployerS3InvokePermission")
    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["SourceArn"] == BUCKET_ARN
    assert permission["SourceAccount"] == ACCOUNT
    assert permission["FunctionName"] == stack.getatt("DeployerFunction", "Arn")
    # S3 validates the notification's destination and the log bucket's permission
    # when it saves the bucket's configuration.
    depends = template()["Resources"]["ModelBucket"]["DependsOn"]
    assert set(depends) == {"DeployerS3InvokePermission", "AccessLogBucketPolicy"}


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize("name", ["InferenceFunction", "DeployerFunction"])
def test_functions_share_the_layer_and_runtime(name: str) -> None:
    stack = Stack()
    fn = stack.function(name)
    raw = template()["Resources"][name]
    assert fn["Runtime"] == "python3.12"
    assert fn["Handler"] == "app.handler"
    # Issue 15: onnx (verification) ships in a layer of the deployer's alone.
    expected = ["<ServingLayer>", "<VerifyLayer>"] if name == "DeployerFunction" else []
    assert fn["Layers"] == (expected or ["<ServingLayer>"])
    assert fn["Architectures"] == ["x86_64"]
    assert raw["Metadata"]["BuildMethod"] == "makefile"
    env = fn["Environment"]["Variables"]
    assert env["MAAS_REGISTRY"] == f"s3://{BUCKET}"
    assert env["MAAS_DEFAULT_ALIAS"] == "production"
    assert env["MAAS_CACHE_DIR"] == "/tmp/maas-models"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "maas"
    # A service dimension would change every metric's dimension set.
    assert "POWERTOOLS_SERVICE_NAME" not in env
    log_group = template()["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]
    assert template()["Resources"][log_group["Ref"]]["Type"] == "AWS::Logs::LogGroup"


def test_inference_function_settings() -> None:
    stack = Stack()
    fn = stack.function("InferenceFunction")
    assert fn["Timeout"] < 30  # the HTTP API integration limit
    assert fn["Environment"]["Variables"]["MAAS_ALIAS_TTL_SECONDS"] == "10"
    assert fn["AutoPublishAlias"] == "live"
    assert fn["AutoPublishAliasAllProperties"] is True  # a layer change publishes a version
    assert "ProvisionedConcurrencyConfig" not in fn and "SnapStart" not in fn
    assert "ReservedConcurrentExecutions" not in fn
    deployer = stack.function("DeployerFunction")
    assert "ReservedConcurrentExecutions" not in deployer
    assert deployer["Timeout"] >= 60
    assert deployer["Environment"]["Variables"]["MAAS_INCOMING_ALIAS"] == "staging"


def test_provisioned_concurrency_and_snapstart_are_optional() -> None:
    fn = Stack(ProvisionedConcurrency="2").function("InferenceFunction")
    assert fn["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": "2"}
    assert "SnapStart" not in fn
    fn = Stack(SnapStart="on").function("InferenceFunction")
    assert fn["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "ProvisionedConcurrencyConfig" not in fn
    rules = template()["Rules"]["SnapStartLimits"]
    assert rules["RuleCondition"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "on"]}


@pytest.mark.parametrize(
    ("parameter", "function"),
    [
        ("InferenceReservedConcurrency", "InferenceFunction"),
        ("DeployerReservedConcurrency", "DeployerFunction"),
    ],
)
def test_reserved_concurrency_is_optional(parameter: str, function: str) -> None:
    other = ({"InferenceFunction", "DeployerFunction"} - {function}).pop()
    for value in ("5", "0"):  # 0 is a stop switch, and allowed
        stack = Stack(**{parameter: value})
        assert stack.function(function)["ReservedConcurrentExecutions"] == value
        assert "ReservedConcurrentExecutions" not in stack.function(other)
    pattern = template()["Parameters"][parameter]["AllowedPattern"]
    for good in ("", "0", "10", "900"):
        assert re.fullmatch(pattern, good), good
    for bad in ("-1", "1.5", "ten", " 5"):
        assert not re.fullmatch(pattern, bad), bad


def test_inference_reads_models_only() -> None:
    st = Stack().statements("InferenceFunction")
    key = f"{BUCKET_ARN}/models/digits/versions/3/model.onnx"
    assert allowed(st, "s3:GetObject", key)
    assert allowed(st, "s3:GetObject", f"{BUCKET_ARN}/models/digits/aliases/production.json")
    assert not allowed(st, "s3:GetObject", f"{BUCKET_ARN}/incoming/digits/model.onnx")
    assert not allowed(st, "s3:GetObject", f"{BUCKET_ARN}/other")
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:PutBucketPolicy"):
        assert not allowed(st, action, key), action
    assert allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="models/digits/versions/")
    assert not allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="incoming/")
    assert not allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="")
    assert not allowed(st, "s3:ListBucket", BUCKET_ARN, prefix=None)  # the whole bucket
    # S3 answers 404 (not 403) for a missing key only to a caller allowed to list,
    # with the key as s3:prefix (tests/infra/test_bucket_policy.py has the rest).
    assert allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="models/digits/aliases/production.json")
    assert not allowed(st, "s3:GetObject", "arn:aws:s3:::another-bucket/models/x")


def test_deployer_reads_models_and_incoming_and_writes_models_only() -> None:
    st = Stack().statements("DeployerFunction")
    model = f"{BUCKET_ARN}/models/digits/versions/4/model.onnx"
    incoming = f"{BUCKET_ARN}/incoming/digits/model.onnx"
    assert allowed(st, "s3:GetObject", model)
    assert allowed(st, "s3:GetObject", incoming)
    assert allowed(st, "s3:PutObject", model)
    assert allowed(st, "s3:PutObject", f"{BUCKET_ARN}/models/digits/deployments/4.json")
    assert not allowed(st, "s3:PutObject", incoming)
    assert not allowed(st, "s3:PutObject", f"{BUCKET_ARN}/elsewhere.json")
    for action in (
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutBucketPolicy",
        "s3:PutObjectAcl",
    ):
        assert not allowed(st, action, model), action
    assert allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="models/digits/versions/")
    assert allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="incoming/digits/")
    assert not allowed(st, "s3:ListBucket", BUCKET_ARN, prefix="")
    assert not allowed(st, "s3:ListBucket", BUCKET_ARN, prefix=None)


@pytest.mark.parametrize("name", ["InferenceFunction", "DeployerFunction"])
def test_no_wildcard_grants(name: str) -> None:
    for st in Stack().statements(name):
        for action in listify(st["Action"]):
            assert "*" not in action, action
        for resource in listify(st["Resource"]):
            assert resource.startswith(BUCKET_ARN), resource


# ------------------------------------------------------------------------ API


@pytest.mark.parametrize("auth", ["AWS_IAM", "NONE", "JWT"])
def test_every_route_carries_the_chosen_auth(auth: str) -> None:
    extra = {"JwtIssuer": "https://issuer.example", "JwtAudience": "a,b"} if auth == "JWT" else {}
    stack = Stack(Auth=auth, **extra)
    routes = stack.of_type("AWS::ApiGatewayV2::Route")
    assert routes
    for name in routes:
        route = stack.resource(name)
        assert route["AuthorizationType"] == auth
        assert ("AuthorizerId" in route) == (auth == "JWT")
    authorizer = stack.resource("JwtAuthorizer")
    if auth == "JWT":
        assert authorizer["JwtConfiguration"] == {
            "Issuer": "https://issuer.example",
            "Audience": ["a", "b"],
        }
    else:
        assert authorizer == {}
    rule = template()["Rules"]["JwtNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Auth"}, "JWT"]}


def test_one_catch_all_route_to_the_live_alias() -> None:
    stack = Stack()
    (route,) = stack.of_type("AWS::ApiGatewayV2::Route")
    assert stack.resource(route)["RouteKey"] == "$default"  # every method and path, "/" included
    (integration,) = stack.of_type("AWS::ApiGatewayV2::Integration")
    props = stack.resource(integration)
    assert props["IntegrationType"] == "AWS_PROXY"
    assert props["PayloadFormatVersion"] == "2.0"
    assert props["IntegrationUri"].endswith(":function:InferenceFunction:live")
    assert props["TimeoutInMillis"] <= 30000
    api = stack.resource("HttpApi")
    assert api["ProtocolType"] == "HTTP"
    permission = stack.resource("ApiInvokePermission")
    assert permission["FunctionName"] == props["IntegrationUri"]
    assert permission["Principal"] == "apigateway.amazonaws.com"


def test_stage_throttles_and_logs_access() -> None:
    stack = Stack(ThrottlingRateLimit="7", ThrottlingBurstLimit="9")
    (name,) = stack.of_type("AWS::ApiGatewayV2::Stage")
    stage = stack.resource(name)
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    throttling = {"ThrottlingRateLimit": "7", "ThrottlingBurstLimit": "9"}
    assert stage["DefaultRouteSettings"] == throttling
    destination = template()["Resources"][name]["Properties"]["AccessLogSettings"]["DestinationArn"]
    assert destination == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    json.loads(stage["AccessLogSettings"]["Format"])  # one JSON object per request


def test_every_log_group_has_the_retention_parameter() -> None:
    t = template()
    groups = Stack().of_type("AWS::Logs::LogGroup")
    assert len(groups) == 3
    for name in groups:
        assert t["Resources"][name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ----------------------------------------------------------------- monitoring


def alarm_metrics(props: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    if "Metrics" in props:
        return [
            (
                m["MetricStat"]["Metric"]["Namespace"],
                m["MetricStat"]["Metric"]["MetricName"],
                m["MetricStat"]["Metric"].get("Dimensions", []),
            )
            for m in props["Metrics"]
            if "MetricStat" in m
        ]
    return [(props["Namespace"], props["MetricName"], props.get("Dimensions", []))]


def test_alarms_on_5xx_rate_p99_latency_and_failed_deployments() -> None:
    stack = Stack()
    alarms = {name: stack.resource(name) for name in stack.of_type("AWS::CloudWatch::Alarm")}

    rate = alarms["Api5xxRateAlarm"]
    names = {metric for _, metric, _ in alarm_metrics(rate)}
    assert names == {"Count", "5xx"}
    (expression,) = [m["Expression"] for m in rate["Metrics"] if "Expression" in m]
    assert "errors" in expression and "/ requests" in expression

    latency = alarms["ApiLatencyP99Alarm"]
    assert latency["ExtendedStatistic"] == "p99" and latency["MetricName"] == "Latency"
    assert latency["Threshold"] == "1000"

    failed = alarms["DeploymentFailedAlarm"]
    assert (failed["Namespace"], failed["MetricName"]) == ("maas", "DeploymentFailed")
    assert "Dimensions" not in failed  # the deployer emits it with no dimension
    assert failed["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert failed["Threshold"] == 1

    for props in alarms.values():
        assert props["TreatMissingData"] == "notBreaching"
        assert "AlarmActions" not in props  # no topic by default
        for namespace, _, dims in alarm_metrics(props):
            if namespace == "AWS/ApiGateway":
                assert dims == [{"Name": "ApiId", "Value": "<HttpApi>"}]
    topic = "arn:aws:sns:eu-west-1:123456789012:ops"
    assert Stack(AlarmTopicArn=topic).resource("DeploymentFailedAlarm")["AlarmActions"] == [topic]


def test_dashboard_is_valid_json_with_the_promised_graphs() -> None:
    body = json.loads(Stack().resource("Dashboard")["DashboardBody"])
    metrics: list[list[Any]] = []
    expressions: list[str] = []
    for widget in body["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict):
                expressions.append(line[0]["expression"])
            else:
                metrics.append(line)
    text = json.dumps(metrics)
    for needle in (
        '"AWS/ApiGateway", "Count"',
        '"4xx"',
        '"5xx"',
        '"Latency"',
        '"maas", "ColdStart", "function_name"',
        '"maas", "DeploymentFailed"',
        '"maas", "DeploymentSucceeded"',
        '"maas", "DeployValidationTime"',
    ):
        assert needle in text, needle
    stats = {opts.get("stat") for line in metrics for opts in line if isinstance(opts, dict)}
    assert {"p50", "p99"} <= stats
    per_model = [e for e in expressions if "{maas,model,version}" in e]
    assert any('"InferenceTime"' in e and "'p99'" in e for e in per_model)
    assert any('"InferenceTime"' in e and "'p50'" in e for e in per_model)
    assert any('"InferenceTime"' in e and "'SampleCount'" in e for e in per_model)
    alarm_widgets = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert (
        len(alarm_widgets) == 1 and len(alarm_widgets[0]["properties"]["alarms"]) == 6
    )  # with the two drift alarms


def test_outputs() -> None:
    outputs = Stack().resolve(template()["Outputs"])
    assert outputs["ApiUrl"]["Value"] == "https://<HttpApi>.execute-api.eu-west-1.amazonaws.com/"
    assert outputs["ModelBucketName"]["Value"] == BUCKET
    assert outputs["RegistryUrl"]["Value"] == f"s3://{BUCKET}"
    assert {"InferenceFunctionName", "DeployerFunctionName"} <= set(outputs)


def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": ""}}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    for same in ("NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"):
        if same in rule:
            api[same] = rule[same]
    return api


def create_as_declared(s3: Any, bucket: dict[str, Any]) -> str:
    name = bucket["BucketName"]
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(
        Bucket=name, PublicAccessBlockConfiguration=bucket["PublicAccessBlockConfiguration"]
    )
    if "VersioningConfiguration" in bucket:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration=bucket["VersioningConfiguration"]
        )
    # CloudFormation's ServerSideEncryptionByDefault is the S3 API's
    # ApplyServerSideEncryptionByDefault.
    rules: Any = [
        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
        for rule in bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    ]
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=bucket["OwnershipControls"])
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [lifecycle_rule(r) for r in bucket["LifecycleConfiguration"]["Rules"]]
        },
    )
    return str(name)


def test_buckets_as_declared_are_accepted_by_s3_and_registry_requests_are_logged() -> None:
    """Apply the declared configuration to moto buckets, in CloudFormation's order
    (the log bucket and its policy first): S3 accepts it as written, and moto
    delivers the registry's access log records to the log bucket.

    Object requests run with no bucket policy in place: moto 5.2.5 checks them
    against a bucket policy with no condition values and counts a statement
    whose condition does not hold as a denial, whatever its Effect
    (moto.iam.access_control.IAMPolicyStatement), so under either bucket's TLS
    deny every object request fails in moto. test_bucket_policy.py evaluates
    the policies' effect instead."""
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    stack = Stack()
    registry = dict(stack.resource("ModelBucket"))
    logs = dict(stack.resource("AccessLogBucket"), BucketName=log_bucket_name())
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        log_name = create_as_declared(s3, logs)
        create_as_declared(s3, registry)
        logging = registry["LoggingConfiguration"]
        status: Any = {
            "LoggingEnabled": {
                "TargetBucket": logging["DestinationBucketName"],
                "TargetPrefix": logging["LogFilePrefix"],
                "TargetObjectKeyFormat": logging["TargetObjectKeyFormat"],
            }
        }
        # S3 refuses the logging configuration unless the target grants the
        # logging service (ACLs are disabled, so only the policy can).
        with pytest.raises(ClientError, match="InvalidTargetBucketForLogging"):
            s3.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus=status)
        log_policy = stack.resource("AccessLogBucketPolicy")["PolicyDocument"]
        s3.put_bucket_policy(Bucket=log_name, Policy=json.dumps(log_policy))
        s3.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus=status)
        s3.delete_bucket_policy(Bucket=log_name)  # moto's evaluation, see above

        key = "models/digits/versions/1/claim.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}", IfNoneMatch="*")
        records = [
            s3.get_object(Bucket=log_name, Key=o["Key"])["Body"].read().decode()
            for o in s3.list_objects_v2(Bucket=log_name, Prefix="registry/")["Contents"]
        ]
        assert any(f"PUT /{key}" in record for record in records), records

        s3.put_bucket_policy(
            Bucket=BUCKET, Policy=json.dumps(stack.resource("ModelBucketPolicy")["PolicyDocument"])
        )
        assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        stored = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
        assert "VersionsAreWriteOnce" in {st["Sid"] for st in stored["Statement"]}
        expiry = s3.get_bucket_lifecycle_configuration(Bucket=log_name)["Rules"]
        assert [r["Expiration"]["Days"] for r in expiry if "Expiration" in r] == [30]


def test_readme_documents_every_parameter() -> None:
    readme = (TEMPLATE.parent / "README.md").read_text()
    section = readme.split("## Deploy on AWS", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE))
    params = template()["Parameters"]
    assert set(rows) == set(params)
    for name, p in params.items():
        documented = rows[name].strip().strip("`")
        assert documented == (str(p["Default"]) or "empty"), name


def test_make_test_runs_the_template_linters_and_checkov() -> None:
    makefile = (TEMPLATE.parent / "Makefile").read_text()
    (prerequisites,) = re.findall(r"^test: (.*)$", makefile, flags=re.MULTILINE)
    assert {"validate", "checkov"} <= set(prerequisites.split())
    assert "--skip-download" in makefile  # offline: no call to the vendor's API


def test_every_checkov_skip_says_why() -> None:
    text = TEMPLATE.read_text()
    skips = re.findall(r"#\s*checkov:skip=(\S+?):(.*)$", text, flags=re.MULTILINE)
    assert skips, "no skips: then this test is moot, remove it"
    for check, reason in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", check), check
        assert len(reason.split()) >= 8, (check, reason)  # a reason, not a shrug
    assert text.count("checkov:skip") == len(skips)


def test_drift_alarms_query_every_model_with_the_psi_parameter() -> None:
    assert template()["Parameters"]["DriftAlarmPSI"]["Default"] == 0.25
    stack = Stack()
    for name, metric in (
        ("DriftAlarm", "DriftPSI"),
        ("PredictionDriftAlarm", "PredictionDriftPSI"),
    ):
        props = stack.resource(name)
        (query,) = props["Metrics"]
        # Metrics Insights over every (model, version): a plain metric alarm would
        # need one dimension set and never see data.
        assert query["Expression"] == f'SELECT MAX({metric}) FROM SCHEMA("maas", model, version)'
        assert query["ReturnData"] is True and query["Period"] == 300
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["Threshold"] == "0.25"
    assert Stack(DriftAlarmPSI="0.1").resource("DriftAlarm")["Threshold"] == "0.1"
    body = json.loads(Stack().resource("Dashboard")["DashboardBody"])
    text = json.dumps(body)
    for metric in ("DriftPSI", "DriftedFeatures", "PredictionDriftPSI"):
        assert f'MetricName=\\"{metric}\\"' in text, metric
    alarms = next(w for w in body["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    assert "<DriftAlarm.Arn>" in alarms and "<PredictionDriftAlarm.Arn>" in alarms
