"""Starting the studio as a user does (python app.py): what it prints, and a busy port refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.appserver import running_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def start(tmp: Path, *command: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "STUDIO_OUTPUTS_DIR": str(tmp / "outputs"),
        "STUDIO_USER_PRESETS_DIR": str(tmp / "user-presets"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("STUDIO_PORT", None)
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def assert_port_refusal(result: subprocess.CompletedProcess, port: int) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: Port {port} on 127.0.0.1 is already in use; "
        f"start with --port {port + 1} (or set STUDIO_PORT)."
    ], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_busy_port_is_refused_in_one_sentence_that_names_the_flag(tmp_path, busy_port):
    result = start(tmp_path, "app.py", "--port", str(busy_port))
    assert_port_refusal(result, busy_port)
    assert not (tmp_path / "outputs").exists()  # refused before anything else started


def test_port_taken_just_before_gradio_binds_gives_the_same_sentence(tmp_path, busy_port):
    # The studio's own check passes (the port was free a moment ago), so Gradio meets it busy.
    script = (
        "import sys, app; app._cannot_listen = lambda host, port: None; "
        f"app.main(['--port', '{busy_port}'])"
    )
    result = start(tmp_path, "-c", script)
    assert_port_refusal(result, busy_port)


def test_start_up_prints_the_address_and_not_gradios_share_hint(tmp_path):
    log = tmp_path / "app.log"
    with running_app(tmp_path, env={"PYTHONUNBUFFERED": "1"}) as url:
        # The address is printed once the server is up; give the print a moment to land.
        deadline = time.monotonic() + 20
        while f"Motion Studio is running at {url}\n" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    text = log.read_text()
    assert "share=True" not in text and "public link" not in text, text
    assert "Traceback" not in text
