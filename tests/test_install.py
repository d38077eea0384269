"""Installing the studio: the first command is light (no torch, no CUDA), the model path is one more.

Three layers: the model path without the model packages (simulated in this process), what
pip would install from each requirements file for a user's machine (needs the package
registry), and a real venv made from requirements.txt alone (STUDIO_LIGHT_VENV, made by
.ci/run) that generates clips and serves the studio.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from studio.__main__ import main as cli
from studio.errors import BackendError
from studio.models import ModelManager, backend_markdown, download_checkpoint, load_catalog
from studio.motion.depth import HeuristicDepth, get_depth_source
from tests.appserver import running_app
from tests.studio_api import FAST, client, submit

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
NEED_REGISTRY = IN_CI or os.environ.get("STUDIO_REQUIRE_NETWORK") == "1"
MODEL_COMMAND = ".venv/bin/pip install -r requirements-models.txt"
NEEDS_MODELS = (
    f"This model needs the model packages: run `{MODEL_COMMAND}`, then restart the studio."
)
MODEL_PACKAGES = ("torch", "diffusers", "transformers", "accelerate")
HEAVY_PREFIXES = ("nvidia-", "torch", "triton", "cuda")  # the CUDA build and what it pulls


# --------------------------------------------------------------- without the model packages


@pytest.fixture
def no_model_packages(monkeypatch, tmp_path):
    """This process as if only requirements.txt were installed: the model packages cannot be found."""
    for name in MODEL_PACKAGES:
        monkeypatch.setitem(sys.modules, name, None)  # find_spec says None, import fails
    # No backend was built before this test: these settings (a fresh outputs folder) get a
    # registry of their own (studio.backends.registry).
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("STUDIO_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("STUDIO_USER_PRESETS_DIR", str(tmp_path / "presets"))


def test_generating_with_a_model_without_its_packages_names_the_install_command(
    no_model_packages, tmp_path, samples, capsys
):
    out = tmp_path / "clips"
    code = cli(["generate", str(samples["product"]), "--preset", "product/slow-push-in",
                "--backend", "svd-xt", "--out", str(out), "-q"])  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {NEEDS_MODELS}"]
    assert not out.exists() or not any(out.iterdir())


def test_picking_a_model_in_the_studio_without_its_packages_says_what_to_install(
    no_model_packages,
):
    info = backend_markdown("ltx-video", ModelManager(load_catalog()))
    assert NEEDS_MODELS in info
    assert backend_markdown("engine") == ""


def test_downloading_a_model_without_its_packages_fetches_nothing(no_model_packages):
    calls = []
    manager = ModelManager(load_catalog(), downloader=lambda **kw: calls.append(kw))
    with pytest.raises(BackendError) as info:
        download_checkpoint("svd-xt", manager)
    assert str(info.value) == NEEDS_MODELS
    assert calls == []
    with pytest.raises(BackendError, match="requirements-models.txt"):
        manager.get(manager.catalog["svd-xt"])


def test_engine_depth_falls_back_to_the_heuristic_without_the_model_packages(no_model_packages):
    assert isinstance(get_depth_source("auto"), HeuristicDepth)
    with pytest.raises(BackendError, match="Depth Anything V2 needs the model packages"):
        get_depth_source("depth-anything")


# --------------------------------------------------------------- what pip installs for a user


def _pip(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """pip as on a user's machine: the default index only, none of this machine's pip settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # also skips the global and site config files
    return subprocess.run([sys.executable, "-m", "pip", *args, "--isolated",
                           "--disable-pip-version-check"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _would_install(requirements: str, tmp_path: Path, *pip_args: str) -> dict[str, dict]:
    """{name: metadata} of what `pip install -r requirements` would install in a fresh venv."""
    if not NEED_REGISTRY:
        probe = _pip("index", "versions", "pip", "--retries", "0", "--timeout", "10", timeout=60)
        if probe.returncode != 0:
            pytest.skip(
                "the package registry cannot be reached (STUDIO_REQUIRE_NETWORK=1 fails instead)"
            )
    report = tmp_path / "report.json"
    result = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report",
                  str(report), "-r", requirements, *pip_args, timeout=900)  # fmt: skip
    assert result.returncode == 0, f"pip could not resolve {requirements}:\n{result.stderr[-3000:]}"
    installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"] for i in installs}


@pytest.mark.slow
def test_first_install_command_pulls_no_torch_and_no_cuda(tmp_path):
    names = _would_install("requirements.txt", tmp_path)
    assert {"gradio", "opencv-python-headless", "imageio-ffmpeg", "numpy"} <= set(names)
    assert sorted(n for n in names if n.startswith(HEAVY_PREFIXES)) == []
    assert not set(names) & {"diffusers", "transformers", "accelerate"}


@pytest.mark.slow
def test_model_packages_are_one_install_command_with_the_cuda_13_build_of_torch(tmp_path):
    # --no-deps: every line of the file (and of requirements.txt) has a release for this
    # machine, without fetching the CUDA libraries (3 GB) just to look at them. That the whole
    # set resolves together is what installing requirements-dev.txt shows.
    names = _would_install("requirements-models.txt", tmp_path, "--no-deps")
    assert names["torch"]["version"] == "2.13.0"
    assert {"diffusers", "transformers", "accelerate", "ftfy", "gradio"} <= set(names)
    if sys.platform == "linux" and platform.machine() == "x86_64":
        # The README names the NVIDIA driver this needs (580+, for CUDA 13.x).
        cuda = [r for r in names["torch"]["requires_dist"] if r.startswith("cuda-toolkit")]
        assert cuda and "==13.0." in cuda[0], cuda


def _lines(name: str) -> list[str]:
    """The requirement lines of a requirements file, without comments."""
    text = (ROOT / name).read_text()
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def test_dev_requirements_include_the_model_packages_which_include_the_studio():
    assert "-r requirements-models.txt" in _lines("requirements-dev.txt")
    assert "-r requirements.txt" in _lines("requirements-models.txt")
    light = " ".join(_lines("requirements.txt")).lower()
    for name in MODEL_PACKAGES:
        assert name not in light


# --------------------------------------------------------------- a real light install


@pytest.fixture(scope="module")
def light_python() -> Path:
    """The python of a venv made with `pip install -r requirements.txt` and nothing else."""
    venv = os.environ.get("STUDIO_LIGHT_VENV")
    if not venv:
        if IN_CI:
            pytest.fail("STUDIO_LIGHT_VENV is not set: .ci/run must build the light venv.")
        pytest.skip("STUDIO_LIGHT_VENV is not set (bash .ci/run builds and sets it)")
    python = Path(venv).resolve() / "bin" / "python"
    assert python.is_file(), f"no python in STUDIO_LIGHT_VENV={venv}"
    return python


def _light_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "HF_HOME": str(tmp / "hf"),
            "HF_HUB_OFFLINE": "1", "STUDIO_USER_PRESETS_DIR": str(tmp / "presets"),
            "STUDIO_OUTPUTS_DIR": str(tmp / "outputs"), "GRADIO_TEMP_DIR": str(tmp / "gradio"),
            "GRADIO_ANALYTICS_ENABLED": "False", **extra}  # fmt: skip


