"""Two ``llmops local`` processes at once share one embedded server safely (leases + lock).

Each holder process opens ``LocalRag`` (the object both local commands run inside), reports the
server's port, and waits for a line on stdin before it queries and leaves; a real
``llmops local ask`` runs in between. Without the leases the first process to leave stopped the
server under the other ("terminating connection due to administrator command").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("local_shared_server")]

HOLDER = r"""
import sys
from llmops.cli.local_rag import LocalRag

with LocalRag() as rag:
    print(json.dumps({"port": rag.postgres.running_port(), "count": rag.store.count()}), flush=True)
    sys.stdin.readline()  # hold the server until told to go on
    print(json.dumps({"count": rag.store.count()}), flush=True)
"""


def _env(state: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_PROVIDER", "PROMPT_TABLE_NAME")}
    return {**env, "LLMOPS_HOME": str(state), "PYTHONPATH": str(REPO_ROOT), "LLMOPS_LOCAL_MODEL": "extractive"}


def _holder(state: Path) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, "-c", "import json\n" + HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env(state), cwd=REPO_ROOT)
    line = process.stdout.readline()
    assert line, process.stderr.read()
    return process, json.loads(line)


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate("go\n", timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def state():
    root = Path(tempfile.mkdtemp(prefix="llmops-shared-"))  # /tmp, mode 0755: the server user can enter it
    root.chmod(0o755)
    yield root / "state"
    subprocess.run([sys.executable, "-c", "from llmops.cli.local_rag import LocalRag\nLocalRag().postgres.stop()"],
                   env=_env(root / "state"), cwd=REPO_ROOT, check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def _server_running(state: Path) -> bool:
    from lambdas.runtime.rag.local_postgres import LocalPostgres

    return LocalPostgres(state / "postgres").running_port() is not None


def test_the_first_process_leaving_does_not_stop_the_server_under_the_second(state):
    first, opened = _holder(state)  # starts the server
    second, joined = _holder(state)  # joins it
    assert joined["port"] == opened["port"]
    assert _finish(first) == {"count": 0}  # the starter leaves first...
    assert _server_running(state)
    assert _finish(second) == {"count": 0}  # ...and the other still queries
    assert not _server_running(state)  # the last one out stopped it


def test_a_local_ask_in_a_second_terminal_leaves_the_first_ones_server_alone(state):
    holder, opened = _holder(state)
    ask = subprocess.run([sys.executable, "-c", "import sys; from llmops.cli import main; sys.exit(main(sys.argv[1:]))",
                          "local", "ask", "anything?"], capture_output=True, text=True,
                         env=_env(state), cwd=REPO_ROOT, timeout=300)
    assert ask.returncode == 1 and "nothing is indexed yet" in ask.stderr, ask.stderr  # it ran against the shared server
    assert "Traceback" not in ask.stderr
    assert _server_running(state)
    assert _finish(holder) == {"count": 0}
    assert not _server_running(state)


def test_a_crashed_process_does_not_keep_the_server_up(state):
    holder, _ = _holder(state)
    holder.kill()  # no chance to leave: its lease stays behind
    holder.wait()
    survivor, _ = _holder(state)
    assert _finish(survivor) == {"count": 0}
    assert not _server_running(state)
