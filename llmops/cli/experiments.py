"""``llmops experiments judge NAME --local`` and ``llmops experiments promote NAME``.

The judge reads interaction records (the local ``ask`` log, or any JSONL of the monitoring
record format), splits them into the experiment's arms by their metadata, compares the arms on
the experiment's metrics and prints the verdict; every judgement is logged to MLflow. Promote
writes the winner into ``config/environments.yaml`` (comments and order kept) for a person to
review and commit: nothing changes an endpoint or an alias behind CloudFormation's back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ARM_KEYS = {"prompt-ab": ("prompt_version", "version"), "model-ab": ("variant", "variant"),
            "model-shadow": ("variant", "variant"), "embedding-ab": ("embedding_model", "model")}


def register(registry: dict) -> None:
    group = registry["root"].add_parser("experiments", help="judge A/B and shadow experiments, promote the winner")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    judge = sub.add_parser("judge", help="compare the arms of an experiment with a significance test")
    judge.add_argument("name")
    judge.add_argument("--env", default="dev")
    judge.add_argument("--local", action="store_true", help="judge the local interaction log (llmops local ask)")
    judge.add_argument("--records", help="a JSONL file of interaction records or metrics-table rows "
                                         "(default with --local: the state folder's log)")
    judge.add_argument("--aws", action="store_true",
                       help="judge the environment's metrics table in S3 (monitoring/metrics/), as the scheduled job does")
    judge.add_argument("--days", type=int, default=None, help="with --aws: days of metrics to read (default experiments_judge.lookback_days)")
    judge.add_argument("--region", default=None, help="with --aws: the environment's region (default: its config)")
    judge.add_argument("--json", action="store_true")
    judge.add_argument("--html", help="write an HTML report with a plot per metric")
    judge.add_argument("--require-decision", action="store_true", help="exit 1 unless a winner or no-difference is decided")
    judge.add_argument("--no-mlflow", action="store_true", help="do not log the judgement to MLflow")
    judge.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite in the state folder)")
    judge.set_defaults(func=run_judge)
    replay = sub.add_parser("replay", help="send captured or curated requests to every arm and judge the answers")
    replay.add_argument("name")
    replay.add_argument("--env", default="dev")
    replay.add_argument("--requests", required=True, help="JSONL: {variables: {...}}, {prompt: ...} or data-capture lines")
    replay.add_argument("--local", action="store_true",
                        help="answer with the local model (llmops local serve's SmolLM2) instead of the deployed endpoint")
    replay.add_argument("--endpoint-url", help="with --local: a running `llmops local serve` (default: start the model here)")
    replay.add_argument("--prompt-file", action="append", default=[], metavar="ARM=PATH",
                        help="the prompt file an arm renders (repeatable; default for the control arm: prompts/<prompt>.yaml); "
                             "PATH alone: every arm of a model experiment")
    replay.add_argument("--threads", type=int, default=0,
                        help="with --local: CPU threads per generation (default 0: torch's choice; 1 is fastest on a busy machine)")
    replay.add_argument("--max-new-tokens", type=int, default=None, help="cap on each answer's tokens (default: the prompt's)")
    replay.add_argument("--min-samples", type=int, default=None, help="per arm (default: the experiment's min_samples)")
    replay.add_argument("--answers", help="write every arm's answers with their metrics as JSONL")
    replay.add_argument("--region", default=None, help="AWS region of the endpoint (default: the environment's)")
    replay.add_argument("--json", action="store_true")
    replay.add_argument("--html", help="write an HTML report with a plot per metric")
    replay.add_argument("--require-decision", action="store_true", help="exit 1 unless a winner or no-difference is decided")
    replay.add_argument("--no-mlflow", action="store_true", help="do not log the judgement to MLflow")
    replay.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite in the state folder)")
    replay.set_defaults(func=run_replay)
    promote = sub.add_parser("promote", help="write the winner into the config for review")
    promote.add_argument("name")
    promote.add_argument("--env", default="dev")
    promote.add_argument("--winner", required=True, help="the arm that won (from the judge's verdict)")
    promote.add_argument("--config", default=None, help="config file (default config/environments.yaml)")
    promote.set_defaults(func=run_promote)
    backfill = sub.add_parser("backfill", help="queue every current document for ingestion, to fill a new embedding arm's index")
    backfill.add_argument("name", help="the embedding-ab experiment")
    backfill.add_argument("--env", default="dev")
    backfill.add_argument("--bucket", required=True, help="the platform data bucket (the foundation stack's output)")
    backfill.add_argument("--queue-url", required=True, help="the RAG ingestion queue (RagStack IngestQueue)")
    backfill.set_defaults(func=run_backfill)


def _load_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    records, problems = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [f"{path}: not UTF-8 ({exc})"]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{path}:{number}: not a JSON object")
            continue
        records.append(record)
    return records, problems


def _with_metrics(arms: dict[str, list[dict[str, Any]]], metrics: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Score what the records lack with the monitoring library (the local log carries metadata, not metrics)."""
    from lambdas.runtime.experiments.replay import score
    from lambdas.runtime.monitoring.records import RecordError

    out = {}
    for arm, records in arms.items():
        missing = [m for m in metrics if m != "latency_ms" and any(m not in (r.get("metrics") or {}) for r in records)]
        if not missing:  # nothing to score: no model loaded
            out[arm] = [{**r, "metrics": {**_latency(r), **(r.get("metrics") or {})}} for r in records]
            continue
        scorable = [r for r in records if isinstance(r.get("prompt"), str) and isinstance(r.get("response"), str)]
        try:
            rescored = score({arm: scorable}, missing)[arm] if scorable else []
        except RecordError:
            rescored = scorable  # an unscorable record keeps what it has; the judge counts values per metric
        out[arm] = rescored + [{**r, "metrics": {**_latency(r), **(r.get("metrics") or {})}} for r in records if r not in scorable]
    return out


