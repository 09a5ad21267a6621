"""``llmops release build|check`` and ``llmops delivery doctor|gate``.

``release build --from dev`` is the one command here that needs AWS credentials (of the source
account); everything else runs offline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def register(registry: dict) -> None:
    release = registry["root"].add_parser("release", help="build and check the release manifest (release.json)")
    sub = release.add_subparsers(dest="command", metavar="COMMAND", required=True)
    build = sub.add_parser("build", help="write release.json from the source account (needs its AWS credentials)")
    build.add_argument("--from", dest="source", required=True, help="the environment to read (e.g. dev)")
    build.add_argument("--name", default=None, help="release name (default: the date and time)")
    build.add_argument("--out", default="release.json")
    build.add_argument("--region", default=None, help="default: the environment's region")
    build.set_defaults(func=run_build)
    check = sub.add_parser("check", help="validate a release manifest offline against the config and prompts/")
    check.add_argument("manifest", nargs="?", default="release.json")
    check.add_argument("--env", default=None, help="also check it can be deployed to this environment")
    check.set_defaults(func=run_check)

    delivery = registry["root"].add_parser("delivery", help="the CI/CD pipeline: bootstrap commands and stage gates")
    dsub = delivery.add_subparsers(dest="command", metavar="COMMAND", required=True)
    doctor = dsub.add_parser("doctor", help="print the cdk bootstrap commands every account needs (offline)")
    doctor.set_defaults(func=run_doctor)
    gate = dsub.add_parser("gate", help="the automatic checks after a stage is deployed")
    gate.add_argument("--env", required=True)
    gate.add_argument("--release", default="release.json")
    gate.add_argument("--offline", action="store_true", help="only the offline checks (no experiment verdicts)")
    gate.add_argument("--role-arn", default=os.environ.get("LLMOPS_GATE_ROLE_ARN"),
                      help="the environment's gate role to assume (default $LLMOPS_GATE_ROLE_ARN; none: current credentials)")
    gate.add_argument("--data-bucket", default=None, help="default: <name_prefix>-data-<account>-<region>")
    gate.set_defaults(func=run_gate)
    smoke = dsub.add_parser("smoke", help="post-deploy smoke test: a signed POST /query and a tiny request per endpoint")
    smoke.add_argument("--env", required=True)
    smoke.add_argument("--query-url", default=os.environ.get("QUERY_URL"), help="default $QUERY_URL (a stack output)")
    smoke.add_argument("--llm-endpoint", default=os.environ.get("LLM_ENDPOINT"), help="default $LLM_ENDPOINT")
    smoke.add_argument("--embeddings-endpoint", default=os.environ.get("EMBEDDINGS_ENDPOINT"), help="default $EMBEDDINGS_ENDPOINT")
    smoke.add_argument("--role-arn", default=os.environ.get("LLMOPS_GATE_ROLE_ARN"),
                       help="the environment's gate role to assume (default $LLMOPS_GATE_ROLE_ARN)")
    smoke.add_argument("--region", default=None, help="default: the environment's region")
    smoke.add_argument("--runtime-endpoint-url", default=None, help="SageMaker Runtime URL (a local serve, for tests)")
    smoke.add_argument("--attempts", type=int, default=None, help="default delivery.smoke_attempts of the environment")
    smoke.add_argument("--interval", type=float, default=None, help="seconds between attempts (default delivery.smoke_interval_seconds)")
    smoke.set_defaults(func=run_smoke)
    promote = dsub.add_parser("promote-model", help="copy the release's model packages into the environment's registry "
                                                    "(delivery.model_promotion: copy)")
    promote.add_argument("--env", required=True)
    promote.add_argument("--release", default="release.json")
    promote.add_argument("--role-arn", default=os.environ.get("LLMOPS_PROMOTE_ROLE_ARN"),
                         help="the environment's promote role to assume (default $LLMOPS_PROMOTE_ROLE_ARN)")
    promote.add_argument("--artifacts-bucket", default=None, help="default: <name_prefix>-artifacts-<account>-<region>")
    promote.set_defaults(func=run_promote_model)


def _prompt_hashes(prompts_dir: Path) -> dict[str, str]:
    from lambdas.runtime.prompt_catalog.files import load_prompt_dir

    result = load_prompt_dir(prompts_dir)
    return {f.prompt_id: f.content.content_hash() for f in result.files}


def _config():
    from llmops.config import load_config

    return load_config()


def run_check(args: argparse.Namespace) -> int:
    from llmops.config import REPO_ROOT, ConfigError
    from llmops.delivery.release import ReleaseError, deployment_problems, load_release

    try:
        config = _config()
        manifest = load_release(args.manifest)
        if args.env:
            config.get(args.env)
        problems = deployment_problems(manifest, config, prompt_hashes=_prompt_hashes(REPO_ROOT / "prompts"))
        if args.env:
            from llmops.delivery.release import environment_problems

            problems += environment_problems(manifest, config.get(args.env))
    except (ConfigError, ReleaseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if problems:
        print("error: " + str(ReleaseError(problems)), file=sys.stderr)
        return 1
    models = ", ".join(f"{u} v{p.version}" for u, p in manifest.models.items()) or "none"
    prompts = sum(len(a) for a in manifest.prompts.values())
    print(f"release {manifest.name} from {manifest.source_environment}: ok (models: {models}; {prompts} prompt alias pins)")
    return 0


def run_build(args: argparse.Namespace) -> int:
    import datetime as dt

    import boto3

    from llmops.config import ConfigError
    from llmops.delivery.release import ReleaseError, parse_release
    from lambdas.runtime.delivery.release_build import ReleaseBuildError, build_release
    from lambdas.runtime.prompt_catalog.store import PromptCatalogStore

    try:
        config = _config()
        env = config.get(args.source)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    region = args.region or env.region
    session = boto3.Session(region_name=region)
    groups = {u: f"{env.name_prefix}-{u}" for u in env.fine_tuning.use_cases} if env.capabilities.fine_tuning else {}
    store = None
    aliases: dict[str, list[str]] = {}
    if env.capabilities.prompt_catalog:
        from lambdas.runtime.prompt_catalog.files import load_prompt_dir
        from llmops.config import REPO_ROOT

        from llmops.stacks.prompt_catalog import table_name_for

        store = PromptCatalogStore(
            table_name_for(env), dynamodb=session.client("dynamodb"), s3=session.client("s3"),
            overflow_bucket=f"{env.name_prefix}-data-{session.client('sts').get_caller_identity()['Account']}-{region}",
        )
        aliases = {f.prompt_id: list(f.aliases) for f in load_prompt_dir(REPO_ROOT / "prompts").files if f.aliases}
    embedding = None
    if env.capabilities.rag:
        embedding = {"model": env.inference.embeddings.model_id if env.rag.embedding_provider == "sagemaker"
                     else env.rag.embedding_model_id, "dimension": env.vector_store.dimension, "index": f"{env.name_prefix}-rag"}
    from llmops.delivery.release import served_images

    images = served_images(env)  # the tags the source environment serves (the committed image table)
    name = args.name or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    try:
        manifest, warnings = build_release(
            name=name, source_environment=env.name, sagemaker=session.client("sagemaker"), s3=session.client("s3"),
            prompt_store=store, package_groups=groups, prompt_aliases=aliases, embedding=embedding,
            images=images,
        )
        parse_release(manifest)
    except (ReleaseBuildError, ReleaseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    Path(args.out).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.out}: release {name} from {env.name}")
    return 0


def bootstrap_commands(config) -> list[str]:
    """One ``cdk bootstrap`` per target account, trusting the tooling account (and the tooling one itself)."""
    delivery = config.delivery
    if delivery is None:
        raise ValueError("delivery: no delivery section in the config")
    policy = "arn:aws:iam::aws:policy/AdministratorAccess"
    lines = [f"npx cdk bootstrap aws://{delivery.account}/{delivery.region}   # the tooling account, once"]
    for name in delivery.stages:
        env = config.get(name)
        account = env.account or delivery.account
        region = env.region or delivery.region
        lines.append(
            f"npx cdk bootstrap aws://{account}/{region} --trust {delivery.account} "
            f"--trust-for-lookup {delivery.account} --cloudformation-execution-policies {policy}   # {name}"
        )
    return lines


def run_doctor(args: argparse.Namespace) -> int:
    from llmops.config import ConfigError

    try:
        config = _config()
        lines = bootstrap_commands(config)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    delivery = config.delivery
    print("# Bootstrap every account the pipeline deploys to, trusting the tooling account:")
    print("\n".join(lines))
    print("# Replace AdministratorAccess with a narrower execution policy where your organisation requires it.")
    print(f"# Then deploy the pipeline once: npx cdk deploy Delivery (stack {delivery.name_prefix}-pipeline); "
          "it updates itself from the repository after that.")
    if delivery.example:
        print("# warning: delivery.example is true: the accounts are examples and the pipeline template refuses to deploy.")
    return 0


def run_gate(args: argparse.Namespace) -> int:
    """Checks after a stage: the release still deploys to this environment and its models meet the thresholds."""
    from llmops.config import ConfigError
    from llmops.delivery.release import ReleaseError, deployment_problems, load_release

    try:
        config = _config()
        env = config.get(args.env)
        manifest = load_release(args.release)
    except (ConfigError, ReleaseError) as err:
        print(f"gate {args.env}: error: {err}", file=sys.stderr)
        return 2
    problems = deployment_problems(manifest, config)
    if problems:
        print(f"gate {env.name}: stopped:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"gate {env.name}: release {manifest.name} passed (thresholds, approvals, embedding dimension)")
    if args.offline or not env.experiments:
        return 0
    return _verdict_gate(args, env)


def _session(role_arn: str | None, region: str, purpose: str):
    import boto3

    session = boto3.Session(region_name=region)
    if not role_arn:
        return session
    creds = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=f"llmops-{purpose}")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=region)


def gate_role_arn(env) -> str | None:
    """The gate role the environment's stack creates (``<name_prefix>-delivery-gate``), when its account is known."""
    return f"arn:aws:iam::{env.account}:role/{env.name_prefix}-delivery-gate" if env.account else None


