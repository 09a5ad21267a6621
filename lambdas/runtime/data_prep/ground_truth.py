"""SageMaker Ground Truth labeling of curated documents, and its output as a dataset version.

CloudFormation has no labeling-job type, so jobs start through the API: an input manifest of
text objects built from curated documents, a label-category file and a worker UI template
are written to S3, then ``CreateLabelingJob``. When the job completes, the output manifest is
converted to records and published as a dataset version.

Task types:
- ``text-classification`` (built-in, single label): the only text task type that supports
  automated data labeling (active learning); it is switched on when the job has at least the
  1,250 objects Ground Truth requires.
- ``named-entity-recognition`` (built-in): records in ``instruction`` format whose response
  lists the labelled spans as JSON.
- ``question-answer`` (custom template with this platform's pre- and post-annotation Lambdas):
  workers write a question and its answer about each text; records in ``instruction`` format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.runtime.cost_tags import cost_tags
from lambdas.runtime.data_prep.spans import split_by_bytes

TASK_TYPES = ("text-classification", "named-entity-recognition", "question-answer")
# Accounts that host Ground Truth's built-in pre-annotation (PRE-*) and consolidation (ACS-*)
# Lambdas, per region (SageMaker API reference, HumanTaskConfig.PreHumanTaskLambdaArn).
GROUND_TRUTH_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
_BUILT_IN = {
    "text-classification": "TextMultiClass",
    "named-entity-recognition": "NamedEntityRecognition",
}
AUTO_LABELING_MIN_OBJECTS = 1250
AUTO_LABELING_ACCOUNT = "027400017018"
# A manifest line may be up to 100 KB; text objects are kept well under it.
OBJECT_BYTE_LIMIT = 8_000
NER_INSTRUCTION = "List the named entities in the text as a JSON array of objects with \"label\" and \"text\"."

_CROWD_JS = '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>'
TEMPLATES = {
    "text-classification": _CROWD_JS
    + """
<crowd-form>
  <crowd-classifier name="crowd-classifier" categories="{{ task.input.labels | to_json | escape }}"
                    header="Which category fits this text best?">
    <classification-target>{{ task.input.taskObject | escape }}</classification-target>
    <full-instructions header="Instructions"><p>Read the text and choose the one category that fits it best.</p></full-instructions>
    <short-instructions><p>Choose the best category.</p></short-instructions>
  </crowd-classifier>
</crowd-form>
""",
    "named-entity-recognition": _CROWD_JS
    + """
<crowd-form>
  <crowd-entity-annotation name="crowd-entity-annotation" header="Highlight every entity and pick its label"
                           labels="{{ task.input.labels | to_json | escape }}" text="{{ task.input.taskObject | escape }}">
    <full-instructions header="Instructions"><p>Select each span of text that names an entity and choose its label.</p></full-instructions>
    <short-instructions><p>Highlight entities.</p></short-instructions>
  </crowd-entity-annotation>
</crowd-form>
""",
    "question-answer": _CROWD_JS
    + """
<crowd-form>
  <p><strong>Text</strong></p>
  <p style="white-space: pre-wrap">{{ task.input.text | escape }}</p>
  <crowd-text-area name="question" label="A question this text answers" rows="2" required></crowd-text-area>
  <crowd-text-area name="answer" label="The answer, using only the text" rows="4" required></crowd-text-area>
  <short-instructions><p>Write one question a user might ask, and its answer from the text.</p></short-instructions>
  <full-instructions header="Instructions"><p>Questions must be answerable from the text alone. Do not copy personal data.</p></full-instructions>
