"""LambdaBundle: what goes into a function's package, and its hash."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmops.constructs.core.lambda_bundle import LambdaBundle, directory_size


def test_bundle_holds_only_the_function_and_its_runtime_packages(scratch_repo, tmp_path):
    bundle = LambdaBundle(entry="hello", runtime_packages=("greeting",), root=scratch_repo)
    out = bundle.build(tmp_path / "out")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "lambdas/__init__.py",
        "lambdas/hello/handler.py",
        "lambdas/runtime/__init__.py",
        "lambdas/runtime/greeting/__init__.py",
        "lambdas/runtime/observability.py",
    ]
    assert directory_size(out) > 0
    # The bundle imports and runs as Lambda would run it: from the bundle root alone.
    result = subprocess.run(
        [sys.executable, "-c", "from lambdas.hello.handler import handler; print(handler({'name': 'ops'}, None))"],
        cwd=out, capture_output=True, text=True, env={"PYTHONPATH": str(out)},
    )
    assert result.stdout.strip() == "hello ops", result.stderr


def test_hash_changes_with_code_and_requirements_only(scratch_repo):
    bundle = LambdaBundle(entry="hello", runtime_packages=("greeting",), root=scratch_repo)
    first = bundle.asset_hash()
    assert bundle.asset_hash() == first
    (scratch_repo / "lambdas" / "runtime" / "other" / "__init__.py").write_text("BIG = 2\n")
    assert bundle.asset_hash() == first  # a package the function does not ship
    (scratch_repo / "lambdas" / "runtime" / "greeting" / "__init__.py").write_text("def greet(n):\n    return n\n")
    second = bundle.asset_hash()
    assert second != first
    (scratch_repo / "lambdas" / "hello" / "requirements.txt").write_text("six==1.17.0\n")
    assert bundle.asset_hash() != second
    assert bundle.requirements() == ["six==1.17.0"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"entry": "missing"}, "entry: lambdas/missing/handler.py does not exist"),
        ({"entry": "hello", "runtime_packages": ("nope",)}, "runtime_packages: lambdas/runtime/nope does not exist"),
        ({"entry": "hello", "architecture": "mips"}, "architecture: 'mips'; allowed: ['arm64', 'x86_64']"),
        ({"entry": "hello", "extra_files": ("prompts",)}, "extra_files: prompts does not exist"),
    ],
)
def test_bad_bundle_props_name_the_prop(scratch_repo, kwargs, message):
    with pytest.raises(ValueError) as err:
        LambdaBundle(root=scratch_repo, **kwargs)
    assert message in str(err.value)


def test_prune_tests_leaves_the_dependencies_test_suites_out(scratch_repo, tmp_path, monkeypatch):
    deps = tmp_path / "deps"
    (deps / "scipy" / "stats" / "tests").mkdir(parents=True)
    (deps / "scipy" / "stats" / "__init__.py").write_text("")
    (deps / "scipy" / "stats" / "tests" / "test_ks.py").write_text("x = 1\n")
    monkeypatch.setattr(LambdaBundle, "install_dependencies", lambda self: deps)
    kept = LambdaBundle(entry="hello", root=scratch_repo).build(tmp_path / "kept")
    pruned_bundle = LambdaBundle(entry="hello", root=scratch_repo, prune_tests=True)
    pruned = pruned_bundle.build(tmp_path / "pruned")
    assert (kept / "scipy" / "stats" / "tests" / "test_ks.py").is_file()
    assert (pruned / "scipy" / "stats" / "__init__.py").is_file() and not (pruned / "scipy" / "stats" / "tests").exists()
    assert pruned_bundle.asset_hash() != LambdaBundle(entry="hello", root=scratch_repo).asset_hash()
