"""A small IAM policy evaluator over a role's statements in a synthesized template.

Identity policies only: an explicit Deny without conditions wins, otherwise one Allow whose
Action/NotAction and Resource/NotResource match grants. Conditions are not evaluated: an Allow
with conditions still grants (its conditions are returned as a note), a Deny with conditions is
noted and does not deny, because the contract is about missing grants, not about request context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tests.iam_contract.templates import Template


@lru_cache(maxsize=4096)
def _pattern(glob: str) -> re.Pattern[str]:
    # IAM wildcards: "*" any run of characters, "?" one character; everything else literal.
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob), re.S)


def matches(glob: str, value: str, *, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        glob, value = glob.lower(), value.lower()
    return _pattern(glob).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: dict[str, Any] | None
    sid: str
    source: str  # logical id of the policy (or role) it came from

    def covers(self, action: str, resource: str) -> bool:
        if self.actions and not any(matches(a, action, case_sensitive=False) for a in self.actions):
            return False
        if self.not_actions and any(matches(a, action, case_sensitive=False) for a in self.not_actions):
            return False
        if self.resources and not any(matches(r, resource) for r in self.resources):
            return False
        if self.not_resources and any(matches(r, resource) for r in self.not_resources):
            return False
        return True


@dataclass
class Decision:
    allowed: bool
    by: Statement | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RolePolicy:
    """Every statement attached to one role (inline, AWS::IAM::Policy, customer managed policies)."""

    role_logical_id: str
    statements: list[Statement]

    def evaluate(self, action: str, resource: str) -> Decision:
        notes: list[str] = []
        allow: Statement | None = None
        for statement in self.statements:
            if not statement.covers(action, resource):
                continue
            if statement.effect == "Deny":
                if statement.condition:
                    notes.append(f"Deny {statement.sid or statement.source} applies under {statement.condition}")
                    continue
                return Decision(False, statement, notes + [f"explicitly denied by {statement.sid or statement.source}"])
            if allow is None or (allow.condition and not statement.condition):
                allow = statement
        if allow is not None and allow.condition:
            notes.append(f"allowed by {allow.sid or allow.source} under {allow.condition}")
        return Decision(allow is not None, allow, notes)

    def without(self, source: str, sid: str | None = None) -> "RolePolicy":
        """This policy less one policy resource (or one statement of it): for self-tests."""
        kept = [s for s in self.statements if not (s.source == source and (sid is None or s.sid == sid))]
        return RolePolicy(self.role_logical_id, kept)


def statements_of(document: dict[str, Any], template: Template, source: str) -> list[Statement]:
    out = []
    for raw in _as_list(document.get("Statement")):
        resolved = template.resolve(raw)
        out.append(Statement(
            effect=resolved.get("Effect", "Allow"),
            actions=tuple(_as_list(resolved.get("Action"))),
            not_actions=tuple(_as_list(resolved.get("NotAction"))),
            resources=tuple(str(r) for r in _as_list(resolved.get("Resource"))),
            not_resources=tuple(str(r) for r in _as_list(resolved.get("NotResource"))),
            condition=resolved.get("Condition"),
            sid=resolved.get("Sid", ""),
            source=source,
        ))
    return out


def role_policy(template: Template, role_logical_id: str) -> RolePolicy:
    """The statements that apply to ``role_logical_id`` of ``template``."""
    role = template.resources[role_logical_id]
    statements: list[Statement] = []
    for inline in role.get("Properties", {}).get("Policies", []) or []:
        statements += statements_of(inline["PolicyDocument"], template, role_logical_id)
    for cfn_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, policy in template.of_type(cfn_type):
            roles = policy.get("Properties", {}).get("Roles", []) or []
            if any(r == {"Ref": role_logical_id} for r in roles):
                statements += statements_of(policy["Properties"]["PolicyDocument"], template, logical_id)
    managed = [template.resolve(m) for m in role.get("Properties", {}).get("ManagedPolicyArns", []) or []]
    for arn in managed:
        if ":aws:policy/" not in str(arn):  # customer managed policies of this template, by their Ref
            for logical_id, policy in template.of_type("AWS::IAM::ManagedPolicy"):
                if template.ref(logical_id) == arn:
                    statements += statements_of(policy["Properties"]["PolicyDocument"], template, logical_id)
    return RolePolicy(role_logical_id, statements)


def role_of_arn(template: Template, role_arn: str) -> str | None:
    """The logical id of the role in ``template`` whose resolved ARN is ``role_arn``."""
    for logical_id, _ in template.of_type("AWS::IAM::Role"):
        if template.get_att(logical_id, "Arn") == role_arn:
            return logical_id
    return None
