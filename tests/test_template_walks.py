"""Walks over every template of every environment: nothing is dropped silently.

- every alarm notifies someone (has an alarm action);
- every dead-letter queue, every API's 5xx rate and every API function's throttles have an alarm;
- every encrypted topic or queue a service principal publishes to lets that service use its key;
- every taggable resource (per the CloudFormation resource schemas cfn-lint ships) carries the
  four platform tags;
- no platform role may delete or overwrite ``raw/``: the data bucket's Deny covers every role.
"""

from __future__ import annotations

import fnmatch
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.helpers import config_with, raw_config, synth_stage

pytestmark = pytest.mark.xdist_group("synth")

ENVIRONMENTS = tuple(raw_config()["environments"])
TAG_KEYS = {"project", "environment", "cost-centre", "owner"}


@lru_cache(maxsize=8)
def stage_templates(env: str, overrides: str = "{}") -> dict[str, dict[str, Any]]:
    """Stack id -> template (as a dict) for every stack of ``env``."""
    stage = synth_stage(env, json.loads(overrides))
    return {s.node.id: Template.from_stack(s).to_json() for s in stage.stacks}


def resources(templates: dict[str, dict], kind: str | None = None):
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            if kind is None or resource["Type"] == kind:
                yield stack, logical_id, resource


def exports(templates: dict[str, dict]) -> dict[str, tuple[str, Any]]:
    """Export name -> (stack, exported value) across the stage."""
    out = {}
    for stack, template in templates.items():
        for output in template.get("Outputs", {}).values():
            name = (output.get("Export") or {}).get("Name")
            if name:
                out[name] = (stack, output["Value"])
    return out


def resolve(value: Any, stack: str, templates: dict[str, dict]) -> tuple[str, str] | None:
    """(stack, logical id) a Ref / GetAtt / ImportValue (of either) points at; None otherwise."""
    if isinstance(value, dict):
        if "Ref" in value:
            return stack, value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return stack, target[0] if isinstance(target, list) else target.split(".")[0]
        if "Fn::ImportValue" in value:
            name = value["Fn::ImportValue"]
            if isinstance(name, str) and name in exports(templates):
                other, exported = exports(templates)[name]
                return resolve(exported, other, templates)
    return None


def statements(document: Any) -> list[dict]:
    found = (document or {}).get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def allows_service(key: dict, service: str, needed: tuple[str, ...]) -> bool:
    """The key policy lets ``service`` run every action in ``needed`` (wildcards honoured)."""
    granted: set[str] = set()
    for st in statements(key["Properties"].get("KeyPolicy")):
        if st.get("Effect") != "Allow":
            continue
        principals = as_list((st.get("Principal") or {}).get("Service", []))
        if service in principals:
            granted.update(as_list(st["Action"]))
    return all(any(fnmatch.fnmatchcase(action, pattern) for pattern in granted) for action in needed)


ENCRYPT_FOR_PUBLISH = ("kms:GenerateDataKey", "kms:Decrypt")


def key_of(templates: dict, stack: str, resource: dict, prop: str) -> tuple[str, dict]:
    ref = resolve(resource["Properties"].get(prop), stack, templates)
    assert ref is not None, f"{stack}: {prop} {resource['Properties'].get(prop)!r} does not name a key of the stage"
    key_stack, key_id = ref
    return f"{key_stack}/{key_id}", templates[key_stack]["Resources"][key_id]


def published_targets(templates: dict) -> list[tuple[str, str, str, str]]:
    """(service principal, target stack, target logical id, where) for every service -> topic/queue delivery."""
    found = []
    for stack, lid, alarm in resources(templates, "AWS::CloudWatch::Alarm"):
        for action in alarm["Properties"].get("AlarmActions", []):
            ref = resolve(action, stack, templates)
            if ref:
                found.append(("cloudwatch.amazonaws.com", *ref, f"{stack}/{lid} alarm action"))
    for stack, lid, sub in resources(templates, "AWS::SNS::Subscription"):
        redrive = sub["Properties"].get("RedrivePolicy") or {}
        if "deadLetterTargetArn" in redrive:
            found.append(("sns.amazonaws.com", *resolve(redrive["deadLetterTargetArn"], stack, templates), f"{stack}/{lid} DLQ"))
        if sub["Properties"].get("Protocol") == "sqs":
            found.append(("sns.amazonaws.com", *resolve(sub["Properties"]["Endpoint"], stack, templates), f"{stack}/{lid}"))
    for stack, lid, team in resources(templates, "AWS::SageMaker::Workteam"):
        topic = (team["Properties"].get("NotificationConfiguration") or {}).get("NotificationTopicArn")
        if topic is not None:
            found.append(("sagemaker.amazonaws.com", *resolve(topic, stack, templates), f"{stack}/{lid} notifications"))
    for stack, lid, rule in resources(templates, "AWS::Events::Rule"):
        for target in rule["Properties"].get("Targets", []):
            dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dlq is not None:
                found.append(("events.amazonaws.com", *resolve(dlq, stack, templates), f"{stack}/{lid} DLQ"))
            ref = resolve(target["Arn"], stack, templates)
            if ref and templates[ref[0]]["Resources"][ref[1]]["Type"] in ("AWS::SQS::Queue", "AWS::SNS::Topic"):
                found.append(("events.amazonaws.com", *ref, f"{stack}/{lid} target"))
    return found


