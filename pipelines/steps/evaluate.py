"""Evaluate step: score the tuned model on the held-out test split and apply the quality gate.

Perplexity on the test completions; for ``instruction`` datasets greedy generations scored with
ROUGE-L, BLEU, exact match and token F1; for ``text-label`` datasets accuracy, precision, recall
and F1 of the generated label. Writes ``evaluation.json``: ``{"metrics", "check": {"passed",
"reason", ...}, "thresholds", "dataset", "samples"}``. The pipeline's check step reads
``check.passed`` and fails the execution with ``check.reason``; the register step attaches the
same file to the model package as its model metrics.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path
from typing import Any

from . import metrics as m
from ._io import StepFailed, read_jsonl, run_step, write_json
from .check import THRESHOLDS, check
from .modeling import IGNORE_INDEX, encode_example, load_causal_lm, load_tokenizer


def resolve_model_dir(model_dir: Path) -> Path:
    """The training job's ``model.tar.gz`` arrives packed; unpack it next to itself once."""
    if (model_dir / "config.json").is_file():
        return model_dir
    archive = model_dir / "model.tar.gz"
    if archive.is_file():
        target = model_dir / "unpacked"
        if not (target / "config.json").is_file():
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(target, filter="data")
        return target
    raise StepFailed(f"no model in {model_dir}: expected config.json or model.tar.gz from the train step")


def score_perplexity(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> float:
    import torch

    total_nll, total_tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for row in rows:
            enc = encode_example(tokenizer, row["prompt"], row["completion"], max_length)
            input_ids = torch.tensor([enc["input_ids"]], device=model.device)
            labels = torch.tensor([enc["labels"]], device=model.device)
            logits = model(input_ids=input_ids).logits[:, :-1, :].float()
            targets = labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
            )
            total_nll += float(nll)
            total_tokens += int((targets != IGNORE_INDEX).sum())
    return m.perplexity(total_nll, total_tokens)


def generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch

    outputs = []
    model.eval()
    with torch.no_grad():
        for prompt in prompts:
            # Only ids and mask: some tokenizers add token_type_ids, which generate() rejects in transformers 4.x.
            enc = tokenizer(prompt, return_tensors="pt", return_token_type_ids=False).to(model.device)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            outputs.append(tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return outputs


def evaluate(
    model_dir: Path,
    data_dir: Path,
    output_dir: Path,
    thresholds: dict[str, float],
    *,
    max_new_tokens: int = 128,
    max_samples: int = 500,
    max_length: int = 2048,
) -> dict[str, Any]:
    report_path = data_dir / "prepare_report.json"
    test_path = data_dir / "test.jsonl"
    if not report_path.is_file() or not test_path.is_file():
        raise StepFailed(f"no prepare_report.json/test.jsonl in {data_dir}: the prepare step's output is missing")
    prepared = json.loads(report_path.read_text(encoding="utf-8"))
    rows = read_jsonl(test_path)[:max_samples]
    if not rows:
        raise StepFailed("the test split is empty: publish a larger dataset version or raise test_fraction")
    model_path = resolve_model_dir(model_dir)
    tokenizer = load_tokenizer(model_path)
    model = load_causal_lm(model_path)
    import torch

    if torch.cuda.is_available():
        model = model.to("cuda")

    scores: dict[str, float] = {"perplexity": score_perplexity(model, tokenizer, rows, max_length)}
    predictions = generate(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    references = [r["completion"] for r in rows]
    if prepared.get("format") == "text-label":
        # The label is the first line of the generation: models often continue after it.
        labels = [p.splitlines()[0].strip() if p.strip() else "" for p in predictions]
        scores.update(m.classification(labels, references))
    else:
        scores.update(m.generation(predictions, references))
    result = check(scores, thresholds)
    report = {
        "dataset": {k: prepared.get(k) for k in ("dataset", "version", "format", "sha256")},
        "samples": len(rows),
        "metrics": {k: round(v, 6) for k, v in sorted(scores.items())},
        "thresholds": dict(sorted(thresholds.items())),
        "check": result.to_dict(),
        "examples": [
            {"prompt": r["prompt"][-500:], "reference": r["completion"][:500], "prediction": p[:500]}
            for r, p in list(zip(rows, predictions))[:5]
        ],
    }
    write_json(output_dir / "evaluation.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default="/opt/ml/processing/input/model")
    p.add_argument("--data-dir", default="/opt/ml/processing/input/prepared")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/evaluation")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--max-samples", type=int, default=500)
    for name in THRESHOLDS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, default=0.0)
    args = p.parse_args(argv)
    thresholds = {name: getattr(args, name) for name in THRESHOLDS}
    report = evaluate(
        Path(args.model_dir),
        Path(args.data_dir),
        Path(args.output_dir),
        thresholds,
        max_new_tokens=args.max_new_tokens,
        max_samples=args.max_samples,
    )
    print(json.dumps({k: report[k] for k in ("metrics", "check")}, indent=2))


if __name__ == "__main__":
    raise SystemExit(run_step(main))
