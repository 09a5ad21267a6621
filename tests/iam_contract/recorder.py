"""A pytest plugin that records every AWS API call made while tests run, per Lambda function folder.

Loaded with ``-p tests.iam_contract.recorder`` and ``IAM_CONTRACT_RECORD=<file>``; each call made
for a Lambda function (see ``_functions_on_stack``) is written as one JSON line: the function folders,
the botocore service, its signing name, the operation, the request parameters and the environment
variables the function saw (to map test resource names onto the template's).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any

import botocore.client

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = REPO_ROOT / "lambdas"
_original_create_client = botocore.client.ClientCreator.create_client
_records: list[dict[str, Any]] = []


# (runtime module file, function or Class.method qualname) -> the function folders whose handler calls it.
_entry_points: dict[tuple[str, str], set[str]] = {}


def _scan_handlers() -> None:
    """Which runtime functions each handler calls, so tests of those functions count for it."""
    for handler in sorted(LAMBDAS.glob("*/handler.py")):
        folder = handler.parent.name
        tree = ast.parse(handler.read_text(encoding="utf-8"))
        modules: dict[str, Path] = {}  # local alias -> runtime module file
        names: dict[str, tuple[Path, str]] = {}  # local name -> (module file, attribute)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lambdas.runtime"):
                base = REPO_ROOT.joinpath(*node.module.split("."))
                for alias in node.names:
                    submodule = base / f"{alias.name}.py"
                    if submodule.is_file():
                        modules[alias.asname or alias.name] = submodule
                    else:
                        names[alias.asname or alias.name] = (base.with_suffix(".py") if base.with_suffix(".py").is_file()
                                                             else base / "__init__.py", alias.name)
        used: set[tuple[Path, str]] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                used.add((modules[node.value.id], node.attr))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
                file, cls = names[node.value.id]
                used.add((file, f"{cls}.{node.attr}"))
            elif isinstance(node, ast.Name) and node.id in names:
                used.add(names[node.id])
        for file, qualname in used:
            _entry_points.setdefault((str(file), qualname), set()).add(folder)


TESTS = REPO_ROOT / "tests" / "lambdas"


def _functions_on_stack() -> list[str]:
    """The function folder(s) this call is made for.

    The nearest ``lambdas/<folder>/handler.py`` frame decides; without one, the outermost frame
    of a runtime function some handler calls (a test calling ``workflow.publish`` directly
    exercises the publish function's code path), counted only for the handlers of the test's own
    capability (``tests/lambdas/<capability>/``): a data-prep test of ``publish_dataset_version``
    is no call of ``human_review_results``, which bundles data prep and calls it for its own
    dataset (its own tests, through its handler, record those calls).
    """
    frame = sys._getframe(2)
    entry: set[str] = set()
    capability = None
    while frame is not None:
        code = frame.f_code
        path = Path(code.co_filename)
        if path.name == "handler.py" and path.parent.parent == LAMBDAS:
            return [path.parent.name]
        if path.is_relative_to(TESTS) and len(path.relative_to(TESTS).parts) > 1:
            capability = path.relative_to(TESTS).parts[0]
        qualname = getattr(code, "co_qualname", code.co_name)
        folders = _entry_points.get((code.co_filename, qualname))
        if folders:
            entry = folders
        frame = frame.f_back
    if capability is None:
        return sorted(entry)
    # Another capability's test of a shared runtime function is no call of this capability's functions.
    return sorted(f for f in entry if f.startswith(f"{capability}_"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return f"<{type(value).__name__}>"  # bodies, streams, datetimes: never part of the resource


def _record(params: dict[str, Any], model: Any, **_: Any) -> None:
    functions = _functions_on_stack()
    if not functions:
        return
    service = model.service_model
    _records.append({
        "functions": functions,
        "service": service.service_name,
        "signing_name": service.signing_name,
        "prefix": service.metadata.get("signingName") or service.endpoint_prefix,
        "operation": model.name,
        "params": _jsonable({k: v for k, v in params.items() if not isinstance(v, (bytes, bytearray))}),
        "environ": {k: v for k, v in os.environ.items() if k.isupper() and not k.startswith(("AWS_", "PYTEST", "PYTHON"))},
    })


def _create_client(self, *args: Any, **kwargs: Any):
    client = _original_create_client(self, *args, **kwargs)
    # before-parameter-build sees the caller's parameters, before botocore serializes them.
    client.meta.events.register("before-parameter-build", _record)
    return client


def pytest_configure(config) -> None:
    _scan_handlers()
    botocore.client.ClientCreator.create_client = _create_client


def pytest_unconfigure(config) -> None:
    botocore.client.ClientCreator.create_client = _original_create_client
    target = os.environ.get("IAM_CONTRACT_RECORD")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            for record in _records:
                out.write(json.dumps(record, sort_keys=True) + "\n")
