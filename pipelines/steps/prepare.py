"""Prepare step: read one dataset version, validate, split (seeded), template, report token lengths.

Outputs under ``--output-dir``: ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` (rows
``{"prompt", "completion", "record"}``), ``rejected.jsonl`` (line number, reason, raw text: nothing
is dropped silently) and ``prepare_report.json`` (counts, rejected counts by reason, token-length
statistics per split). A missing, empty or tampered version fails the step with a sentence that
names the dataset and version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from ._io import Location, StepFailed, run_step, write_json, write_jsonl
from .dataset import DatasetError, parse_manifest, to_prompt, validate_lines, verify_data

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "chat_template.jinja",
    "config.json",
)
_VERSION_RE = re.compile(r"datasets/(?P<name>[^/]+)/v(?P<version>\d+)/?$")


def describe(uri: str) -> str:
    match = _VERSION_RE.search(uri.rstrip("/") + "/")
    return f"dataset {match['name']!r} version {match['version']}" if match else f"dataset at {uri}"


def resolve_dataset_uri(dataset_uri: str, manifest_key: str = "") -> str:
    """The version folder: from the trigger's manifest key when given, else ``dataset_uri``."""
    if manifest_key in ("", "none"):  # "none": the pipeline parameter's default (arguments cannot be empty)
        return dataset_uri
    if not _VERSION_RE.search(manifest_key.rsplit("/", 1)[0] + "/") or not manifest_key.endswith("/manifest.json"):
        raise StepFailed(f"manifest key {manifest_key!r} is not datasets/<name>/v<N>/manifest.json")
    base = dataset_uri.split("/datasets/", 1)[0] if "/datasets/" in dataset_uri else dataset_uri.rstrip("/")
    return f"{base}/{manifest_key.rsplit('/', 1)[0]}/"


