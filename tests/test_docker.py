"""The Docker image, read as Docker reads it (no daemon needed), and its entrypoint run for real."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"


@dataclass
class Stage:
    name: str
    parent: str  # a base image or an earlier stage's name
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)


def read_dockerfile(path: Path = ROOT / "Dockerfile") -> list[Stage]:
    """The build stages in order, continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        word, _, args = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, parts[0]))
        else:
            stages[-1].instructions.append((word, args.strip()))
    return stages


def chain(stages: list[Stage], target: str) -> list[tuple[str, str]]:
    """Every instruction that builds the target, from its base image on."""
    by_name = {s.name: s for s in stages}
    out: list[tuple[str, str]] = []
    stage = by_name[target]
    while True:
        out = stage.instructions + out
        if stage.parent not in by_name:
            return out
        stage = by_name[stage.parent]


def env_of(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instructions:
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def installs(instructions: list[tuple[str, str]]) -> list[str]:
    """The requirements files that pip installs, in order."""
    files = []
    for word, args in instructions:
        if word == "RUN" and "pip install" in args:
            words = shlex.split(args)
            files += [words[i + 1] for i, w in enumerate(words) if w == "-r"]
    return files


def test_cpu_target_installs_the_studio_without_any_model_package():
    cpu = chain(read_dockerfile(), "cpu")
    assert installs(cpu) == ["requirements.txt"]
    text = " ".join(args for _, args in cpu)
    assert "requirements-models" not in text and "torch" not in text


def test_gpu_target_adds_the_model_packages_and_is_the_default_build():
    stages = read_dockerfile()
    assert stages[-1].name == "gpu"  # a plain `docker build .` builds the last stage
    assert installs(chain(stages, "gpu")) == ["requirements.txt", "requirements-models.txt"]


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_everything_the_studio_writes_lives_in_the_data_volume(target):
    instructions = chain(read_dockerfile(), target)
    env = env_of(instructions)
    for name in ("GRADIO_TEMP_DIR", "HF_HOME", "XDG_CACHE_HOME", "STUDIO_OUTPUTS_DIR",
                 "STUDIO_USER_PRESETS_DIR"):  # fmt: skip
        assert env.get(name, "").startswith("/data/"), f"{name}={env.get(name)!r}"
    assert ("VOLUME", '["/data"]') in instructions
    assert ("USER", "studio") in instructions
    entry = [args for word, args in instructions if word == "ENTRYPOINT"]
    assert entry and "docker-entrypoint.sh" in entry[-1]
    copied = [args for word, args in instructions if word == "COPY"]
    assert any(a.startswith("scripts/docker-entrypoint.sh ") for a in copied)


def test_docker_context_leaves_out_local_venvs_and_outputs():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".venv", ".venv-light", "outputs", ".git"):
        assert name in ignored


def _as_other_user(cmd: list[str]) -> list[str]:
    """Run cmd as a user that does not own the test folders (root may write anywhere)."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is needed to drop root for this test")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]


@pytest.fixture
def data_dir():
    """A /data stand-in that the test user cannot write, outside pytest's private tmp."""
    top = Path(tempfile.mkdtemp(prefix="studio-data-"))
    top.chmod(0o755)
    script = top / "docker-entrypoint.sh"
    shutil.copy(ENTRYPOINT, script)
    script.chmod(0o755)
    data = top / "data"
    data.mkdir()
    data.chmod(0o755 if os.geteuid() == 0 else 0o555)
    yield script, data
    data.chmod(0o755)
    shutil.rmtree(top)


def _entrypoint(script: Path, data: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "DATA_DIR": str(data),
           "HF_HOME": str(data / "hf"), "GRADIO_TEMP_DIR": str(data / "gradio-cache"),
           "STUDIO_OUTPUTS_DIR": str(data / "outputs")}  # fmt: skip
    return subprocess.run(_as_other_user(["sh", str(script), *cmd]), env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_entrypoint_refuses_an_unwritable_data_folder_in_one_sentence(data_dir):
    script, data = data_dir
    result = _entrypoint(script, data, "echo", "started")
    assert result.returncode == 1
    assert "started" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {data} is not writable by the container's user")
    assert '--user "$(id -u):$(id -g)"' in lines[0]


def test_entrypoint_makes_the_folders_then_runs_the_studio(data_dir):
    script, data = data_dir
    if os.geteuid() == 0:
        os.chown(data, 65534, 65534)
    else:
        data.chmod(0o755)
    result = _entrypoint(script, data, "sh", "-c", 'echo "started in $HOME"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"started in {data / 'home'}"
    for sub in ("hf", "gradio-cache", "outputs"):
        assert (data / sub).is_dir()
    assert not list(data.glob(".write-test*"))