</crowd-form>
""",
}


def _check_task(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type {task_type!r} is not supported; allowed: {', '.join(TASK_TYPES)}")


def built_in_lambda_arns(task_type: str, region: str, partition: str = "aws") -> tuple[str, str]:
    """(pre-annotation, consolidation) Lambda ARNs of a built-in task type in ``region``."""
    _check_task(task_type)
    if task_type not in _BUILT_IN:
        raise ValueError(f"{task_type} is a custom task: it uses the platform's own pre/post Lambdas")
    account = GROUND_TRUTH_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(f"Ground Truth built-in task Lambdas are not published for region {region!r}; regions: {', '.join(sorted(GROUND_TRUTH_ACCOUNTS))}")
    name = _BUILT_IN[task_type]
    base = f"arn:{partition}:lambda:{region}:{account}:function:"
    return base + "PRE-" + name, base + "ACS-" + name


def auto_labeling_arn(region: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sagemaker:{region}:{AUTO_LABELING_ACCOUNT}:labeling-job-algorithm-specification/text-classification"


def manifest_lines(curated_docs: Iterable[dict[str, Any]], byte_limit: int = OBJECT_BYTE_LIMIT) -> list[dict[str, Any]]:
    """One labeling object per page segment of each curated document (text inline as ``source``)."""
    lines = []
    for doc in curated_docs:
        for page in doc["pages"]:
            text = page["text"].strip()
            if not text:
                continue
            for n, piece in enumerate(split_by_bytes(text, byte_limit)):
                if piece.text.strip():
                    lines.append(
                        {
                            "source": piece.text.strip(),
                            "document-id": doc["document_id"],
                            "page": page["page"],
                            "segment": n,
                        }
                    )
    return lines


def label_category_config(labels: Sequence[str]) -> dict[str, Any]:
    if not labels or len(set(labels)) != len(labels):
        raise ValueError("labels must be a non-empty list of distinct names")
    return {"document-version": "2018-11-28", "labels": [{"label": label} for label in labels]}


_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


@dataclass(frozen=True)
class LabelingJobRequest:
    job_name: str
    task_type: str
    labels: tuple[str, ...]
    manifest_uri: str
    label_config_uri: str
    template_uri: str
    output_uri: str
    role_arn: str
    workteam_arn: str
    kms_key_arn: str
    region: str
    object_count: int
    custom_pre_lambda_arn: str | None = None
    custom_post_lambda_arn: str | None = None
    workers_per_object: int = 1
    task_time_limit_s: int = 600
    availability_s: int = 864000
    partition: str = "aws"


def create_labeling_job_kwargs(req: LabelingJobRequest) -> dict[str, Any]:
    """The ``CreateLabelingJob`` request for ``req`` (active learning on where it applies)."""
    _check_task(req.task_type)
    if not _JOB_NAME.fullmatch(req.job_name):
        raise ValueError(f"job_name {req.job_name!r} must be 1-63 of letters, digits and '-'")
    if req.task_type == "question-answer":
        if not (req.custom_pre_lambda_arn and req.custom_post_lambda_arn):
            raise ValueError("question-answer jobs need the platform's pre- and post-annotation Lambda ARNs")
        pre, post = req.custom_pre_lambda_arn, req.custom_post_lambda_arn
    else:
        pre, post = built_in_lambda_arns(req.task_type, req.region, req.partition)
    kwargs: dict[str, Any] = {
        "LabelingJobName": req.job_name,
        "LabelAttributeName": "label" if req.task_type != "named-entity-recognition" else "entities",
        "InputConfig": {
            "DataSource": {"S3DataSource": {"ManifestS3Uri": req.manifest_uri}},
            # The text was redacted by the workflow before it reached a manifest.
            "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
        },
        "OutputConfig": {"S3OutputPath": req.output_uri, "KmsKeyId": req.kms_key_arn},
        "RoleArn": req.role_arn,
        "LabelCategoryConfigS3Uri": req.label_config_uri,
        "HumanTaskConfig": {
            "WorkteamArn": req.workteam_arn,
            "UiConfig": {"UiTemplateS3Uri": req.template_uri},
            "PreHumanTaskLambdaArn": pre,
            "TaskTitle": {
                "text-classification": "Classify text",
                "named-entity-recognition": "Label named entities",
                "question-answer": "Write a question and its answer",
            }[req.task_type],
            "TaskDescription": f"{req.task_type} for LLM fine-tuning data",
            "TaskKeywords": ["text", req.task_type.split("-")[0]],
            "NumberOfHumanWorkersPerDataObject": req.workers_per_object,
            "TaskTimeLimitInSeconds": req.task_time_limit_s,
            "TaskAvailabilityLifetimeInSeconds": req.availability_s,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": post},
        },
        "Tags": [{"Key": "llmops:task-type", "Value": req.task_type}],
    }
    if auto_labeling_applies(req.task_type, req.object_count):
        kwargs["LabelingJobAlgorithmsConfig"] = {
            "LabelingJobAlgorithmSpecificationArn": auto_labeling_arn(req.region, req.partition),
            "LabelingJobResourceConfig": {"VolumeKmsKeyId": req.kms_key_arn},
        }
    return kwargs


def auto_labeling_applies(task_type: str, object_count: int) -> bool:
    """Automated data labeling exists for text classification only, from 1,250 objects."""
    return task_type == "text-classification" and object_count >= AUTO_LABELING_MIN_OBJECTS


# --- custom question-answer task: pre- and post-annotation Lambdas ----------------------------


def pre_annotation(event: dict[str, Any]) -> dict[str, Any]:
    """Ground Truth pre-annotation request -> the task input the Q/A template shows."""
    data = (event.get("dataObject") if isinstance(event, dict) else None) or {}
    text = data.get("source") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        # Nothing to ask about: Ground Truth skips objects that need no human annotation.
        return {"taskInput": {}, "isHumanAnnotationRequired": "false"}
    return {"taskInput": {"text": text}, "isHumanAnnotationRequired": "true"}


def consolidate_qa(label_attribute: str, objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Post-annotation: keep every worker's well-formed (question, answer) pair per object."""
    out = []
    for obj in objects:
        pairs = []
        for annotation in obj.get("annotations", []):
            try:
                content = json.loads(annotation["annotationData"]["content"])
            except (KeyError, TypeError, json.JSONDecodeError):
                continue
            q, a = str(content.get("question", "")).strip(), str(content.get("answer", "")).strip()
            if q and a:
                pairs.append({"question": q, "answer": a, "worker": annotation.get("workerId")})
        out.append(
            {
                "datasetObjectId": obj["datasetObjectId"],
                "consolidatedAnnotation": {"content": {label_attribute: {"pairs": pairs}}},
            }
        )
    return out


