from __future__ import annotations

import pytest


@pytest.fixture
def scratch_repo(tmp_path):
    """A minimal repo tree with one Lambda function and a runtime package."""
    lambdas = tmp_path / "lambdas"
    (lambdas / "runtime" / "greeting").mkdir(parents=True)
    (lambdas / "runtime" / "other").mkdir(parents=True)
    (lambdas / "hello").mkdir()
    (lambdas / "__init__.py").write_text("")
    (lambdas / "runtime" / "__init__.py").write_text("")
    (lambdas / "runtime" / "observability.py").write_text("SERVICE = 'x'\n")
    (lambdas / "runtime" / "greeting" / "__init__.py").write_text("def greet(n):\n    return f'hello {n}'\n")
    (lambdas / "runtime" / "other" / "__init__.py").write_text("BIG = 1\n")
    (lambdas / "hello" / "handler.py").write_text(
        "from lambdas.runtime.greeting import greet\n\ndef handler(event, context):\n    return greet(event['name'])\n"
    )
    (lambdas / "hello" / "__pycache__").mkdir()
    (lambdas / "hello" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    return tmp_path