def dead_letter_queues(templates: dict) -> set[tuple[str, str]]:
    """Every queue named as a dead-letter target or on-failure destination anywhere in the stage."""
    refs = []
    for stack, _, queue in resources(templates, "AWS::SQS::Queue"):
        refs.append(((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"), stack))
    for stack, _, sub in resources(templates, "AWS::SNS::Subscription"):
        refs.append(((sub["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"), stack))
    for stack, _, rule in resources(templates, "AWS::Events::Rule"):
        refs.extend(((t.get("DeadLetterConfig") or {}).get("Arn"), stack) for t in rule["Properties"].get("Targets", []))
    for stack, _, fn in resources(templates, "AWS::Lambda::Function"):
        refs.append(((fn["Properties"].get("DeadLetterConfig") or {}).get("TargetArn"), stack))
    for kind in ("AWS::Lambda::EventInvokeConfig", "AWS::Lambda::EventSourceMapping"):
        for stack, _, cfg in resources(templates, kind):
            refs.append((((cfg["Properties"].get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"), stack))
    queues = set()
    for value, stack in refs:
        ref = resolve(value, stack, templates) if value is not None else None
        if ref and templates[ref[0]]["Resources"][ref[1]]["Type"] == "AWS::SQS::Queue":
            queues.add(ref)
    return queues


def alarm_dimension(alarm: dict, name: str) -> list[Any]:
    props = alarm["Properties"]
    dims = list(props.get("Dimensions", []))
    for metric in props.get("Metrics", []):
        dims.extend(((metric.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions", []))
    return [d["Value"] for d in dims if d["Name"] == name]


def metric_names(alarm: dict) -> set[str]:
    props = alarm["Properties"]
    names = {props.get("MetricName")}
    names.update(((m.get("MetricStat") or {}).get("Metric") or {}).get("MetricName") for m in props.get("Metrics", []))
    return names - {None}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_alarm_has_an_action(env):
    templates = stage_templates(env)
    alarms = list(resources(templates, "AWS::CloudWatch::Alarm"))
    assert alarms
    for stack, lid, alarm in alarms:
        assert alarm["Properties"].get("AlarmActions"), f"{env}/{stack}/{lid} notifies nobody"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_dead_letter_queue_has_an_alarm(env):
    templates = stage_templates(env)
    queues = dead_letter_queues(templates)
    assert len(queues) >= 3  # data prep, fine-tuning, RAG ingestion (and the alert deliveries)
    for stack, qid in sorted(queues):
        watching = [
            a for s, _, a in resources(templates, "AWS::CloudWatch::Alarm")
            if s == stack and "ApproximateNumberOfMessagesVisible" in metric_names(a)
            and {"Fn::GetAtt": [qid, "QueueName"]} in alarm_dimension(a, "QueueName")
        ]
        assert watching, f"{env}/{stack}/{qid} is a dead-letter queue without an alarm"
        assert all(a["Properties"].get("AlarmActions") for a in watching)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_api_alarms_on_5xx_rate_and_function_throttles(env):
    templates = stage_templates(env)
    apis = list(resources(templates, "AWS::ApiGateway::RestApi"))
    assert apis
    for stack, lid, api in apis:
        alarms = [a for s, _, a in resources(templates, "AWS::CloudWatch::Alarm") if s == stack]
        name = api["Properties"]["Name"]
        assert any("5XXError" in metric_names(a) and name in alarm_dimension(a, "ApiName") for a in alarms), f"{env}/{stack}/{lid}: no 5xx alarm"
        functions = set()
        for _, _, method in resources({stack: templates[stack]}, "AWS::ApiGateway::Method"):
            uri = json.dumps((method["Properties"].get("Integration") or {}).get("Uri", ""))
            functions.update(fid for fid, r in templates[stack]["Resources"].items()
                             if r["Type"] == "AWS::Lambda::Function" and f'"{fid}"' in uri)
        assert functions, f"{env}/{stack}/{lid}: found no Lambda integration"
        for fid in functions:
            assert any("Throttles" in metric_names(a) and {"Ref": fid} in alarm_dimension(a, "FunctionName") for a in alarms), (
                f"{env}/{stack}/{fid} serves {name} without a throttles alarm")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_encrypted_target_lets_its_publishing_service_use_the_key(env):
    templates = stage_templates(env)
    targets = published_targets(templates)
    services = {t[0] for t in targets}
    assert {"cloudwatch.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com"} <= services
    for service, stack, lid, where in targets:
        resource = templates[stack]["Resources"].get(lid)
        if resource is None:
            continue  # an imported topic (alerts.topic_arn): its owner keeps its key policy
        prop = "KmsMasterKeyId"
        if prop not in resource["Properties"]:
            continue  # not CMK-encrypted: the service needs no key grant
        name, key = key_of(templates, stack, resource, prop)
        assert allows_service(key, service, ENCRYPT_FOR_PUBLISH), f"{env}: {where} -> {stack}/{lid}: {name} does not allow {service}"


def test_workteam_notifications_let_ground_truth_use_the_topic_and_key():
    templates = stage_templates("dev", json.dumps({"data_prep": {"workteam": {"notify_workers": True}}}))
    targets = [t for t in published_targets(templates) if t[0] == "sagemaker.amazonaws.com"]
    assert len(targets) == 1
    service, stack, lid, where = targets[0]
    _, key = key_of(templates, stack, templates[stack]["Resources"][lid], "KmsMasterKeyId")
    assert allows_service(key, service, ENCRYPT_FOR_PUBLISH)
    _assert_topic_policy_allows(templates, "dev", service, stack, lid, where)


def _assert_topic_policy_allows(templates, env, service, stack, lid, where):
    policies = [p for _, _, p in resources({stack: templates[stack]}, "AWS::SNS::TopicPolicy")
                if {"Ref": lid} in p["Properties"]["Topics"]]
    if not policies:
        return  # SNS's default policy lets the account's services publish
    allowed = [st for p in policies for st in statements(p["Properties"]["PolicyDocument"])
               if st.get("Effect") == "Allow" and service in as_list((st.get("Principal") or {}).get("Service", []))
               and "sns:Publish" in as_list(st["Action"])]
    assert allowed, f"{env}: {where}: the policy of {stack}/{lid} replaced SNS's default and lets no {service} publish"
    assert all("aws:SourceAccount" in json.dumps(st.get("Condition")) for st in allowed)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alarm_topics_allow_cloudwatch_to_publish(env):
    templates = stage_templates(env)
    for service, stack, lid, where in published_targets(templates):
        if service != "cloudwatch.amazonaws.com" or lid not in templates[stack]["Resources"]:
            continue
        _assert_topic_policy_allows(templates, env, service, stack, lid, where)


def test_key_policy_scopes_service_principals_to_this_account():
    templates = stage_templates("dev")
    (_, _, key), = list(resources(templates, "AWS::KMS::Key"))
    for st in statements(key["Properties"]["KeyPolicy"]):
        services = as_list((st.get("Principal") or {}).get("Service", []))
        if any(s in ("cloudwatch.amazonaws.com", "sns.amazonaws.com", "events.amazonaws.com") for s in services):
            assert "aws:SourceAccount" in json.dumps(st["Condition"]), st["Sid"]
        if any(s in ("cloudwatch.amazonaws.com", "sns.amazonaws.com") for s in services):
            assert "aws:SourceArn" in json.dumps(st["Condition"]), st["Sid"]


# --- tags -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def taggable_types() -> dict[str, str]:
    """Resource type -> its tag property, from the resource schemas cfn-lint ships (offline)."""
    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    index = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    out = {}
    for kind, digest in index.items():
        tagging = json.loads((schemas / "resources" / f"{digest}.json").read_text()).get("tagging") or {}
        if tagging.get("taggable") and tagging.get("tagProperty", "").startswith("/properties/"):
            out[kind] = tagging["tagProperty"].removeprefix("/properties/")
    return out


def tag_keys(tags: Any) -> set[str]:
    if isinstance(tags, dict):
        return set(tags)
    if isinstance(tags, list):
        return {t.get("Key") for t in tags if isinstance(t, dict)}
    return set()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_taggable_resource_carries_the_four_tags(env):
    templates = stage_templates(env)
    taggable = taggable_types()
    checked = 0
    missing = []
    for stack, lid, resource in resources(templates):
        prop = taggable.get(resource["Type"])
        if prop is None:
            continue
        checked += 1
        keys = tag_keys(resource.get("Properties", {}).get(prop))
        if not TAG_KEYS <= keys:
            missing.append(f"{stack}/{lid} ({resource['Type']}) lacks {sorted(TAG_KEYS - keys)}")
    assert checked > 50
    assert not missing, f"{env}: " + "\n".join(missing)


def test_the_tag_walk_can_fail():
    # An untagged taggable resource must show up: the schema index really names taggable types.
    assert taggable_types()["AWS::SQS::Queue"] == "Tags"
    assert "AWS::SNS::Subscription" not in taggable_types()


# --- raw/ is protected from every platform role -----------------------------------------------------

RAW_WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion")


def _raw_deny(templates: dict, env: str) -> dict:
    policies = [p for s, _, p in resources(templates, "AWS::S3::BucketPolicy") if s == "Foundation"]
    denies = [st for p in policies for st in statements(p["Properties"]["PolicyDocument"])
              if st.get("Sid") == "DenyPlatformRolesChangingRaw"]
    assert len(denies) == 1, f"{env}: no Deny on raw/ in the data bucket policy"
    return denies[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_raw_is_denied_to_every_platform_role(env):
    templates = stage_templates(env)
    deny = _raw_deny(templates, env)
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert set(RAW_WRITES) <= set(deny["Action"])
    assert "/raw/*" in json.dumps(deny["Resource"])
    project = raw_config()["project"]
    condition = deny["Condition"]["StringEquals"]
    assert condition == {"aws:PrincipalTag/project": project, "aws:PrincipalTag/environment": env}
    # The Deny reaches a role through its tags: every role of every stack carries both.
    roles = list(resources(templates, "AWS::IAM::Role"))
    assert len(roles) > 10
    for stack, lid, role in roles:
        tags = {t["Key"]: t["Value"] for t in role["Properties"].get("Tags", [])}
        assert tags.get("project") == project and tags.get("environment") == env, f"{env}/{stack}/{lid} escapes the raw/ Deny"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_role_policy_allows_writing_raw(env):
    # Belt and braces: no grant asks for what the Deny refuses (it would fail at run time).
    templates = stage_templates(env)
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for stack, lid, policy in resources(templates, kind):
            for st in statements(policy["Properties"]["PolicyDocument"]):
                if st.get("Effect") != "Allow":
                    continue
                actions = as_list(st["Action"])
                if not any(fnmatch.fnmatchcase(w, a) for w in RAW_WRITES for a in actions):
                    continue
                for resource in as_list(st["Resource"]):
                    text = json.dumps(resource)
                    assert "/raw/" not in text, f"{env}/{stack}/{lid} allows writing raw/: {text}"


def test_object_lock_and_raw_retention_come_from_config():
    templates = stage_templates("dev", json.dumps(
        {"data_prep": {"raw_retention_days": 400, "object_lock": {"enabled": True, "mode": "COMPLIANCE"}}}, sort_keys=True))
    buckets = [b for _, _, b in resources({"Foundation": templates["Foundation"]}, "AWS::S3::Bucket")
               if "ObjectLockConfiguration" in b["Properties"]]
    assert len(buckets) == 1
    props = buckets[0]["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 400}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert all(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 400) >= 400 for r in rules)


def test_noncurrent_raw_versions_outlive_the_default_retention():
    templates = stage_templates("dev")
    days = config_with("dev").get("dev").data_prep.raw_retention_days
    data = [b for _, lid, b in resources({"Foundation": templates["Foundation"]}, "AWS::S3::Bucket") if lid.startswith("Data")]
    assert len(data) == 1
    for rule in data[0]["Properties"]["LifecycleConfiguration"]["Rules"]:
        if "NoncurrentVersionExpiration" in rule:
            assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= days
        assert "ExpirationInDays" not in rule


def test_the_walk_helpers_find_what_they_must():
    # Proof the walks can fail: a hand-made stage with an unalarmed DLQ and an unscoped key.
    templates = {
        "Foundation": {
            "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [
                {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": ["kms:GenerateDataKey"], "Resource": "*"}]}}}},
            "Outputs": {"K": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "f:KeyArn"}}},
        },
        "App": {"Resources": {
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": {"Fn::ImportValue": "f:KeyArn"}}},
            "Rule": {"Type": "AWS::Events::Rule", "Properties": {"Targets": [
                {"Arn": "arn:aws:states:us-east-1:1:stateMachine:x", "Id": "t", "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}}}]}},
        }},
    }
    assert dead_letter_queues(templates) == {("App", "Dlq")}
    (target,) = published_targets(templates)
    assert target[:3] == ("events.amazonaws.com", "App", "Dlq")
    _, key = key_of(templates, "App", templates["App"]["Resources"]["Dlq"], "KmsMasterKeyId")
    assert not allows_service(key, "events.amazonaws.com", ENCRYPT_FOR_PUBLISH)  # Decrypt is missing
    assert not allows_service(key, "sns.amazonaws.com", ENCRYPT_FOR_PUBLISH)
