"""A2I review output -> a reviewed interaction -> fine-tuning pairs, evaluation records and metrics.

The output object (``<OutputConfig.S3OutputPath>/<flow>/<yyyy>/<mm>/<dd>/<hh>/<mm>/<ss>/<loop>/output.json``)
holds ``inputContent`` (what routing sent) and ``humanAnswers[].answerContent`` (the form). Form
values arrive in the shapes crowd-form gives native inputs: a checkbox as ``true``, ``"on"`` or
``{"on": true}``; the rating as ``3``, ``"3"`` or ``{"3": true}``. Anything else is refused
with the field named, and the caller quarantines the object with that reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lambdas.runtime.human_review.model import PROBLEMS, ReviewAnswer, ReviewedInteraction, ReviewInput


class InvalidReviewOutput(ValueError):
    """The review output cannot be used; the message says which field and why."""


def _checked(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_checked(v) for v in value.values())
    return value is True or value in ("on", "true", "True", 1)


def _rating(value: Any) -> Any:
    if isinstance(value, dict):
        chosen = [k for k, v in value.items() if _checked(v)]
        if len(chosen) != 1:
            raise InvalidReviewOutput(f"rating: expected exactly one choice, got {sorted(chosen)}")
        value = chosen[0]
    try:
        return int(str(value).removeprefix("rating-"))
    except ValueError:
        raise InvalidReviewOutput(f"rating: not a number 1-5: {value!r}") from None


def normalize_answer(content: Any) -> ReviewAnswer:
    if not isinstance(content, dict):
        raise InvalidReviewOutput(f"answerContent: expected an object, got {type(content).__name__}")
    if "rating" not in content:
        raise InvalidReviewOutput("answerContent.rating: missing (the reviewer must rate the answer)")
    problems = [p for p in PROBLEMS if _checked(content.get(p))]
    if isinstance(content.get("problems"), list):
        problems += [p for p in content["problems"] if p not in problems]
    corrected = content.get("corrected_answer", "")
    if not isinstance(corrected, str):
        raise InvalidReviewOutput(f"answerContent.corrected_answer: expected text, got {type(corrected).__name__}")
    try:
        return ReviewAnswer(rating=_rating(content["rating"]), problems=tuple(problems), corrected_answer=corrected)
    except ValidationError as err:
        first = err.errors()[0]
        raise InvalidReviewOutput(f"answerContent.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def parse_review_output(raw: bytes | str | dict) -> ReviewedInteraction:
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidReviewOutput(f"output: not UTF-8 ({exc})") from None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidReviewOutput(f"output: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise InvalidReviewOutput("output: expected a JSON object")
    loop = raw.get("humanLoopName")
    if not isinstance(loop, str) or not loop:
        raise InvalidReviewOutput("humanLoopName: missing")
    content = raw.get("inputContent")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except json.JSONDecodeError:
            raise InvalidReviewOutput("inputContent: not JSON") from None
    try:
        review_input = ReviewInput.model_validate(content)
    except ValidationError as err:
        first = err.errors()[0]
        raise InvalidReviewOutput(f"inputContent.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    answers = raw.get("humanAnswers")
    if not isinstance(answers, list) or not answers:
        raise InvalidReviewOutput("humanAnswers: no answers (the loop may have expired)")
    parsed = tuple(normalize_answer((a or {}).get("answerContent") if isinstance(a, dict) else a) for a in answers)
    return ReviewedInteraction(loop_name=loop, input=review_input, answers=parsed)


def fine_tuning_pairs(reviews: list[ReviewedInteraction]) -> list[dict[str, str]]:
    """Corrected answers as supervised pairs in the data-prep ``instruction`` format."""
    pairs = []
    for review in reviews:
        corrected = review.corrected_answer
        if not corrected:
            continue
        context = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(review.input.contexts, start=1))
        record = {"instruction": review.input.question, "response": corrected}
        if context:
            record["input"] = context
        pairs.append(record)
    return pairs


def evaluation_records(reviews: list[ReviewedInteraction]) -> list[dict[str, Any]]:
    """Ratings and problem labels: an evaluation set for baselines and the experiments judge."""
    return [
        {
            "interaction_id": r.input.interaction_id,
            "prompt": r.input.question,
            "response": r.input.answer,
            "contexts": [p.text for p in r.input.contexts],
            "question": r.input.question,
            "metadata": {"prompt_id": r.input.prompt_id, "prompt_version": r.input.prompt_version, "model": r.input.model},
            "human_rating": r.mean_rating,
            "human_problems": r.problem_rates,
        }
        for r in reviews
    ]


def review_metrics(reviews: list[ReviewedInteraction]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (prompt id@version, model): mean rating and problem rates, for CloudWatch and the dashboard."""
    groups: dict[tuple[str, str], list[ReviewedInteraction]] = {}
    for r in reviews:
        key = (f"{r.input.prompt_id}@{r.input.prompt_version}", r.input.model or "unknown")
        groups.setdefault(key, []).append(r)
    result = {}
    for key, items in groups.items():
        metrics = {"ReviewCount": float(len(items)), "MeanRating": sum(i.mean_rating for i in items) / len(items)}
        for problem in PROBLEMS:
            metrics[f"ProblemRate.{problem}"] = sum(i.problem_rates[problem] for i in items) / len(items)
        result[key] = metrics
    return result


def write_local_dataset_version(root: Path, dataset: str, records: list[dict[str, Any]], sources: list[str]) -> Path:
    """The same ``datasets/<name>/v<N>/`` layout as data prep, in a local folder (the laptop run)."""
    import hashlib

    from lambdas.runtime.data_prep.datasets import SCHEMA, encode_jsonl, validate_record
    from lambdas.runtime.data_prep.curated import now_iso

    for i, record in enumerate(records):
        validate_record(record, "instruction")
    base = Path(root) / "datasets" / dataset
    base.mkdir(parents=True, exist_ok=True)
    existing = [int(p.name[1:]) for p in base.glob("v*") if p.name[1:].isdigit()]
    version = max(existing, default=0) + 1
    folder = base / f"v{version}"
    folder.mkdir()
    body = encode_jsonl(records)
    (folder / "data.jsonl").write_bytes(body)
    manifest = {
        "schema": SCHEMA, "dataset": dataset, "version": version, "format": "instruction",
        "record_count": len(records), "sha256": hashlib.sha256(body).hexdigest(), "sources": sources,
        "created_at": now_iso(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder
