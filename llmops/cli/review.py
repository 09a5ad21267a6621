"""``llmops review preview|ingest``: the human-review task page and results path, on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SAMPLE = {
    "interaction_id": "sample-0001",
    "question": "How long do refunds take?",
    "answer": "Refunds are paid within 5 business days [1], to the card used for the order [2].",
    "contexts": [
        {"text": "Refunds are processed within 5 business days of receiving the return.", "source": "uploads/refunds.md"},
        {"text": "We refund to the original payment method.", "source": "uploads/payments.md"},
    ],
    "prompt_id": "rag-answer", "prompt_version": 1, "model": "smollm2-135m-instruct (local)",
    "instructions": "Rate how well the answer is supported by the passages; correct it if you can.",
}


def register(registry: dict) -> None:
    group = registry["root"].add_parser("review", help="human review (A2I): preview the task page, ingest results locally")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    preview = sub.add_parser("preview", help="render the worker task for an interaction into an HTML file")
    preview.add_argument("--interaction", help="a JSON file with one interaction (default: the last local `ask`, else a sample)")
    preview.add_argument("--out", default="review.html")
    preview.set_defaults(func=run_preview)
    ingest = sub.add_parser("ingest", help="run the results path on an A2I output.json into the local dataset folder")
    ingest.add_argument("output", nargs="+", help="A2I output.json file(s)")
    ingest.add_argument("--dataset", default="reviewed-answers")
    ingest.set_defaults(func=run_ingest)


def _interaction(path: str | None) -> dict:
    if path:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    from llmops.cli.local_files import state_home

    log = state_home() / "interactions.jsonl"
    if log.is_file():
        lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines:
            record = json.loads(lines[-1])
            return {
                "interaction_id": record.get("interaction_id", "local"),
                "question": record.get("question") or record.get("prompt", ""),
                "answer": record.get("response", ""),
                "contexts": [{"text": c, "source": ""} if isinstance(c, str) else c for c in record.get("contexts", [])],
                "prompt_id": (record.get("metadata") or {}).get("prompt_id", ""),
                "prompt_version": (record.get("metadata") or {}).get("prompt_version"),
                "model": (record.get("metadata") or {}).get("model", ""),
            }
    return SAMPLE


def run_preview(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from lambdas.runtime.human_review.model import ReviewInput
    from lambdas.runtime.human_review.template import render

    try:
        review = ReviewInput.model_validate(_interaction(args.interaction))
    except (OSError, ValueError, ValidationError) as err:
        print(f"error: {args.interaction}: {err}", file=sys.stderr)
        return 2
    Path(args.out).write_text(render(review), encoding="utf-8")
    print(f"wrote {args.out} (interaction {review.interaction_id}); open it in a browser")
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    from lambdas.runtime.human_review.results import (
        InvalidReviewOutput, evaluation_records, fine_tuning_pairs, parse_review_output, write_local_dataset_version,
    )
    from llmops.cli.local_files import state_home

    reviews, rejected = [], 0
    for name in args.output:
        try:
            reviews.append(parse_review_output(Path(name).read_bytes()))
        except (OSError, InvalidReviewOutput) as err:
            rejected += 1
            print(f"error: {name}: {err}", file=sys.stderr)
    home = state_home()
    pairs = fine_tuning_pairs(reviews)
    if pairs:
        folder = write_local_dataset_version(home, args.dataset, pairs, list(args.output))
        print(f"wrote {len(pairs)} corrected answers to {folder}")
    evaluation = evaluation_records(reviews)
    if evaluation:
        path = home / "reviews" / "evaluation.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for record in evaluation:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"appended {len(evaluation)} rated interactions to {path}")
    print(f"{len(reviews)} reviews ingested, {rejected} rejected")
    return 1 if rejected else 0
