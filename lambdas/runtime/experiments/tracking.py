"""Log a judgement as an MLflow run: arms and versions as parameters, metrics per arm, the verdict, the report."""

from __future__ import annotations

from typing import Any

from lambdas.runtime.experiments.judge import Verdict


def log_verdict(verdict: Verdict, *, tracking_uri: str, arms: dict[str, dict[str, Any]], report_html: str | None = None,
                experiment_name: str | None = None) -> str:
    """The run id. ``tracking_uri``: ``sqlite:///...`` locally, the SageMaker MLflow tracking server ARN in AWS."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_name or f"experiment-{verdict.experiment}")
    with mlflow.start_run(run_name=f"judge-{verdict.experiment}") as run:
        for arm, spec in arms.items():
            for key, value in spec.items():
                if value is not None:
                    mlflow.log_param(f"arm.{arm}.{key}", value)
        mlflow.log_params({"alpha": verdict.alpha, "min_samples": verdict.min_samples})
        for arm, n in verdict.samples.items():
            mlflow.log_metric(f"samples.{arm}", n)
        for c in verdict.comparisons:
            mlflow.log_metric(f"{c.metric}.mean.{c.control}", c.mean_control)
            mlflow.log_metric(f"{c.metric}.mean.{c.treatment}", c.mean_treatment)
            mlflow.log_metric(f"{c.metric}.difference.{c.treatment}", c.difference)
            mlflow.log_metric(f"{c.metric}.p_adjusted.{c.treatment}", c.p_adjusted)
        mlflow.set_tags({"status": verdict.status, "winner": verdict.winner or ""})
        mlflow.log_dict(verdict.to_dict(), "verdict.json")
        if report_html:
            mlflow.log_text(report_html, "report.html")
        return run.info.run_id
