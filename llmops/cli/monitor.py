"""`llmops monitor score|baseline|drift`: score interaction logs or data-capture files offline.

Every command reads JSONL (interaction records or SageMaker data-capture lines), reports each
rejected line as ``FILE:LINE: reason`` on stderr, keeps going with the rest, and prints how many
lines were rejected. ``--no-model`` skips the MiniLM metrics (relevance, hallucination,
repeatability) for a quick run; a baseline remembers which set it was built with.
Exit status: 0 fine, 1 unusable input, 2 ``score`` rejected some lines, 3 ``drift`` found drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TABLE_COLUMNS = ("toxicity", "sentiment", "readability", "repetition", "refusal", "jailbreak", "injection",
                 "relevance", "hallucination", "prompt_tokens", "response_tokens")


def register(registry: dict) -> None:
    from llmops.cli.monitor_retraining import _group  # one "monitor" group, whichever module registers first

    sub = _group(registry)

    score = sub.add_parser("score", help="print per-record metrics of a JSONL file (interaction records or data capture)")
    score.add_argument("file", type=Path, metavar="FILE.jsonl")
    score.add_argument("--json", action="store_true", help="one JSON object per record instead of a table")
    _model_flag(score)
    score.set_defaults(func=run_score)

    baseline = sub.add_parser("baseline", help="write a versioned baseline (histogram + summary per metric)")
    baseline.add_argument("file", type=Path, metavar="FILE.jsonl")
    baseline.add_argument("--out", type=Path, required=True, metavar="BASELINE.json")
    _model_flag(baseline)
    baseline.set_defaults(func=run_baseline)

    drift = sub.add_parser("drift", help="compare a JSONL file with a baseline: PSI and KS per metric")
    drift.add_argument("file", type=Path, metavar="FILE.jsonl")
    drift.add_argument("--baseline", type=Path, required=True, metavar="BASELINE.json")
    drift.add_argument("--json", action="store_true", help="print the verdicts as one JSON object")
    drift.add_argument("--html", type=Path, metavar="REPORT.html", help="also write an HTML report with a plot per metric")
    drift.add_argument("--env", default="dev",
                       help="take the drift rule from this environment's monitoring.drift (the rule its alarms and scorer use)")
    drift.add_argument("--psi-threshold", type=float, default=None, help="override monitoring.drift.psi_threshold")
    drift.add_argument("--ks-pvalue", type=float, default=None, help="override monitoring.drift.ks_pvalue")
    drift.add_argument("--ks-statistic", type=float, default=None, help="override monitoring.drift.ks_threshold")
    _model_flag(drift)
    drift.set_defaults(func=run_drift)


def _model_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-model", action="store_true",
                        help="skip the MiniLM metrics (relevance, hallucination, repeatability)")


class InputError(Exception):
    pass


def _score(path: Path, use_model: bool) -> Any:
    from lambdas.runtime.monitoring.scoring import score_lines

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not data.strip():
        raise InputError(f"{path}: empty file, no records to score")
    result = score_lines(data.splitlines(), use_model=use_model)
    for rejected in result.rejected:
        print(f"{path}:{rejected.line}: {rejected.reason}", file=sys.stderr)
    if result.rejected:
        print(f"{path}: {len(result.rejected)} line(s) rejected, {len(result.rows)} scored", file=sys.stderr)
    if not result.rows:
        raise InputError(f"{path}: no usable records")
    return result


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def run_score(args: argparse.Namespace) -> int:
    try:
        result = _score(args.file, not args.no_model)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for row in result.rows:
            print(json.dumps(row, sort_keys=True))
    else:
        columns = ("line", *(c for c in TABLE_COLUMNS if any(c in row for row in result.rows)))
        print("  ".join(f"{c:>10}" for c in columns))
        for row in result.rows:
            print("  ".join(f"{_format(row.get(c)):>10}" for c in columns))
    return 2 if result.rejected else 0


def run_baseline(args: argparse.Namespace) -> int:
    from lambdas.runtime.monitoring.drift import BaselineError, build_baseline
    from lambdas.runtime.monitoring.scoring import metric_set

    try:
        result = _score(args.file, not args.no_model)
        baseline = build_baseline(result.rows, metric_set=metric_set(not args.no_model), centroid=result.centroid,
                                  source={"file": str(args.file), "records": len(result.rows), "rejected": len(result.rejected)})
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(baseline, indent=1) + "\n", encoding="utf-8")
    except (InputError, BaselineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {args.out}: cannot write ({exc.strerror})", file=sys.stderr)
        return 1
    print(f"baseline v{baseline['metric_set_version']} of {len(baseline['metrics'])} metrics over {baseline['records']} "
          f"records written to {args.out}")
    return 0


def _load_baseline(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON baseline ({exc})") from None


def drift_rule_for(env_config: Any) -> Any:
    """The drift rule of an environment's ``monitoring.drift``: the one its alarms and scorer apply."""
    from lambdas.runtime.monitoring.batch import DriftRule

    cfg = env_config.monitoring.drift
    return DriftRule(psi_threshold=cfg.psi_threshold, ks_threshold=cfg.ks_threshold, ks_pvalue=cfg.ks_pvalue)


def _drift_rule(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from llmops.config import ConfigError, load_config

    try:
        rule = drift_rule_for(load_config().get(args.env))
    except (ConfigError, KeyError) as exc:
        raise InputError(f"--env {args.env}: {exc}") from None
    overrides = {k: v for k, v in (("psi_threshold", args.psi_threshold), ("ks_pvalue", args.ks_pvalue),
                                   ("ks_threshold", args.ks_statistic)) if v is not None}
    return replace(rule, **overrides)


def run_drift(args: argparse.Namespace) -> int:
    from lambdas.runtime.monitoring import drift as d
    from lambdas.runtime.monitoring.scoring import metric_set

    try:
        baseline = _load_baseline(args.baseline)
        try:
            d.check_baseline(baseline, metric_set(not args.no_model))
        except d.BaselineError as exc:
            raise InputError(f"{args.baseline}: {exc}") from None
        result = _score(args.file, not args.no_model)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        rule = _drift_rule(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results = d.drift(baseline, result.rows, **rule.options())
    centroid = d.centroid_distance(baseline, result.centroid)
    report = d.report_json(results, centroid=centroid)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"{'metric':<22}{'verdict':<14}{'psi':>8}{'ks':>8}{'ks p':>10}{'base mean':>11}{'mean':>9}")
        for r in results:
            print(f"{r.metric:<22}{r.verdict:<14}{d._fmt(r.psi):>8}{d._fmt(r.ks_statistic):>8}{d._fmt(r.ks_pvalue, '.2g'):>10}"
                  f"{d._fmt(r.baseline_mean):>11}{d._fmt(r.current_mean):>9}")
        if centroid is not None:
            print(f"prompt centroid cosine distance: {centroid:.4f}")
        print(f"{len(report['drifted'])} metric(s) drifted" + (f": {', '.join(report['drifted'])}" if report["drifted"] else ""))
    if args.html:
        try:
            args.html.write_text(d.report_html(results, baseline=baseline, current_source=str(args.file), centroid=centroid),
                                 encoding="utf-8")
        except OSError as exc:
            print(f"error: {args.html}: cannot write ({exc.strerror})", file=sys.stderr)
            return 1
    return 3 if report["drifted"] else 0
