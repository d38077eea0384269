"""The command line as a user runs it: real processes, real files, one 'error:' line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

from studio.encode import probe_mp4

ROOT = Path(__file__).resolve().parent.parent


def studio(*args: str, tmp: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "STUDIO_USER_PRESETS_DIR": str(tmp / "none")}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_error_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_presets_prints_one_id_per_line_then_its_title(tmp_path):
    result = studio("presets", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) >= 15
    first_id, first_title = lines[0].split(maxsplit=1)
    assert first_id == "product/slow-push-in" and first_title == "Slow push-in"
    assert all("/" in line.split()[0] for line in lines)


def test_generate_writes_clips_and_manifest_and_prints_their_paths(tmp_path, samples):
    out = tmp_path / "out"
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/slow-push-in", "--variants", "2",
        "--seed", "11", "--size", "160x96", "--frames", "10", "--fps", "12", "--out", str(out), "-q",
        tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = [Path(line) for line in result.stdout.split()]
    clips = [p for p in printed if p.suffix == ".mp4"]
    assert len(clips) == 2 and printed[-1] == out / "manifest.json"
    for clip in clips:
        assert clip.parent == out and clip.exists()
        probe = probe_mp4(clip)
        assert (probe["width"], probe["height"], probe["frames"]) == (160, 96, 10)
        manifest = json.loads(clip.with_suffix(".json").read_text())
        assert manifest["preset"] == "product/slow-push-in" and manifest["backend"] == "engine"
        assert manifest["job_seed"] == 11 and len(manifest["input"]["sha256"]) == 64
        assert manifest["plan"]["frames"] == 10 and "render_encode_s" in manifest["timings"]
    summary = json.loads((out / "manifest.json").read_text())
    assert [c["file"] for c in summary["clips"]] == sorted(c.name for c in clips)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_generate_is_reproducible_from_photo_preset_and_seed(tmp_path, samples):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = studio(
            "generate", str(samples["scenic"]), "--preset", "scenic/drifting-clouds", "--variants", "1",
            "--seed", "5", "--size", "128x72", "--frames", "6", "--out", str(out), "-q", tmp=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (clip,) = out.glob("*.mp4")
        plan = json.loads(clip.with_suffix(".json").read_text())["plan"]
        frames = list(imageio_ffmpeg.read_frames(str(clip)))[1:]
        runs.append((clip.name, plan, frames))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert runs[0][2] == runs[1][2]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--preset", "product/nope"], ["Unknown preset 'product/nope'"]),
        (["--preset", "product/glint", "--backend", "magic"], ["Unknown backend 'magic'"]),
        (["--preset", "product/glint", "--frames", "0"], ["Frames must be"]),
        (["--preset", "product/glint", "--frames", "10000"], ["Frames must be"]),
        (["--preset", "product/glint", "--fps", "-3"], ["FPS must be"]),
        (["--preset", "product/glint", "--size", "1x1"], ["Width must be"]),
        (["--preset", "product/glint", "--size", "big"], ["size must look like 1024x576"]),
        (["--preset", "product/glint", "--strength", "nan"], ["Strength must be"]),
        (["--preset", "product/glint", "--aspect", "2:1"], ["Aspect must be one of"]),
        (["--preset", "product/glint", "--variants", "99"], ["Number of variants"]),
        (["--preset"], ["expected one argument"]),
    ],
)
def test_bad_option_exits_with_one_error_line_and_writes_nothing(tmp_path, samples, args, needles):
    out = tmp_path / "out"
    result = studio("generate", str(samples["product"]), *args, "--out", str(out), tmp=tmp_path)
    assert_one_error_line(result, *needles)
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"GIF89a this is not really a gif", "damaged"),
        (b"just some text, not an image", "not a photo"),
    ],
)
def test_bad_photo_exits_with_one_error_line_and_writes_nothing(tmp_path, content, needle):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(content)
    out = tmp_path / "out"
    result = studio(
        "generate", str(photo), "--preset", "product/glint", "--out", str(out), tmp=tmp_path
    )
    assert_one_error_line(result, needle)
    assert not out.exists()


def test_missing_photo_and_existing_out_folder_keeps_its_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = studio(
        "generate",
        str(tmp_path / "nope.jpg"),
        "--preset",
        "product/glint",
        "--out",
        str(out),
        tmp=tmp_path,
    )
    assert_one_error_line(result)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_model_backend_that_is_not_downloaded_is_one_error_line_offline(tmp_path, samples):
    out = tmp_path / "out"
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/glint", "--backend", "svd-xt",
        "--out", str(out), tmp=tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
    )  # fmt: skip
    assert_one_error_line(result, "not downloaded", "offline")
    assert not out.exists()
