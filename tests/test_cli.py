"""The command line as a user runs it: real processes, real files, one 'error:' line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

from studio.encode import probe_mp4
from studio.presets import load_library

ROOT = Path(__file__).resolve().parent.parent


def studio_env(tmp: Path, **extra_env: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "STUDIO_USER_PRESETS_DIR": str(tmp / "none")}
    env.update(extra_env)
    return env


def studio(*args: str, tmp: Path, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=ROOT,
        env=studio_env(tmp, **extra_env),
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


def test_generate_takes_a_prompt_for_every_take_and_records_it(tmp_path, samples):
    out = tmp_path / "out"
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/slow-push-in", "--variants", "3",
        "--seed", "4", "--size", "96x96", "--frames", "4", "--out", str(out), "-q",
        "--prompt", "a coffee cup on a marble table, steam curling up", "--negative-prompt", "",
        tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifests = [json.loads(p.read_text()) for p in sorted(out.glob("*-v*.json"))]
    assert len(manifests) == 3
    for m in manifests:
        assert m["plan"]["prompt"] == "a coffee cup on a marble table, steam curling up"
        assert m["plan"]["negative_prompt"] == ""
        assert m["job"]["prompt"] == "a coffee cup on a marble table, steam curling up"
    # Without --prompt the takes word the preset's prompt in each of its three ways.
    out2 = tmp_path / "out2"
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/slow-push-in", "--variants", "3",
        "--seed", "4", "--size", "96x96", "--frames", "4", "--out", str(out2), "-q", tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plans = [json.loads(p.read_text())["plan"] for p in sorted(out2.glob("*-v*.json"))]
    assert len({p["prompt"] for p in plans}) == 3
    preset = load_library().get("product/slow-push-in")
    assert {p["prompt"] for p in plans} == set(preset.phrasings)
    assert {p["negative_prompt"] for p in plans} == {preset.negative_prompt}


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
        (["--preset", "product/glint", "--prompt", ""], ["The prompt is empty"]),
        (["--preset", "product/glint", "--prompt", "a\x1b[2Jb"], ["The prompt contains a control"]),
        (
            ["--preset", "product/glint", "--negative-prompt", "x" * 1200],
            ["The negative prompt is longer than 1000 characters"],
        ),
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


TINY = ("--variants", "1", "--size", "128x128", "--frames", "8")


def test_seed_minus_one_means_a_new_random_seed_each_run(tmp_path, samples):
    seeds = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = studio("generate", str(samples["product"]), "--preset", "product/glint",
                        "--seed", "-1", *TINY, "--out", str(out), "-q", tmp=tmp_path,
                        STUDIO_SCORE="0")  # fmt: skip
        assert result.returncode == 0, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("seed: ")
        seed = int(line.removeprefix("seed: "))
        assert 0 <= seed < 2**31
        summary = json.loads((out / "manifest.json").read_text())
        assert summary["job_seed"] == seed
        seeds.append(seed)
    assert seeds[0] != seeds[1]


@pytest.mark.parametrize("seed", ["-2", "2147483648"])
def test_other_out_of_range_seeds_are_refused_with_the_limit_written_out(tmp_path, samples, seed):
    out = tmp_path / "out"
    result = studio("generate", str(samples["product"]), "--preset", "product/glint",
                    "--seed", seed, "--out", str(out), tmp=tmp_path)  # fmt: skip
    assert_one_error_line(result, "Seed must be", "2147483647")
    assert "e+09" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "{missing}", "--preset", "product/glint", "--out", "{out}"],
        ["shootout", "{product}", "{missing}", "--presets", "product/glint", "--out", "{out}"],
        ["score", "{clip}", "--source", "{missing}"],
    ],
    ids=["generate", "shootout", "score-source"],
)
def test_missing_file_is_named_as_typed_in_command_line_words(tmp_path, samples, command):
    missing = "no-such-folder/photo.jpg"  # relative, as a user types it
    out = tmp_path / "out"
    names = {"missing": missing, "out": str(out), "product": str(samples["product"]),
             "clip": str(ROOT / "README.md")}  # fmt: skip
    result = studio(*[part.format(**names) for part in command], tmp=tmp_path)
    assert_one_error_line(result)
    assert result.stderr.strip() == f"error: no such file: {missing}"
    assert "upload" not in result.stderr
    assert not out.exists()


def test_models_lists_the_embedded_engine_beside_the_checkpoints(tmp_path):
    result = studio("models", tmp=tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert "engine" in rows and "svd-xt" in rows
    at = lines.index(next(line for line in lines if line.startswith("engine ")))
    engine = "\n".join(lines[at : at + 3])
    assert "Embedded motion engine" in engine and "nothing to download" in engine
    assert "CPU" in engine and "Apache-2.0" in engine and "Commercial use allowed" in engine


def _shootout_args(samples, out: Path) -> list[str]:
    return [sys.executable, "-m", "studio", "shootout", str(samples["product"]),
            str(samples["scenic"]), "--presets", "product/glint", "--seed", "4", *TINY,
            "--out", str(out)]  # fmt: skip


def test_shootout_into_a_redirected_stderr_writes_no_progress(tmp_path, samples):
    out = tmp_path / "out"
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        result = subprocess.run(_shootout_args(samples, out), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, timeout=300,
                                env=studio_env(tmp_path, STUDIO_SCORE="0"))  # fmt: skip
    assert result.returncode == 0, log.read_text()
    assert log.read_text() == ""  # no bar, no "\r" updates: nothing went wrong, nothing to say
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["winner coffee.png", "winner rocket.jpg"]
    assert lines[-1] == str(out / "report.html")


def test_shootout_on_a_terminal_shows_its_progress_bar(tmp_path, samples):
    import fcntl
    import os
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
    try:
        proc = subprocess.Popen(_shootout_args(samples, tmp_path / "out"), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=secondary,
                                env=studio_env(tmp_path, STUDIO_SCORE="0"))  # fmt: skip
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=300) == 0, seen
    finally:
        os.close(primary)
    assert b"Shootout" in seen and b"100%" in seen


def test_exports_for_a_platform_are_written_beside_each_clip_at_its_size_and_rate(
    tmp_path, samples
):
    out = tmp_path / "out"
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/slow-push-in", "--variants", "1",
        "--seed", "5", "--frames", "12", "--fps", "24", "--platform", "1:1",
        "--export", "mp4", "--export", "webm", "--export", "gif", "--gif-cap-mb", "2",
        "--out", str(out), "-q", tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    clip = next(p for p in out.glob("*.mp4") if p.name.count(".") == 1)
    facts = probe_mp4(clip)
    assert (facts["width"], facts["height"]) == (1080, 1080)  # the engine rendered natively
    printed = result.stdout.splitlines()
    for fmt, codec in (("mp4", "h264"), ("webm", "vp9"), ("gif", "gif")):
        export = clip.with_name(f"{clip.stem}.square.{fmt}")
        assert str(export) in printed
        got = probe_mp4(export)
        assert got["codec"].startswith(codec), got
        if fmt != "gif":
            assert (got["width"], got["height"]) == (1080, 1080)
            assert abs(got["fps"] - 24) < 0.01  # square keeps 24 fps (presets/exports.yaml)
            assert got["frames"] == 12  # 0.5 s, as asked
        else:
            assert export.stat().st_size <= 2_000_000  # the cap
            assert got["width"] == got["height"]
            assert abs(got["frames"] / got["fps"] - 0.5) < 0.1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left
    # The 600x400 photo is enlarged for a 1080x1080 frame: said in one warning.
    assert "enlarges it" in result.stderr or "enlarged" in result.stderr


def test_exports_without_a_platform_keep_the_clip_size(tmp_path, samples):
    out = tmp_path / "out"
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/slow-push-in", "--variants", "2",
        "--seed", "5", "--size", "160x96", "--frames", "8", "--fps", "12", "--export", "webm",
        "--out", str(out), "-q", tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    webms = sorted(out.glob("*.webm"))
    assert len(webms) == 2
    for webm in webms:
        assert webm.with_suffix(".mp4").is_file()
        got = probe_mp4(webm)
        assert (got["width"], got["height"], got["frames"]) == (160, 96, 8)
        assert abs(got["fps"] - 12) < 0.01


def test_unknown_platform_or_format_is_one_error_line(tmp_path, samples):
    for flag, value in (("--platform", "imax"), ("--export", "avi")):
        result = studio(
            "generate", str(samples["product"]), "--preset", "product/slow-push-in",
            flag, value, "--out", str(tmp_path / "out"), tmp=tmp_path,
        )  # fmt: skip
        assert_one_error_line(result, value)
        assert not (tmp_path / "out").exists()


def test_several_photos_each_get_their_folder_and_a_line(tmp_path, samples):
    out = tmp_path / "out"
    result = studio(
        "generate", str(samples["product"]), str(samples["portrait"]), "--preset",
        "product/slow-push-in", "--variants", "2", "--seed", "5", "--size", "128x96",
        "--frames", "6", "--fps", "12", "--out", str(out), "-q", tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["astronaut", "coffee"]
    for folder in out.iterdir():
        assert len(list(folder.glob("*.mp4"))) == 2
        assert (folder / "manifest.json").is_file()
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("[")]
    assert len(lines) == 2 and "[1/2]" in lines[0] and "2 clips" in lines[1]


def test_input_dir_goes_on_past_a_bad_photo_and_exits_non_zero(tmp_path, samples):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a-cup.png").write_bytes(samples["product"].read_bytes())
    (photos / "b-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "c-rocket.jpg").write_bytes(samples["scenic"].read_bytes())
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    result = studio(
        "generate", "--input-dir", str(photos), "--preset", "product/slow-push-in",
        "--variants", "1", "--seed", "5", "--size", "128x96", "--frames", "6", "--fps", "12",
        "--out", str(out), "-q", tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["a-cup", "c-rocket"]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "b-broken.jpg" in errors[0] and "Traceback" not in result.stderr
    assert "[3/3]" in result.stderr  # the photo after the bad one still ran