# --- output manifest -> dataset records -------------------------------------------------------


def output_to_records(task_type: str, label_attribute: str, lines: Iterable[str]) -> tuple[str, list[dict[str, Any]], int]:
    """Records (format, records, skipped) from a completed job's output manifest lines.

    Objects without a label (failed, expired or declined) are skipped and counted.
    """
    _check_task(task_type)
    fmt = "text-label" if task_type == "text-classification" else "instruction"
    records: list[dict[str, Any]] = []
    skipped = 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        obj = json.loads(line)
        source = obj.get("source")
        label = obj.get(label_attribute)
        meta = obj.get(f"{label_attribute}-metadata") or {}
        if not isinstance(source, str) or label is None or "failure-reason" in meta:
            skipped += 1
            continue
        if task_type == "text-classification":
            name = meta.get("class-name")
            if not name:
                skipped += 1
                continue
            records.append({"text": source, "label": str(name)})
        elif task_type == "named-entity-recognition":
            entities = (label.get("annotations") or {}).get("entities") or []
            spans = [
                {"label": e["label"], "text": source[e["startOffset"] : e["endOffset"]]}
                for e in sorted((_entity(e, source, n) for e in entities), key=lambda e: (e["startOffset"], e["endOffset"]))
            ]
            records.append({"instruction": NER_INSTRUCTION, "input": source, "response": json.dumps(spans, ensure_ascii=False)})
        else:
            pairs = label.get("pairs") or []
            if not pairs:
                skipped += 1
            for pair in pairs:
                records.append({"instruction": pair["question"], "input": source, "response": pair["answer"]})
    return fmt, records, skipped


def _entity(entity: Any, source: str, line: int) -> dict[str, Any]:
    """An NER annotation with offsets inside its text, or ``InvalidRecords`` naming the line."""
    from lambdas.runtime.data_prep.errors import InvalidRecords

    start = entity.get("startOffset") if isinstance(entity, dict) else None
    end = entity.get("endOffset") if isinstance(entity, dict) else None
    label = entity.get("label") if isinstance(entity, dict) else None
    if not isinstance(label, str) or not label:
        raise InvalidRecords(f"output manifest line {line}: an entity has no label: {entity!r}")
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(source)):
        raise InvalidRecords(
            f"output manifest line {line}: entity {label!r} offsets {start}-{end} lie outside its text of {len(source)} characters"
        )
    return entity


# --- job lifecycle (the data_prep_labeling function) ---------------------------------------------


@dataclass(frozen=True)
class LabelingSettings:
    data_bucket: str
    artifacts_bucket: str
    role_arn: str
    workteam_arn: str
    kms_key_arn: str
    region: str
    qa_pre_lambda_arn: str | None = None
    qa_post_lambda_arn: str | None = None
    partition: str = "aws"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> LabelingSettings:
        return cls(
            data_bucket=env.get("DATA_BUCKET", ""),
            artifacts_bucket=env.get("ARTIFACTS_BUCKET", ""),
            role_arn=env.get("LABELING_ROLE_ARN", ""),
            workteam_arn=env.get("WORKTEAM_ARN", ""),
            kms_key_arn=env.get("KMS_KEY_ARN", ""),
            region=env.get("AWS_REGION", "us-east-1"),
            qa_pre_lambda_arn=env.get("QA_PRE_LAMBDA_ARN") or None,
            qa_post_lambda_arn=env.get("QA_POST_LAMBDA_ARN") or None,
            partition=env.get("AWS_PARTITION", "aws"),
        )


def _read_curated(s3: Any, bucket: str, document_ids: Sequence[str]) -> list[dict[str, Any]]:
    from lambdas.runtime.data_prep.curated import curated_key, validate_curated

    docs = []
    for doc_id in document_ids:
        body = s3.get_object(Bucket=bucket, Key=curated_key(doc_id))["Body"].read()
        docs.append(validate_curated(json.loads(body)))
    return docs


