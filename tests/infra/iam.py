"""A small evaluator of IAM policy statements, for the template's policies.

moto stores bucket policies but does not evaluate them or their conditions,
and IAM's policy simulator needs an AWS account. So the infra tests evaluate
the rendered statements themselves, following AWS's documented logic for a
request within one account: an explicit Deny in any policy wins; otherwise an
Allow in the identity policy or in the bucket policy allows; otherwise the
request is implicitly denied.

Only what the template uses is implemented, and anything else fails loudly
(an operator, a key shape or an element the evaluator does not know), so a new
kind of condition cannot pass unevaluated:

- Action / NotAction and Resource / NotResource with ``*`` and ``?`` wildcards
  (actions case-insensitively, resources case-sensitively; ``*`` crosses ``/``);
- Principal ``"*"``, ``{"AWS": ...}`` and ``{"Service": ...}`` (bucket policies);
- condition operators String(Not)Equals, String(Not)Like, Bool, Null,
  NumericLessThan(Equals)/GreaterThan(Equals), ArnLike/ArnEquals, each with the
  ``IfExists`` suffix. Operators AND together, so do keys under one operator;
  a key's listed values OR together. A key absent from the request satisfies
  a negated operator (StringNotEquals, StringNotLike) and any ``...IfExists``,
  and no other operator; ``Null: true`` means "absent".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

Decision = Literal["allow", "explicit deny", "implicit deny"]


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    principal: str  # an IAM ARN or a service principal such as "logging.s3.amazonaws.com"
    context: Mapping[str, str] = field(default_factory=dict)


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards are only * and ?; fnmatch would also read [...] as a class.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _numeric(op: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    return lambda value, wanted: op(float(value), float(wanted))


#: operator -> (does a request value match one policy value, negated?)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda v, w: v == w, False),
    "StringNotEquals": (lambda v, w: v == w, True),
    "StringLike": (lambda v, w: matches(w, v), False),
    "StringNotLike": (lambda v, w: matches(w, v), True),
    # ARN patterns match segment by segment; for the whole ARNs and trailing
    # wildcards the template uses, that is the same as a string wildcard.
    "ArnEquals": (lambda v, w: matches(w, v), False),
    "ArnLike": (lambda v, w: matches(w, v), False),
    "Bool": (lambda v, w: v.lower() == str(w).lower(), False),
    "NumericLessThan": (_numeric(lambda v, w: v < w), False),
    "NumericLessThanEquals": (_numeric(lambda v, w: v <= w), False),
    "NumericGreaterThan": (_numeric(lambda v, w: v > w), False),
    "NumericGreaterThanEquals": (_numeric(lambda v, w: v >= w), False),
}


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, str]) -> bool:
    assert isinstance(key, str) and ":" in key, f"condition key {key!r}"
    present = key in context
    if operator == "Null":
        (flag,) = listify(wanted)
        assert str(flag).lower() in ("true", "false"), wanted
        return (not present) == (str(flag).lower() == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    assert base in _OPERATORS, f"the evaluator does not know condition operator {operator!r}"
    test, negated = _OPERATORS[base]
    if not present:
        return if_exists or negated
    hit = any(test(context[key], str(w)) for w in listify(wanted))
    return not hit if negated else hit


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, keys in condition.items():
        assert isinstance(operator, str), f"condition operator {operator!r} (YAML's bare Null?)"
        assert not operator.startswith(("ForAnyValue:", "ForAllValues:")), operator
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, wanted, context):
                return False
    return True


def _principal_matches(principal: Any, who: str) -> bool:
    if principal == "*":
        return True
    assert isinstance(principal, dict) and set(principal) <= {"AWS", "Service"}, principal
    return any(
        p == "*" or p == who
        for kind in ("AWS", "Service")
        for p in listify(principal.get(kind, []))
    )


def _listed(statement: Mapping[str, Any], element: str, value: str, ignore_case: bool) -> bool:
    negative = f"Not{element}"
    assert (element in statement) != (negative in statement), statement
    name = element if element in statement else negative
    hit = any(matches(p, value, ignore_case=ignore_case) for p in listify(statement[name]))
    return hit if name == element else not hit


def applies(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> bool:
    known = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
    if resource_policy:
        known |= {"Principal"}
        assert "Principal" in statement, statement
        if not _principal_matches(statement["Principal"], request.principal):
            return False
    assert set(statement) <= known, set(statement) - known
    assert statement["Effect"] in ("Allow", "Deny"), statement
    return (
        _listed(statement, "Action", request.action, ignore_case=True)
        and _listed(statement, "Resource", request.resource, ignore_case=False)
        and conditions_hold(statement.get("Condition", {}), request.context)
    )


def decide(
    request: Request,
    identity: Iterable[Mapping[str, Any]] = (),
    resource: Iterable[Mapping[str, Any]] = (),
) -> Decision:
    """Same-account evaluation of an identity policy and a resource (bucket) policy."""
    matched = [(st["Effect"], st) for st in identity if applies(st, request, resource_policy=False)]
    matched += [(st["Effect"], st) for st in resource if applies(st, request, resource_policy=True)]
    effects = {effect for effect, _ in matched}
    if "Deny" in effects:
        return "explicit deny"
    return "allow" if "Allow" in effects else "implicit deny"
