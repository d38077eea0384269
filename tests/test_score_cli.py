"""`python -m studio score` on clips made here and elsewhere: JSON per clip, static flag, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.encode import write_mp4
from studio.scoring import METRIC_INFO
from tests.test_cli import assert_one_error_line, studio

METRICS = [k for k in METRIC_INFO if k != "score"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory, samples) -> Path:
    """One small clip made by the studio's own CLI, as a creator would make it."""
    tmp = tmp_path_factory.mktemp("generated")
    result = studio(
        "generate", str(samples["product"]), "--preset", "product/slow-push-in", "--variants", "1",
        "--seed", "3", "--size", "128x72", "--frames", "8", "--out", str(tmp / "out"), "-q", tmp=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return next((tmp / "out").glob("*.mp4"))


def moving_frames(samples, count: int = 10, size: tuple[int, int] = (128, 96)) -> list[np.ndarray]:
    """A steady pan across a real photo: what any other tool's clip might look like."""
    rgb = np.asarray(Image.open(samples["scenic"]).convert("RGB").resize((256, 192)))
    return [np.ascontiguousarray(rgb[40:136, 8 + 4 * i : 136 + 4 * i]) for i in range(count)]


def test_json_holds_path_score_static_and_every_metric_of_a_generated_clip(
    tmp_path, generated, samples
):
    result = studio(
        "score", str(generated), "--source", str(samples["product"]), "--json", tmp=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (clip,) = json.loads(result.stdout)
    assert clip["path"] == str(generated)
    assert 0 < clip["score"] <= 100 and clip["static"] is False
    assert all(name in clip for name in METRICS)
    assert clip["fidelity_ssim"] > 0.3  # --source was used: likeness is measured
    assert (clip["width"], clip["height"], clip["frames"]) == (128, 72, 8)


def test_clip_of_identical_frames_is_flagged_static_in_json_and_text(tmp_path, samples):
    still = moving_frames(samples)[0]
    path = tmp_path / "still.mp4"
    write_mp4([still] * 12, path, fps=24)
    as_json = studio("score", str(path), "--json", tmp=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)[0]["static"] is True

    as_text = studio("score", str(path), "--explain", tmp=tmp_path)
    assert as_text.returncode == 0, as_text.stderr
    lines = as_text.stdout.splitlines()
    assert lines[0] == str(path)
    assert any(line.split()[:2] == ["Static", "yes:"] for line in lines)
    assert any("Flicker" in line and "grey levels" in line for line in lines)
    # Each explanation is printed once, at the bottom.
    sentence = METRIC_INFO["flicker"][1]
    assert as_text.stdout.count(sentence) == 1
    assert as_text.stdout.index(sentence) > as_text.stdout.index("Colour drift")


def test_gif_made_elsewhere_is_scored(tmp_path, samples):
    frames = [Image.fromarray(f) for f in moving_frames(samples)]
    gif = tmp_path / "pika-download.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=80, loop=0)
    result = studio("score", str(gif), "--json", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    (clip,) = json.loads(result.stdout)
    assert (clip["width"], clip["height"], clip["frames"]) == (128, 96, 10)
    assert clip["static"] is False and clip["motion"] > 1.0  # 4 px per frame to the right


def test_garbage_file_is_refused_with_one_error_line(tmp_path):
    junk = tmp_path / "runway.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    result = studio("score", str(junk), tmp=tmp_path)
    assert_one_error_line(result, "runway.mp4", "not a video we can read")
    assert result.stdout == ""


def test_several_clips_with_one_bad_report_its_error_and_exit_1(tmp_path, generated):
    missing = tmp_path / "gone.webm"
    result = studio("score", str(generated), str(missing), "--json", tmp=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    good, bad = json.loads(result.stdout)
    assert good["path"] == str(generated) and good["score"] > 0
    assert bad == {"path": str(missing), "error": bad["error"]}
    assert "gone.webm" in bad["error"]


def test_unreadable_source_photo_is_one_error_line(tmp_path, generated):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not a jpeg at all")
    result = studio("score", str(generated), "--source", str(photo), tmp=tmp_path)
    assert_one_error_line(result, "not a photo")