def start_labeling(request: dict[str, Any], *, s3: Any, sagemaker: Any, settings: LabelingSettings) -> dict[str, Any]:
    """``{"action": "start", "job_name", "task_type", "labels", "document_ids", "dataset"}`` -> a started job."""
    from lambdas.runtime.data_prep.events import LabelingStart, parse

    req_in = parse(LabelingStart, request, "labeling request")
    task_type = req_in.task_type
    labels = tuple(req_in.labels)
    job = req_in.job_name
    lines = manifest_lines(_read_curated(s3, settings.data_bucket, req_in.document_ids))
    if not lines:
        raise ValueError("labeling request: the curated documents have no text to label")
    prefix = f"labeling/{job}/"
    bucket = settings.artifacts_bucket
    s3.put_object(Bucket=bucket, Key=prefix + "input.manifest", Body="".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode("utf-8"))
    s3.put_object(Bucket=bucket, Key=prefix + "labels.json", Body=json.dumps(label_category_config(labels or ("qa",))).encode("utf-8"))
    s3.put_object(Bucket=bucket, Key=prefix + "template.liquid.html", Body=TEMPLATES[task_type].encode("utf-8"))
    req = LabelingJobRequest(
        job_name=job,
        task_type=task_type,
        labels=labels,
        manifest_uri=f"s3://{bucket}/{prefix}input.manifest",
        label_config_uri=f"s3://{bucket}/{prefix}labels.json",
        template_uri=f"s3://{bucket}/{prefix}template.liquid.html",
        output_uri=f"s3://{bucket}/{prefix}output/",
        role_arn=settings.role_arn,
        workteam_arn=settings.workteam_arn,
        kms_key_arn=settings.kms_key_arn,
        region=settings.region,
        object_count=len(lines),
        custom_pre_lambda_arn=settings.qa_pre_lambda_arn,
        custom_post_lambda_arn=settings.qa_post_lambda_arn,
        workers_per_object=req_in.workers_per_object,
        partition=settings.partition,
    )
    kwargs = create_labeling_job_kwargs(req)
    kwargs["Tags"].append({"Key": "llmops:dataset", "Value": req_in.dataset})
    kwargs["Tags"] += cost_tags()  # cost allocation reports see labeling jobs like stack resources
    response = sagemaker.create_labeling_job(**kwargs)
    return {
        "labeling_job_arn": response["LabelingJobArn"],
        "objects": len(lines),
        "automated_labeling": "LabelingJobAlgorithmsConfig" in kwargs,
    }


def labeling_job_name(event: dict[str, Any]) -> str:
    """The job name of a "SageMaker Ground Truth Labeling Job State Change" event.

    The event's detail carries only ``LabelingJobStatus``; the job ARN is ``resources[0]``.
    """
    for arn in event.get("resources") or []:
        if ":labeling-job/" in str(arn):
            return str(arn).rsplit("/", 1)[-1]
    detail = event.get("detail") or {}
    name = detail.get("LabelingJobName") or str(detail.get("LabelingJobArn", "")).rsplit("/", 1)[-1]
    if not name:
        raise ValueError("labeling job state-change event names no labeling job (resources[0] or detail.LabelingJobArn)")
    return name


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def complete_labeling(job_name: str, *, s3: Any, sagemaker: Any, settings: LabelingSettings) -> dict[str, Any]:
    """A Completed job's output manifest -> a new version of the dataset named in its tags."""
    from lambdas.runtime.data_prep.datasets import publish_dataset_version

    job = sagemaker.describe_labeling_job(LabelingJobName=job_name)
    if job["LabelingJobStatus"] != "Completed":
        return {"job_name": job_name, "status": job["LabelingJobStatus"], "published": False}
    tags = {t["Key"]: t["Value"] for t in job.get("Tags", [])}
    task_type = tags.get("llmops:task-type")
    dataset = tags.get("llmops:dataset")
    if task_type not in TASK_TYPES or not dataset:
        raise ValueError(f"labeling job {job_name} was not started by the platform (missing llmops:task-type / llmops:dataset tags)")
    output_uri = job["LabelingJobOutput"]["OutputDatasetS3Uri"]
    bucket, key = _split_s3_uri(output_uri)
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8").splitlines()
    fmt, records, skipped = output_to_records(task_type, job["LabelAttributeName"], lines)
    version = publish_dataset_version(
        s3, settings.data_bucket, dataset=dataset, fmt=fmt, records=records, sources=[job["LabelingJobArn"], output_uri]
    )
    return {
        "job_name": job_name,
        "status": "Completed",
        "published": True,
        "dataset": dataset,
        "version": version.version,
        "records": len(records),
        "skipped": skipped,
    }
