"""template.yaml as CloudFormation would see it, for the infra tests.

The template is parsed with cfn-lint's decoder (it understands !Ref, !Sub and
the other short forms) and evaluated by a small resolver for the intrinsics it
uses, with fake pseudo parameters and a fixed bucket name. So the checks see
what CloudFormation would see: for example that the computed bucket name in the
deployer's policy is the bucket's real name, which !Ref cannot guarantee there
(the notification cycle).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

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
            if "BucketName" not in resource["Properties"]:
                # CloudFormation's generated name: stack, logical id, a random suffix.
                return f"{PSEUDO['AWS::StackName']}-{name.lower()}-1a2b3c4d5e6f"
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
        """A function's properties with SAM's Globals applied: local values win, except
        lists, which SAM appends to the global list (Layers: checked with samtranslator)."""
        merged: dict[str, Any] = dict(self.resolve(self.t.get("Globals", {}).get("Function", {})))
        for key, value in self.resource(name).items():
            known = merged.get(key)
            merged[key] = (
                known + value if isinstance(known, list) and isinstance(value, list) else value
            )
        return merged

    def statements(self, function: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for policy in self.function(function).get("Policies", []):
            assert isinstance(policy, dict), f"{function}: only inline policies ({policy!r})"
            out.extend(policy["Statement"])
        return out


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