def _run_light(python: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], cwd=ROOT, env=_light_env(tmp),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_light_install_has_no_torch_or_diffusers(light_python, tmp_path):
    code = f"import importlib.util as u; print([m for m in {MODEL_PACKAGES!r} if u.find_spec(m)])"
    result = _run_light(light_python, "-c", code, tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for module in ("torch", "diffusers"):
        result = _run_light(light_python, "-c", f"import {module}", tmp=tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_light_install_generates_clips_with_the_engine(light_python, tmp_path):
    out = tmp_path / "clips"
    photo = ROOT / "assets" / "examples" / "coffee.png"
    result = _run_light(light_python, "-m", "studio", "generate", str(photo), "--preset",
                        "product/slow-push-in", "--out", str(out), "--size", "128x128",
                        "--frames", "8", "-q", tmp=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    clips = sorted(out.rglob("*.mp4"))
    assert len(clips) == 4
    assert all(c.stat().st_size > 1000 and str(c) in result.stdout for c in clips)


def test_light_install_names_the_command_for_a_model_backend(light_python, tmp_path):
    photo = ROOT / "assets" / "examples" / "coffee.png"
    out = tmp_path / "clips"
    result = _run_light(light_python, "-m", "studio", "generate", str(photo), "--preset",
                        "product/slow-push-in", "--backend", "svd-xt", "--out", str(out),
                        tmp=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {NEEDS_MODELS}"]
    result = _run_light(light_python, "-m", "studio", "models", "--download", "svd-xt",
                        tmp=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {NEEDS_MODELS}"


def test_light_install_starts_the_studio(light_python, tmp_path, samples):
    env = _light_env(tmp_path, **FAST)
    with running_app(tmp_path, env=env, timeout=120, python=light_python, inherit_env=False) as url:
        with pytest.raises(AppError) as info:
            submit(client(url), samples["product"], backend="svd-xt").result(timeout=60)
        assert str(info.value) == NEEDS_MODELS
