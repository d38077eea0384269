"""Start the real studio (python app.py) in a subprocess on a free port, for browser and API tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    python: str | os.PathLike[str] = sys.executable,
    inherit_env: bool = True,
) -> Iterator[str]:
    """Yield the base URL of a freshly started studio; stop it afterwards.

    python: the interpreter (another venv's, for install tests); inherit_env=False starts it
    with only the studio's variables and `env`, as on a machine with nothing else set.
    """
    port = free_port()
    full_env = {
        **(os.environ if inherit_env else {}),
        "STUDIO_OUTPUTS_DIR": str(tmp / "outputs"),
        "STUDIO_USER_PRESETS_DIR": str(tmp / "user-presets"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    log = open(tmp / "app.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [str(python), str(ROOT / "app.py"), "--port", str(port)],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"app exited with {proc.returncode}:\n{(tmp / 'app.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"app did not answer in {timeout}s:\n{(tmp / 'app.log').read_text()}"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
