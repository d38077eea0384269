"""Ray is optional: without --ray nothing imports it, and without Ray installed --ray says how to get it."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import ROOT

# Everything the CLI and the studio import on their way to work, without --ray.
START_PATHS = """
import sys
import app, studio.__main__ as cli
from studio.settings import Settings
from studio.ui import build_ui
from studio.serve.queueing import JobRunner
from studio.shootout.run import run_shootout
import studio.cluster
cli.build_parser().parse_args(["generate", "x.jpg", "--preset", "p", "--out", "o"])
build_ui(Settings(outputs_dir=__import__("pathlib").Path(sys.argv[1])))
print("ray" in sys.modules)
"""


def test_the_cli_and_the_studio_start_without_importing_ray(tmp_path):
    run = subprocess.run([sys.executable, "-c", START_PATHS, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "False"


# As if Ray were not installed: a None entry in sys.modules makes `import ray` fail.
WITHOUT_RAY = """
import sys
sys.modules["ray"] = None
from studio.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_ray_flag_without_ray_installed_says_how_to_install_it(tmp_path, samples):
    args = ["shootout", str(samples["product"]), "--presets", "product/slow-push-in",
            "--out", str(tmp_path / "out"), "--ray", "127.0.0.1:6379"]  # fmt: skip
    run = subprocess.run([sys.executable, "-c", WITHOUT_RAY, *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "error: Ray is not installed here; install it with "
        "'pip install -r requirements-ray.txt', or run without --ray."
    )
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_an_unreachable_cluster_is_said_at_once_and_nothing_is_written(tmp_path, samples):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["-m", "studio", "generate", str(samples["product"]), "--preset",
            "product/slow-push-in", "--out", str(tmp_path / "out"), "--ray", f"127.0.0.1:{port}"]  # fmt: skip
    run = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"error: Cannot reach the Ray cluster at 127.0.0.1:{port}; check that the cluster is "
        "running and that the address (its head node's host:port) is right."
    )
    assert not (tmp_path / "out").exists()
