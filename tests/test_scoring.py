"""Clip scoring is validated on synthetic clips whose faults are known: each metric must single out its fault."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from studio.errors import StudioError
from studio.scoring import METRIC_INFO, ClipError, badges, rank, score_clip, score_frames

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
SIZE = (1024, 576)
FRAMES = 48


def photo(name: str) -> np.ndarray:
    return cv2.imread(str(EXAMPLES / name))[:, :, ::-1].copy()


def render(
    img: np.ndarray,
    *,
    zoom: float = 0.15,
    shake: float = 0.0,
    rounded: bool = False,
    centre: tuple[float, float] | None = None,
    swap_to: np.ndarray | None = None,
    size: tuple[int, int] = SIZE,
    frames: int = FRAMES,
) -> np.ndarray:
    """A linear push-in on img with sub-pixel warps; optional shake, integer rounding, face swap."""
    rng = np.random.default_rng(1)
    h0, w0 = img.shape[:2]
    width, height = size
    base = max(width / w0, height / h0)
    cx, cy = centre or (w0 / 2, h0 / 2)
    out = []
    for i in range(frames):
        s = base * (1 + zoom * i / (frames - 1))
        tx, ty = width / 2 - s * cx, height / 2 - s * cy
        if shake:
            tx, ty = tx + rng.uniform(-shake, shake), ty + rng.uniform(-shake, shake)
        if rounded:  # what ffmpeg's zoompan does: the crop snaps to whole pixels
            tx, ty = round(tx), round(ty)
        src = swap_to if swap_to is not None and i >= frames // 2 else img
        m = np.array([[s, 0, tx], [0, s, ty]])
        out.append(
            cv2.warpAffine(src, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        )
    return np.stack(out)


def another_face(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """img with a different face in the same place: mirrored, features moved, skin re-toned."""
    x, y, w, h = box
    face = np.ascontiguousarray(img[y : y + h, x : x + w][:, ::-1]).astype(np.float32)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (
        cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), w / 6) for _ in "xy"
    )
    dx *= 0.12 * w / np.abs(dx).max()
    dy *= 0.12 * h / np.abs(dy).max()
    mapx, mapy = xx + dx, (h / 2 + 0.85 * (yy - h / 2) + dy).astype(np.float32)
    face = cv2.remap(face, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    face = 255 * (face / 255) ** 1.3 * np.array([0.9, 1.0, 1.1], np.float32)
    mask = np.zeros((h, w), np.float32)
    mask[h // 10 : -h // 10, w // 10 : -w // 10] = 1
    mask = cv2.GaussianBlur(mask, (0, 0), w / 20)[..., None]
    out = img.copy()
    out[y : y + h, x : x + w] = np.clip(
        mask * face + (1 - mask) * img[y : y + h, x : x + w], 0, 255
    )
    return out


def write_mp4(path: Path, frames: np.ndarray) -> None:
    """H.264 yuv420p, as most generators (and our encoder) deliver."""
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=24,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=1,
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


@cache
def clips() -> dict[str, np.ndarray]:
    product = photo("coffee.png")
    reference = render(product)
    rng = np.random.default_rng(3)
    gains = rng.uniform(0.94, 1.06, (FRAMES, 1, 1, 1))
    warm = 1 + np.linspace(0, 1, FRAMES)[:, None, None, None] * np.array([0.12, 0.02, -0.12])
    return {
        "reference": reference,
        "flicker": np.clip(reference * gains, 0, 255).astype(np.uint8),
        "jitter": render(product, shake=1.5),
        "rounded": render(product, rounded=True),
        "static": render(product, zoom=0.0),
        "drift": np.clip(reference * warm, 0, 255).astype(np.uint8),
    }


@cache
def scores() -> dict:
    product = photo("coffee.png")
    return {name: score_frames(frames, source=product) for name, frames in clips().items()}


@cache
def face_clips() -> tuple[np.ndarray, np.ndarray]:
    from studio.motion.matte import shared_vision

    portrait = photo("astronaut.png")
    x0, y0, x1, y1 = (round(v) for v in shared_vision().faces(portrait)[0].box)
    other = another_face(portrait, (x0, y0, x1 - x0, y1 - y0))
    # Frame the head and shoulders: a centred 16:9 crop of the square photo cuts the face off.
    same = render(portrait, centre=(256, 150))
    swapped = render(portrait, centre=(256, 150), swap_to=other)
    return same, swapped


def test_smooth_push_in_measures_no_shake_and_scores_well():
    ref = scores()["reference"]
    assert ref.metrics["camera_jitter"] < 0.05
    assert ref.metrics["flicker"] < 2.0
    assert not ref.static
    assert ref.score > 80


def test_injected_flicker_raises_flicker_and_lowers_score():
    ref, bad = scores()["reference"], scores()["flicker"]
    assert bad.metrics["flicker"] > 3 * ref.metrics["flicker"]
    assert bad.metrics["camera_jitter"] < 0.1  # brightness pumping is not camera shake
    assert bad.score < ref.score - 10


def test_random_camera_shake_reads_as_jitter():
    ref, bad = scores()["reference"], scores()["jitter"]
    assert bad.metrics["camera_jitter"] > 1.0
    assert bad.metrics["camera_jitter"] > 20 * ref.metrics["camera_jitter"]
    assert bad.score < ref.score - 10


def test_integer_rounded_push_in_measures_about_one_pixel():
    rounded = scores()["rounded"].metrics["camera_jitter"]
    assert 0.4 < rounded < 1.3


def test_static_clip_is_flagged_and_penalised():
    still = scores()["static"]
    assert still.static
    assert still.metrics["motion"] < 0.05
    assert not scores()["reference"].static
    assert still.score < 60


def test_warming_colours_register_as_colour_drift():
    ref, warm = scores()["reference"], scores()["drift"]
    assert ref.metrics["colour_drift"] < 1.0  # a push-in alone is not a colour change
    assert warm.metrics["colour_drift"] > 5.0
    assert warm.score < ref.score


def test_face_swapped_halfway_lowers_consistency_in_the_second_half():
    same, swapped = face_clips()
    steady, swap = score_frames(same), score_frames(swapped)
    assert steady.metrics["face_consistency"] > 0.9
    assert swap.metrics["face_consistency"] < 0.7
    assert swap.metrics["face_worst_frame"] >= FRAMES // 2
    assert swap.score < steady.score


def test_clip_without_a_face_has_no_face_score():
    ref = scores()["reference"]
    assert ref.metrics["face_consistency"] is None
    assert ref.metrics["face_worst_frame"] is None


def test_fidelity_is_high_for_the_source_and_low_for_an_unrelated_photo():
    reference = clips()["reference"]
    faithful = scores()["reference"].metrics
    unrelated = score_frames(reference, source=photo("rocket.jpg")).metrics
    assert faithful["fidelity_ssim"] > 0.9 and faithful["fidelity_psnr"] > 30
    assert unrelated["fidelity_ssim"] < 0.4 and unrelated["fidelity_psnr"] < 20
    assert score_frames(reference).metrics["fidelity_ssim"] is None


def test_rank_puts_the_clean_clip_ahead_of_every_faulty_one():
    s = scores()
    names = ["flicker", "jitter", "drift", "reference", "rounded"]
    order = rank([s[n] for n in names])
    assert names[order[0]] == "reference"
    assert order.index(names.index("rounded")) < order.index(names.index("jitter"))


def test_badges_go_to_the_right_clips():
    s = scores()
    names = ["flicker", "reference", "static", "jitter"]
    given = badges([s[n] for n in names])
    assert "best overall" in given[names.index("reference")]
    assert "most stable" in given[names.index("reference")]  # static clips cannot win it
    assert "most motion" in given[names.index("jitter")]
    assert not any("best face" in b for b in given.values())

    same, swapped = face_clips()
    with_faces = badges([score_frames(swapped), score_frames(same)])
    assert "best face" in with_faces[1]
    assert badges([s["reference"]]) == {0: []}


def test_score_clip_reads_an_mp4_and_agrees_with_score_frames(tmp_path):
    frames = clips()["reference"]
    path = tmp_path / "variant.mp4"
    write_mp4(path, frames)

    from_file = score_clip(path, source=photo("coffee.png"))
    in_memory = scores()["reference"]
    assert from_file.metrics["frames"] == FRAMES
    assert (from_file.metrics["width"], from_file.metrics["height"]) == SIZE
    assert from_file.metrics["fps"] == pytest.approx(24)
    assert from_file.metrics["camera_jitter"] == pytest.approx(
        in_memory.metrics["camera_jitter"], abs=0.05
    )
    assert from_file.metrics["motion"] == pytest.approx(in_memory.metrics["motion"], rel=0.1)
    assert from_file.metrics["flicker"] == pytest.approx(in_memory.metrics["flicker"], abs=0.6)
    assert from_file.score == pytest.approx(in_memory.score, abs=5)
    assert from_file.path == str(path)


def test_truncated_or_garbage_clip_is_refused_with_a_clear_error(tmp_path):
    frames = clips()["reference"][:8]
    good = tmp_path / "good.mp4"
    write_mp4(good, frames)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for bad in (truncated, garbage):
        with pytest.raises(ClipError) as caught:
            score_clip(bad)
        assert isinstance(caught.value, StudioError)
        assert bad.name in str(caught.value) and "not a video we can read" in str(caught.value)
    with pytest.raises(ClipError, match="Cannot find the clip 'missing.mp4'"):
        score_clip(tmp_path / "missing.mp4")


def test_a_single_frame_is_refused_with_a_clear_error():
    with pytest.raises(ClipError, match="fewer than two frames"):
        score_frames(clips()["reference"][:1])


def test_to_dict_is_json_ready_and_every_metric_is_explained():
    d = scores()["reference"].to_dict()
    assert json.loads(json.dumps(d)) == d
    assert {"path", "score", "static"} <= d.keys()
    for key in (
        "flicker",
        "camera_jitter",
        "motion",
        "fidelity_ssim",
        "fidelity_psnr",
        "colour_drift",
        "face_consistency",
        "face_worst_frame",
        "artifacts",
    ):
        assert key in d
        title, sentence, unit, higher_is_better = METRIC_INFO[key]
        assert title and sentence.endswith(".") and isinstance(higher_is_better, bool)


def test_face_clips_can_be_scored_in_parallel_threads():
    # The variants of a job are scored in worker threads, each running the face models.
    from concurrent.futures import ThreadPoolExecutor

    same, _ = face_clips()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: score_frames(same[:24]), range(8)))
    assert all(r.metrics["face_consistency"] is not None for r in results)


def test_a_take_as_still_as_its_locked_off_preset_asks_is_not_punished(settings, samples):
    """Gentle breath (locked-off camera, soft breathing) must not be badged static or scored
    down for staying nearly still; a still clip nobody asked for still is."""
    from dataclasses import replace

    from studio.clips import run_job
    from studio.jobs import Job, prepare_job

    settings = replace(settings, long_side=256)
    job = Job(image=str(samples["portrait"]), preset="portrait/gentle-breath", seed=3)
    updates = list(run_job(prepare_job(job, settings), settings.outputs_dir / "j", settings))
    scores = [c.score for c in updates[-1].clips]
    assert all(not s["static"] for s in scores), [s["static"] for s in scores]
    assert min(s["score"] for s in scores) >= 60, [s["score"] for s in scores]
    assert not any("static" in b for b in (updates[-1].badges or {}).values())

    frames = clips()["static"]
    asked_to_move = score_frames(frames, fps=24)
    asked_to_stay = score_frames(frames, fps=24, still=True)
    assert asked_to_move.static and not asked_to_stay.static
    assert asked_to_stay.score > asked_to_move.score
