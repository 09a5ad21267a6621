"""Template-scanner exceptions recorded the way cdk-nag acknowledgements are: one check, one resource, one reason.

CloudFormation scanners (checkov, cfn_nag) read skips from the resource's template Metadata;
``scanner_exception`` writes both formats so either tool reports the reason instead of a finding.
"""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct

# Scanner classes the platform records reasons for: checkov id and its cfn_nag counterpart.
CHECKS = {
    "concurrency": ("CKV_AWS_115", "W92"),
    "dead-letter": ("CKV_AWS_116", None),
    "vpc": ("CKV_AWS_117", "W89"),
    "unconstrained-write": ("CKV_AWS_111", "W12"),
    "api-cache": ("CKV_AWS_120", None),
    "bucket-logging": ("CKV_AWS_18", "W35"),
}


# jsii object id of a CfnResource -> the checkov and cfn_nag metadata this module wrote on it, so a
# second exception on the same resource costs one call, not a read and a write of each key over jsii.
# This module is the only writer of those two keys. Ids are never reused within a jsii kernel process.
_RECORDED: dict[str, dict[str, dict]] = {}


def scanner_exception(construct: IConstruct, check: str, reason: str) -> None:
    """Record why ``construct``'s CloudFormation resource does not follow scanner class ``check``."""
    if check not in CHECKS:
        raise ValueError(f"check: one of {sorted(CHECKS)}, got {check!r}")
    if len(reason.strip()) < 20:
        raise ValueError(f"scanner exception {check} needs a specific reason, got {reason!r}")
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path}: no CloudFormation resource to record {check} on")
    checkov_id, cfn_nag_id = CHECKS[check]
    recorded = _RECORDED.setdefault(resource.__jsii_ref__.ref, {})
    checkov = recorded.setdefault("checkov", {"skip": []})
    checkov["skip"] = [s for s in checkov["skip"] if s["id"] != checkov_id] + [{"id": checkov_id, "comment": reason}]
    resource.add_metadata("checkov", checkov)
    if cfn_nag_id:
        cfn_nag = recorded.setdefault("cfn_nag", {"rules_to_suppress": []})
        cfn_nag["rules_to_suppress"] = [r for r in cfn_nag["rules_to_suppress"] if r["id"] != cfn_nag_id] + [
            {"id": cfn_nag_id, "reason": reason}]
        resource.add_metadata("cfn_nag", cfn_nag)
