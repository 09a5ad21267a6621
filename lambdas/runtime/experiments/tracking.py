"""Log a judgement as an MLflow run: arms and versions as parameters, metrics per arm, the verdict, the report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from lambdas.runtime.experiments.judge import Verdict


def log_verdict(verdict: Verdict, *, tracking_uri: str, arms: dict[str, dict[str, Any]], report_html: str | None = None,
                experiment_name: str | None = None) -> str:
    """The run id. ``tracking_uri``: ``sqlite:///...`` locally, the SageMaker MLflow tracking server ARN in AWS.

    Uses ``MlflowClient`` with an explicit URI, not the fluent API: that would set the process-wide
    tracking URI under any other MLflow user in the same process (a training callback, a test).
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    name = experiment_name or f"experiment-{verdict.experiment}"
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=f"judge-{verdict.experiment}")
    run_id = run.info.run_id
    params = [Param(f"arm.{arm}.{key}", str(value)) for arm, spec in arms.items() for key, value in spec.items()
              if value is not None]
    params += [Param("alpha", str(verdict.alpha)), Param("min_samples", str(verdict.min_samples))]
    metrics = [Metric(f"samples.{arm}", n, 0, 0) for arm, n in verdict.samples.items()]
    for c in verdict.comparisons:
        metrics += [Metric(f"{c.metric}.mean.{c.control}", c.mean_control, 0, 0),
                    Metric(f"{c.metric}.mean.{c.treatment}", c.mean_treatment, 0, 0),
                    Metric(f"{c.metric}.difference.{c.treatment}", c.difference, 0, 0),
                    Metric(f"{c.metric}.p_adjusted.{c.treatment}", c.p_adjusted, 0, 0)]
    tags = [RunTag("status", verdict.status), RunTag("winner", verdict.winner or "")]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=1, sort_keys=True))
        if report_html:
            (Path(folder) / "report.html").write_text(report_html, encoding="utf-8")
        client.log_artifacts(run_id, folder)
    client.set_terminated(run_id)
    return run_id