def split_records(records: list[Any], seed: int, validation_fraction: float, test_fraction: float) -> dict[str, list[Any]]:
    """Deterministic split: order by a seeded hash of each record, then cut.

    Hash order (not a shuffled index) keeps a record in the same split when its position in the
    file changes; the index breaks ties between identical records.
    """
    if not 0 <= validation_fraction < 1 or not 0 <= test_fraction < 1 or validation_fraction + test_fraction >= 1:
        raise ValueError("validation and test fractions must be in [0, 1) and sum to less than 1")

    def key(item: tuple[int, Any]) -> tuple[str, int]:
        canonical = json.dumps(item[1], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(f"{seed}:{canonical}".encode()).hexdigest(), item[0]

    ordered = [record for _, record in sorted(enumerate(records), key=key)]
    n = len(ordered)
    n_val = round(n * validation_fraction)
    n_test = round(n * test_fraction)
    # Small sets still get one held-out example per requested split, so evaluation never runs empty.
    if n >= 3:
        n_val = max(n_val, 1 if validation_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    return {
        "test": ordered[:n_test],
        "validation": ordered[n_test : n_test + n_val],
        "train": ordered[n_test + n_val :],
    }


def length_stats(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {"count": 0}
    import numpy as np

    arr = np.asarray(lengths)
    return {
        "count": int(arr.size),
        "min": int(arr.min()),
        "mean": round(float(arr.mean()), 2),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": int(arr.max()),
    }


def load_tokenizer(model_uri: str | None, s3_client: Any | None = None):
    """The base model's tokenizer (only its small files are fetched), or None without a model URI."""
    if not model_uri:
        return None
    from transformers import AutoTokenizer

    source = Location(model_uri, s3_client)
    if not source.is_s3:
        return AutoTokenizer.from_pretrained(source.uri)
    target = Path(tempfile.mkdtemp(prefix="tokenizer-"))
    found = False
    for name in TOKENIZER_FILES:
        data = source.read(name)
        if data is not None:
            (target / name).write_bytes(data)
            found = found or name.startswith("tokenizer")
    if not found:
        raise StepFailed(f"no tokenizer files under the base model location {model_uri}")
    return AutoTokenizer.from_pretrained(str(target))


def prepare(
    dataset_uri: str,
    output_dir: Path,
    *,
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_rejected_fraction: float = 0.1,
    tokenizer: Any | None = None,
    s3_client: Any | None = None,
) -> dict[str, Any]:
    what = describe(dataset_uri)
    folder = Location(dataset_uri, s3_client)
    raw_manifest = folder.read("manifest.json")
    if raw_manifest is None:
        versions = [n for n in folder.parent().list_names() if re.fullmatch(r"v\d+", n)]
        known = ", ".join(sorted(versions, key=lambda v: int(v[1:]))) or "none"
        raise StepFailed(f"{what} does not exist: no manifest.json at {folder.uri} (published versions: {known})")
    try:
        manifest = parse_manifest(raw_manifest, what)
        data = folder.read("data.jsonl")
        if data is None:
            raise DatasetError(f"{what}: manifest.json exists but data.jsonl is missing")
        verify_data(manifest, data, what)
    except DatasetError as exc:
        raise StepFailed(str(exc)) from None

    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing newline is not a record
    result = validate_lines(lines, manifest.format)
    total = len(lines)
    if total != manifest.record_count:
        raise StepFailed(f"{what}: manifest says {manifest.record_count} records, data.jsonl has {total} lines")
    counts = result.rejected_counts
    if not result.records:
        raise StepFailed(f"{what}: none of its {total} records is valid (rejected by reason: {counts})")
    rejected_fraction = len(result.rejected) / total
    if rejected_fraction > max_rejected_fraction:
        raise StepFailed(
            f"{what}: {len(result.rejected)} of {total} records rejected ({rejected_fraction:.1%} > "
            f"allowed {max_rejected_fraction:.1%}); by reason: {counts}"
        )

    splits = split_records(result.records, seed, validation_fraction, test_fraction)
    stats: dict[str, Any] = {}
    for name, records in splits.items():
        rows = []
        lengths = []
        for record in records:
            prompt, completion = to_prompt(record, manifest.format, tokenizer)
            rows.append({"prompt": prompt, "completion": completion, "record": record})
            if tokenizer is not None:
                lengths.append(len(tokenizer(prompt + completion, add_special_tokens=True)["input_ids"]))
            else:
                lengths.append(len((prompt + completion).split()))
        write_jsonl(output_dir / f"{name}.jsonl", rows)
        stats[name] = length_stats(lengths)
    write_jsonl(output_dir / "rejected.jsonl", result.rejected)
    report = {
        "dataset": manifest.dataset,
        "version": manifest.version,
        "format": manifest.format,
        "sha256": manifest.sha256,
        "seed": seed,
        "records": total,
        "accepted": len(result.records),
        "rejected": len(result.rejected),
        "rejected_by_reason": counts,
        "splits": {name: len(records) for name, records in splits.items()},
        "token_unit": "tokens" if tokenizer is not None else "whitespace-words",
        "token_lengths": stats,
    }
    write_json(output_dir / "prepare_report.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-uri", required=True, help="s3://bucket/datasets/<name>/v<N>/ or a local folder")
    parser.add_argument("--manifest-key", default="", help="datasets/<name>/v<N>/manifest.json: overrides the version in --dataset-uri")
    parser.add_argument("--model-uri", default="", help="base model folder (for its tokenizer and chat template)")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output/prepared")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--max-rejected-fraction", type=float, default=0.1)
    args = parser.parse_args(argv)
    report = prepare(
        resolve_dataset_uri(args.dataset_uri, args.manifest_key),
        Path(args.output_dir),
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        max_rejected_fraction=args.max_rejected_fraction,
        tokenizer=load_tokenizer(args.model_uri or None),
    )
    print(json.dumps(report, indent=2, sort_keys=True))


if __name__ == "__main__":
    raise SystemExit(run_step(main))