def _latency(record: dict[str, Any]) -> dict[str, float]:
    value = (record.get("metadata") or {}).get("latency_ms")
    return {"latency_ms": float(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


def _environment_with(args: argparse.Namespace) -> Any:
    """The environment ``--env`` names if it declares experiment ``NAME``; else None, the reason printed."""
    from llmops.config import ConfigError, load_config

    try:
        env = load_config().get(args.env)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    if args.name not in env.experiments:
        print(f"error: environments.{env.name}.experiments: no experiment {args.name!r}; "
              f"declared: {', '.join(env.experiments) or 'none'}", file=sys.stderr)
        return None
    return env


def run_judge(args: argparse.Namespace) -> int:
    from llmops.cli.local_files import state_home
    from lambdas.runtime.experiments.judge import judge

    env = _environment_with(args)
    if env is None:
        return 2
    if sum(bool(x) for x in (args.local, args.records, args.aws)) != 1:
        print("error: give one of --local (the local interaction log), --records FILE.jsonl or --aws (the metrics "
              "table in S3)", file=sys.stderr)
        return 2
    if args.days is not None and not 1 <= args.days <= 366:
        print(f"error: --days must be 1-366, got {args.days}", file=sys.stderr)
        return 2
    exp = env.experiments[args.name]
    from lambdas.runtime.experiments.scheduled import Experiment, select_arms

    spec = Experiment.from_dict(args.name, _spec(env, args.name))
    if args.aws:
        try:
            records, problems = _table_rows(args, env), []
        except (RuntimeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        path = Path(args.records) if args.records else state_home() / "interactions.jsonl"
        if not path.is_file():
            print(f"error: {path}: no interaction records (run `llmops local ask` or pass --records)", file=sys.stderr)
            return 2
        records, problems = _load_records(path)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    # Metrics-table rows (flat, no response text) are split as the scheduled job splits them.
    rows = [r for r in records if "response" not in r]
    arms: dict[str, list[dict[str, Any]]] = select_arms(rows, spec)
    meta_key, arm_field = ARM_KEYS[exp.kind]
    by_value = {str(getattr(arm, arm_field)): arm.name for arm in exp.arms}
    for record in records:
        if "response" not in record:
            continue
        value = (record.get("metadata") or {}).get(meta_key)
        if value is not None and str(value) in by_value:
            arms[by_value[str(value)]].append(record)
    arms = _with_metrics(arms, list(exp.metrics))
    exp_name = args.name
    verdict = judge(exp_name, arms, list(exp.metrics), control=exp.arms[0].name,
                    min_samples=exp.min_samples, alpha=exp.alpha)
    if problems:
        verdict.notes.append(f"{len(problems)} malformed record line(s) skipped")
    return _finish(args, env, exp, verdict, arms)


def _spec(env: Any, name: str) -> dict[str, Any]:
    from llmops.config import experiment_specs

    return experiment_specs(env)[name]


def _table_rows(args: argparse.Namespace, env: Any) -> list[dict[str, Any]]:
    """The metrics table's rows of the last days, read from the environment's data bucket."""
    import datetime as dt

    import boto3

    from lambdas.runtime.experiments.scheduled import read_metrics

    region = args.region or env.region
    if not (env.account and region):
        raise ValueError(f"environments.{env.name}: account and region name the data bucket; set them (or --region)")
    bucket = f"{env.name_prefix}-data-{env.account}-{region}"  # FoundationStack.bucket_name("data")
    days = args.days or env.experiments_judge.lookback_days
    table = read_metrics(boto3.client("s3", region_name=region), bucket, today=dt.datetime.now(dt.timezone.utc).date(), days=days)
    print(f"Read {len(table.rows)} row(s) in {table.objects} object(s) of s3://{bucket}/monitoring/metrics/ "
          f"({days} days){f', {table.malformed} malformed line(s) skipped' if table.malformed else ''}", file=sys.stderr)
    return table.rows


def _finish(args: argparse.Namespace, env: Any, exp: Any, verdict: Any, arms: dict[str, list[dict[str, Any]]]) -> int:
    """The HTML report, the MLflow run, the verdict printed, and the exit status: shared by judge and replay."""
    from llmops.cli.local_files import state_home
    from lambdas.runtime.experiments.judge import verdict_json

    exp_name = args.name
    report = None
    if args.html:
        from lambdas.runtime.experiments.report import render_report

        report = render_report(verdict, arms, list(exp.metrics))
        Path(args.html).write_text(report, encoding="utf-8")
    if not args.no_mlflow:
        from lambdas.runtime.experiments.tracking import log_verdict

        uri = args.tracking_uri or f"sqlite:///{state_home() / 'mlflow.db'}"
        state_home().mkdir(parents=True, exist_ok=True)
        arm_specs = {a.name: {"weight": a.weight, "variant": a.variant, "version": a.version, "model": a.model} for a in exp.arms}
        run_id = log_verdict(verdict, tracking_uri=uri, arms=arm_specs, report_html=report, experiment_name=f"{env.name}-{exp_name}")
        verdict.notes.append(f"MLflow run {run_id} at {uri}")
    print(verdict_json(verdict) if args.json else verdict.summary())
    if args.require_decision and verdict.status not in ("winner", "no-difference"):
        return 1
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from ruamel.yaml import YAML

    from llmops.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config

    path = Path(args.config) if args.config else DEFAULT_CONFIG_PATH
    yaml = YAML()  # round-trip: comments, key order and quoting survive the edit
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the file's own style, so the diff is the promotion only
    yaml.width = 4096
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    data = yaml.load(path.read_text(encoding="utf-8"))
    env = (data.get("environments") or {}).get(args.env)
    experiments = (env or {}).get("experiments") or {}
    if args.name not in experiments:
        print(f"error: environments.{args.env}.experiments.{args.name}: not declared in {path}", file=sys.stderr)
        return 2
    exp = experiments[args.name]
    names = [arm["name"] for arm in exp["arms"]]
    if args.winner not in names:
        print(f"error: --winner {args.winner!r} is not an arm of {args.name}; arms: {', '.join(names)}", file=sys.stderr)
        return 2
    exp["winner"] = args.winner
    if exp.get("kind") != "model-shadow":
        for arm in exp["arms"]:
            arm["weight"] = 100 if arm["name"] == args.winner else 0  # the next deploy gives the winner all traffic
    import io

    buffer = io.StringIO()
    yaml.dump(data, buffer)
    try:
        parse_config(YAML(typ="safe").load(buffer.getvalue()))
    except ConfigError as err:
        print(f"error: the promoted config would not validate: {err}", file=sys.stderr)
        return 1
    path.write_text(buffer.getvalue(), encoding="utf-8")
    print(f"{path}: environments.{args.env}.experiments.{args.name}: winner {args.winner}; review the diff and commit it")
    return 0


def _split_prompt_files(values: list[str], arms: list[str]) -> tuple[dict[str, Path], Path | None, str | None]:
    per_arm: dict[str, Path] = {}
    every: Path | None = None
    for value in values:
        arm, sep, path = value.partition("=")
        if sep and arm in arms:
            per_arm[arm] = Path(path)
        elif sep and not Path(value).exists():
            return {}, None, f"--prompt-file {value}: {arm!r} is not an arm; arms: {', '.join(arms)}"
        else:
            every = Path(value)
    return per_arm, every, None


def _file_renderer(path: Path, prompt_id: str | None, version: int | None, max_new_tokens: int | None):
    """A request -> RenderedPrompt function over one prompt file (validated as the sync validates it)."""
    from lambdas.runtime.prompt_catalog.files import load_prompt_file
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt
    from lambdas.runtime.prompt_catalog.templates import render_content

    loaded, problems = load_prompt_file(path)
    if loaded is None or problems:
        raise ValueError(f"{path}: " + "; ".join(str(p) for p in problems))
    if prompt_id and loaded.prompt_id != prompt_id:
        raise ValueError(f"{path}: prompt {loaded.prompt_id!r}, but the experiment compares versions of {prompt_id!r}")

    def render(request: Any) -> Any:
        if request.variables is None:
            raise ValueError(f"a {loaded.prompt_id} arm renders 'variables'; this request has only a prompt")
        text, messages = render_content(loaded.content, dict(request.variables))
        params = loaded.content.model_parameters.as_dict()
        if max_new_tokens:
            params["max_tokens"] = min(int(params.get("max_tokens") or max_new_tokens), max_new_tokens)
        return RenderedPrompt(text=text, prompt_id=loaded.prompt_id, version=version or 0,
                              content_hash=loaded.content.content_hash(), model_parameters=params, messages=messages)

    return render


def _raw_renderer(max_new_tokens: int | None):
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt

    def render(request: Any) -> Any:
        if request.prompt is None:
            raise ValueError("this request has only 'variables'; give --prompt-file PATH to render them")
        return RenderedPrompt(text=request.prompt, prompt_id="replay", version=0, content_hash="",
                              model_parameters={"temperature": 0, "max_tokens": max_new_tokens or 256})

    return render


def run_backfill(args: argparse.Namespace) -> int:
    """Ingestion then writes each document into the arms' indexes that lack it; the others skip it as unchanged."""
    from llmops.config import ConfigError, load_config

    try:
        env = load_config().get(args.env)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    exp = env.experiments.get(args.name)
    if exp is None or exp.kind != "embedding-ab":
        declared = [n for n, e in env.experiments.items() if e.kind == "embedding-ab"]
        print(f"error: environments.{env.name}.experiments.{args.name}: not an embedding-ab experiment; "
              f"declared: {', '.join(declared) or 'none'}", file=sys.stderr)
        return 2
    if exp.winner is not None:
        print(f"error: experiments.{args.name} is promoted ({exp.winner}): ingestion writes one index, nothing to fill",
              file=sys.stderr)
        return 2
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdas.runtime.rag.backfill import queue_backfill

    try:
        sent = queue_backfill(boto3.client("s3"), boto3.client("sqs"), bucket=args.bucket, queue_url=args.queue_url)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        print(f"error: backfill stopped: {exc}", file=sys.stderr)
        return 1
    print(f"{sent} document(s) queued for ingestion into every arm of {args.name}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from llmops.config import REPO_ROOT
    from lambdas.runtime.experiments.judge import judge
    from lambdas.runtime.experiments.replay import ReplayArm, parse_requests, replay, score

    env = _environment_with(args)
    if env is None:
        return 2
    exp = env.experiments[args.name]
    model_kind = exp.kind in ("model-ab", "model-shadow")
    if exp.kind == "embedding-ab":
        print("error: replay compares answers of prompt and model arms; an embedding-ab experiment is judged on the "
              "retrieval of live queries (llmops experiments judge)", file=sys.stderr)
        return 2
    if model_kind and args.local:
        print(f"error: {args.name} compares the models of the endpoint's variants; the local server has one model. "
              "Replay without --local against the deployed variants (TargetVariant)", file=sys.stderr)
        return 2
    if model_kind and exp.kind == "model-shadow":
        print(f"error: {args.name}: SageMaker does not route a request to a shadow variant (TargetVariant names production "
              "variants). Replay the candidate first as a model-ab arm with weight 0, then shadow it", file=sys.stderr)
        return 2
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        print(f"error: --max-new-tokens must be at least 1, got {args.max_new_tokens}", file=sys.stderr)
        return 2
    path = Path(args.requests)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: --requests {path}: {exc}", file=sys.stderr)
        return 2
    requests, problems = parse_requests(lines)
    for problem in problems:
        print(f"warning: {path}: {problem}", file=sys.stderr)
    if not requests:
        print(f"error: --requests {path}: no usable request", file=sys.stderr)
        return 2
    names = [a.name for a in exp.arms]
    per_arm, every, error = _split_prompt_files(args.prompt_file, names)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    renderers: dict[str, Any] = {}
    try:
        for arm in exp.arms:
            if exp.kind == "prompt-ab":
                file = per_arm.get(arm.name) or (REPO_ROOT / "prompts" / f"{exp.prompt}.yaml" if arm is exp.arms[0] else None)
                if file is None:
                    print(f"error: --prompt-file {arm.name}=PATH: the file of prompt {exp.prompt} version {arm.version} "
                          "(arm " + arm.name + ") is needed to render it", file=sys.stderr)
                    return 2
                renderers[arm.name] = _file_renderer(file, exp.prompt, arm.version, args.max_new_tokens)
            else:
                file = per_arm.get(arm.name) or every
                renderers[arm.name] = (_file_renderer(file, None, None, args.max_new_tokens) if file
                                       else _raw_renderer(args.max_new_tokens))
    except (OSError, ValueError) as exc:
        print(f"error: --prompt-file: {exc}", file=sys.stderr)
        return 2
    server = None
    try:
        try:
            llms, server, where = _replay_models(args, env, exp)
        except (RuntimeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        arms = [ReplayArm(a.name, llms[a.name], renderers[a.name],
                          {"arm": a.name, "experiment": args.name, **({"variant": a.variant} if a.variant else {})})
                for a in exp.arms]
        print(f"Replaying {len(requests)} request(s) to {len(arms)} arms on {where} ...", file=sys.stderr, flush=True)
        records, failures = replay(requests, arms)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    for failure in failures:
        print(f"warning: {failure}", file=sys.stderr)
    scored = score(records, list(exp.metrics))
    if args.answers:
        with open(args.answers, "w", encoding="utf-8") as handle:
            for arm_records in scored.values():
                for record in arm_records:
                    handle.write(json.dumps(record, sort_keys=True) + "\n")
    verdict = judge(args.name, scored, list(exp.metrics), control=exp.arms[0].name,
                    min_samples=args.min_samples or exp.min_samples, alpha=exp.alpha)
    verdict.notes.append(f"replay of {len(requests)} request(s) from {path} on {where}: offline, no user saw these answers")
    if problems or failures:
        verdict.notes.append(f"{len(problems)} unusable request line(s), {len(failures)} failed answer(s)")
    return _finish(args, env, exp, verdict, scored)


def _replay_models(args: argparse.Namespace, env: Any, exp: Any) -> tuple[dict[str, Any], Any, str]:
    """(an LLM client per arm, the local server started here or None, where the answers come from)."""
    import boto3
    from botocore.config import Config

    from lambdas.runtime.rag.llm import SageMakerLlm

    if args.local:
        server, url = None, args.endpoint_url
        if not url:
            from lambdas.runtime.inference.local_model import ModelNotInstalled, cached_model_ready, load_local_model
            from llmops.cli.local_serve import model_cache_dir, start_server

            cache = model_cache_dir()
            if not cached_model_ready(cache):
                print(f"Converting the model once into {cache} (about a minute) ...", file=sys.stderr, flush=True)
            try:
                model = load_local_model(cache)
            except ModelNotInstalled as exc:
                raise RuntimeError(str(exc)) from None
            model.threads = args.threads or None
            server, _ = start_server(model)
            url = server.url
        client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local",
                              aws_secret_access_key="local", config=Config(retries={"max_attempts": 1}, read_timeout=600))
        llm = SageMakerLlm("local", container="tgi", client=client, attempts=1)
        return {a.name: llm for a in exp.arms}, server, f"the local model at {url}"
    llm_cfg = env.inference.llm
    endpoint = f"{env.name_prefix}-{llm_cfg.name}"
    container = "tgi" if llm_cfg.container in ("tgi", "tgi-neuronx") else "vllm" if llm_cfg.container == "vllm" else "djl-lmi"
    region = args.region or env.region
    if not region:
        raise ValueError(f"environments.{env.name}.region is not set; pass --region")
    client = boto3.client("sagemaker-runtime", region_name=region, config=Config(read_timeout=120))
    component = f"{endpoint}-{env.llm_variants()[0].name}" if llm_cfg.scaling.mode == "scale-to-zero" else None
    llms = {}
    for arm in exp.arms:
        llms[arm.name] = SageMakerLlm(endpoint, container=container, client=client, inference_component=component,
                                      target_variant=arm.variant if exp.kind == "model-ab" else None)
    return llms, None, f"endpoint {endpoint}"
