"""template.yaml: the security and wiring properties the deployment promises.

The template is parsed with cfn-lint's decoder (it understands !Ref, !Sub and
the other short forms) and evaluated by a small resolver for the intrinsics it
uses, with fake pseudo parameters. So the checks see what CloudFormation would
see: for example that the computed bucket name in the deployer's policy is the
bucket's real name, which !Ref cannot guarantee there (the notification cycle).
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

ACCOUNT = "123456789012"
STACK_UUID = "1c2fa620-982a-11e3-aff7-50e2416294e0"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": "eu-west-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "maas-test",
    "AWS::StackId": f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/maas-test/{STACK_UUID}",
    "AWS::URLSuffix": "amazonaws.com",
}
BUCKET = f"maas-{ACCOUNT}-{STACK_UUID}"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
NO_VALUE = object()


@cache
def template() -> dict[str, Any]:
    parsed, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert parsed is not None
    return dict(parsed)


class Stack:
    """The template resolved for one set of parameter values (defaults otherwise)."""

    def __init__(self, **overrides: str) -> None:
        self.t = template()
        params = self.t["Parameters"]
        unknown = set(overrides) - set(params)
        assert not unknown, unknown
        self.params = {name: str(p["Default"]) for name, p in params.items()}
        self.params.update(overrides)

    # -- intrinsics
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.t["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.getatt(name, attr)
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            assert not key.startswith("Fn::"), f"resolver lacks {key}"
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name.endswith(".Alias"):
            function = name.removesuffix(".Alias")
            assert function in self.t["Resources"]
            return f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{function}:live"
        resource = self.t["Resources"][name]
        if resource["Type"] == "AWS::S3::Bucket":
            return self.resolve(resource["Properties"]["BucketName"])
        return f"<{name}>"

    def getatt(self, name: str, attr: str) -> str:
        resource = self.t["Resources"][name]
        if resource["Type"] == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{self.ref(name)}"
        if resource["Type"] == "AWS::Serverless::Function" and attr == "Arn":
            return f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:<{name}>"
        return f"<{name}.{attr}>"

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        local = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                return self.getatt(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # -- views
    def resource(self, name: str) -> dict[str, Any]:
        resource = self.t["Resources"][name]
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return {}
        resolved: dict[str, Any] = self.resolve(resource.get("Properties", {}))
        return resolved

    def of_type(self, kind: str) -> list[str]:
        return [n for n, r in self.t["Resources"].items() if r["Type"] == kind]

    def function(self, name: str) -> dict[str, Any]:
        """A function's properties with SAM's Globals applied (local values win)."""
        merged: dict[str, Any] = dict(self.resolve(self.t.get("Globals", {}).get("Function", {})))
        merged.update(self.resource(name))
        return merged

    def statements(self, function: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for policy in self.function(function).get("Policies", []):
            assert isinstance(policy, dict), f"{function}: only inline policies ({policy!r})"
            out.extend(policy["Statement"])
        return out


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(
    statements: list[dict[str, Any]], action: str, resource: str, prefix: str | None = None
) -> bool:
    """IAM-style evaluation of Allow statements (wildcards; s3:prefix conditions).

    ``prefix=None`` is a request with no s3:prefix key: S3's own ListBucket check
    behind a GetObject/HeadObject of a missing key."""
    for st in statements:
        assert st["Effect"] == "Allow"
        if not any(fnmatchcase(action, a) for a in listify(st["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in listify(st["Resource"])):
            continue
        condition = st.get("Condition", {})
        assert set(condition) <= {"StringLike", "StringLikeIfExists"}, condition
        ok = True
        for operator, keys in condition.items():
            assert set(keys) == {"s3:prefix"}, keys
            if prefix is None:
                ok = ok and operator.endswith("IfExists")
            else:
                ok = ok and any(fnmatchcase(prefix, p) for p in listify(keys["s3:prefix"]))
        if ok:
            return True
    return False


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
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert raw["DeletionPolicy"] == "Retain" and raw["UpdateReplacePolicy"] == "Retain"


def test_bucket_policy_denies_plain_http() -> None:
    stack = Stack()
    (policy,) = stack.of_type("AWS::S3::BucketPolicy")
    props = stack.resource(policy)
    assert props["Bucket"] == BUCKET
    tls = [
        st
        for st in props["PolicyDocument"]["Statement"]
        if st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(tls) == 1
    (st,) = tls
    assert st["Effect"] == "Deny" and st["Principal"] == "*" and st["Action"] == "s3:*"
    assert set(st["Resource"]) == {BUCKET_ARN, f"{BUCKET_ARN}/*"}
    assert all(st["Effect"] == "Deny" for st in props["PolicyDocument"]["Statement"])


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
    # S3 validates the destination when it saves the notification.
    assert template()["Resources"]["ModelBucket"]["DependsOn"] == "DeployerS3InvokePermission"


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize("name", ["InferenceFunction", "DeployerFunction"])
def test_functions_share_the_layer_and_runtime(name: str) -> None:
    stack = Stack()
    fn = stack.function(name)
    raw = template()["Resources"][name]
    assert fn["Runtime"] == "python3.12"
    assert fn["Handler"] == "app.handler"
    assert fn["Layers"] == ["<ServingLayer>"]
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
    deployer = stack.function("DeployerFunction")
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
    # S3 answers 404 (not 403) for a missing key only to a caller allowed to list.
    assert allowed(st, "s3:ListBucket", BUCKET_ARN, prefix=None)
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
    assert len(alarm_widgets) == 1 and len(alarm_widgets[0]["properties"]["alarms"]) == 4


def test_outputs() -> None:
    outputs = Stack().resolve(template()["Outputs"])
    assert outputs["ApiUrl"]["Value"] == "https://<HttpApi>.execute-api.eu-west-1.amazonaws.com/"
    assert outputs["ModelBucketName"]["Value"] == BUCKET
    assert outputs["RegistryUrl"]["Value"] == f"s3://{BUCKET}"
    assert {"InferenceFunctionName", "DeployerFunctionName"} <= set(outputs)


def test_bucket_as_declared_is_accepted_by_s3() -> None:
    """Apply the declared configuration to a moto bucket: S3 accepts it as written."""
    import boto3
    from moto import mock_aws

    bucket = Stack().resource("ModelBucket")
    policy = Stack().resource("ModelBucketPolicy")["PolicyDocument"]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket["BucketName"])
        s3.put_public_access_block(
            Bucket=BUCKET, PublicAccessBlockConfiguration=bucket["PublicAccessBlockConfiguration"]
        )
        s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration=bucket["VersioningConfiguration"]
        )
        # CloudFormation's ServerSideEncryptionByDefault is the S3 API's
        # ApplyServerSideEncryptionByDefault.
        rules: Any = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": rules})
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
        assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        stored = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
        assert stored["Statement"][0]["Effect"] == "Deny"


def test_readme_documents_every_parameter() -> None:
    readme = (TEMPLATE.parent / "README.md").read_text()
    section = readme.split("## Deploy on AWS", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE))
    params = template()["Parameters"]
    assert set(rows) == set(params)
    for name, p in params.items():
        documented = rows[name].strip().strip("`")
        assert documented == (str(p["Default"]) or "empty"), name