def _verdict_gate(args: argparse.Namespace, env) -> int:
    import datetime as dt

    from lambdas.runtime.delivery.verdict_gate import check_verdict

    region = env.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = _session(args.role_arn, region, f"gate-{env.name}")
    bucket = args.data_bucket or (f"{env.name_prefix}-data-{env.account}-{region}" if env.account else None)
    if not bucket:
        print(f"gate {env.name}: error: --data-bucket is required (the environment has no account in the config)", file=sys.stderr)
        return 2
    s3 = session.client("s3")
    failed = False
    for name, exp in sorted(env.experiments.items()):
        if exp.winner is not None:
            print(f"gate {env.name}: experiment {name}: winner {exp.winner} promoted in the config; no verdict needed")
            continue
        result = check_verdict(s3, bucket=bucket, experiment=name, control=exp.arms[0].name, metrics=list(exp.metrics),
                               max_age=dt.timedelta(hours=env.delivery.verdict_max_age_hours))
        print(f"gate {env.name}: {result.line()}", file=sys.stdout if result.passed else sys.stderr)
        failed |= not result.passed
    return 1 if failed else 0


def run_smoke(args: argparse.Namespace) -> int:
    """Signed POST /query and one request per endpoint, retried while a scaled-to-zero model starts."""
    from llmops.config import ConfigError

    try:
        env = _config().get(args.env)
    except ConfigError as err:
        print(f"smoke: error: {err}", file=sys.stderr)
        return 2
    from botocore.config import Config

    from lambdas.runtime.delivery.smoke import SmokeFailed, smoke_endpoint, smoke_query_api

    region = args.region or env.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    attempts = args.attempts or env.delivery.smoke_attempts
    interval = args.interval if args.interval is not None else env.delivery.smoke_interval_seconds
    wanted = []
    if env.capabilities.rag:
        wanted.append(("query API", args.query_url, "--query-url/$QUERY_URL"))
    if env.capabilities.inference:
        wanted.append(("LLM endpoint", args.llm_endpoint, "--llm-endpoint/$LLM_ENDPOINT"))
        if env.inference.embeddings.enabled:
            wanted.append(("embeddings endpoint", args.embeddings_endpoint, "--embeddings-endpoint/$EMBEDDINGS_ENDPOINT"))
    missing = [f"{what} ({flag})" for what, value, flag in wanted if not value]
    if missing:
        print(f"smoke {env.name}: error: not given: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        session = _session(args.role_arn, region, f"smoke-{env.name}")
        runtime = session.client("sagemaker-runtime", endpoint_url=args.runtime_endpoint_url,
                                 config=Config(retries={"max_attempts": 1}, read_timeout=120))
        checks = []
        if env.capabilities.rag:
            creds = session.get_credentials()
            if creds is None:
                raise SmokeFailed("no AWS credentials to sign the query request")
            checks.append(smoke_query_api(args.query_url, credentials=creds.get_frozen_credentials(), region=region,
                                          attempts=attempts, interval=interval))
        if env.capabilities.inference:
            variants = env.llm_variants()
            component = (f"{args.llm_endpoint}-{variants[0].name}"
                         if env.inference.llm.scaling.mode == "scale-to-zero" else None)
            checks.append(smoke_endpoint(runtime, args.llm_endpoint, variants[0].container, component=component,
                                         attempts=attempts, interval=interval))
            if env.inference.embeddings.enabled:
                checks.append(smoke_endpoint(runtime, args.embeddings_endpoint, env.inference.embeddings.container,
                                             attempts=attempts, interval=interval))
    except SmokeFailed as err:
        print(f"smoke {env.name}: FAILED: {err}", file=sys.stderr)
        return 1
    for check in checks:
        print(f"smoke {env.name}: ok: {check.name}: {check.detail} (attempt {check.attempts})")
    return 0


def run_promote_model(args: argparse.Namespace) -> int:
    """Register the release's packages, with copied artifacts, in this environment's groups (idempotent)."""
    from llmops.config import ConfigError
    from llmops.delivery.release import ReleaseError, load_release

    try:
        env = _config().get(args.env)
        manifest = load_release(args.release)
    except (ConfigError, ReleaseError) as err:
        print(f"promote-model {args.env}: error: {err}", file=sys.stderr)
        return 2
    if env.delivery.model_promotion != "copy":
        print(f"promote-model {env.name}: delivery.model_promotion is {env.delivery.model_promotion}: the endpoints deploy "
              "the source registry's packages; nothing to copy")
        return 0
    from lambdas.runtime.delivery.model_copy import ModelCopyError, copied_package_parameter, copy_model_package

    region = env.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = _session(args.role_arn, region, f"promote-{env.name}")
    account = env.account or session.client("sts").get_caller_identity()["Account"]
    bucket = args.artifacts_bucket or f"{env.name_prefix}-artifacts-{account}-{region}"
    failed = False
    for use_case, pin in sorted(manifest.models.items()):
        source_region = pin.model_package_arn.split(":")[3]
        try:
            arn, created = copy_model_package(
                source_arn=pin.model_package_arn,
                source_sagemaker=session.client("sagemaker", region_name=source_region),
                source_s3=session.client("s3", region_name=source_region),
                target_sagemaker=session.client("sagemaker"), target_s3=session.client("s3"), target_ssm=session.client("ssm"),
                target_group=f"{env.name_prefix}-{use_case}", target_bucket=bucket,  # its default encryption: this account's key
                parameter_name=copied_package_parameter(env.name_prefix, use_case, pin.model_package_arn),
            )
        except ModelCopyError as err:
            print(f"promote-model {env.name}: {use_case}: FAILED: {err}", file=sys.stderr)
            failed = True
            continue
        print(f"promote-model {env.name}: {use_case}: {'registered' if created else 'already copied'} {arn} "
              f"(from {pin.model_package_arn})")
    return 1 if failed else 0
