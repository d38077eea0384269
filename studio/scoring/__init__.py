"""Clip metrics and ranking: score a rendered or uploaded clip on CPU, with no model weights.

score_frames() and score_clip() measure flicker, camera shake, motion, colour drift, likeness to
the source photo, face consistency and layer artifacts (see METRIC_INFO for what each means to a
creator), then combine them into one 0-100 score with the formula in studio/scoring/ranking.py.
rank() and badges() compare the variants of one job.

Motion is measured on frames downscaled to WORK_SIDE px on the long side (flicker in grey levels
at that size) and pixel metrics are rescaled to the clip's own resolution; faces and artifacts
look at the frames as given, up to artifacts.ART_SIDE px.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from studio.errors import ClipError
from studio.scoring import artifacts, faces, fidelity, motion
from studio.scoring.ranking import METRIC_INFO, assign_badges, combine, is_static, order, stability

__all__ = [
    "METRIC_INFO",
    "ClipError",
    "ClipScore",
    "badges",
    "rank",
    "score_clip",
    "score_frames",
]

# 256 px keeps a 72-frame clip near 0.15 s on one core; the camera path is still measured to
# ~0.01 px there thanks to the sub-pixel alignment in motion.py.
WORK_SIDE = 256
# score_clip asks ffmpeg for at most this size: enough for faces, a fraction of the decode cost.
DECODE_SIDE = 512


@dataclass
class ClipScore:
    """The verdict on one clip: the 0-100 score, the static flag and every raw metric."""

    path: str | None
    score: float
    static: bool
    # flicker, camera_jitter, motion, motion_norm, fidelity_ssim, fidelity_psnr, colour_drift,
    # face_consistency, face_worst_frame, artifacts, frames, width, height, fps (None when not
    # measured)
    metrics: dict[str, float | int | None] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> ClipScore:
        """The inverse of to_dict (a manifest's or a results file's "score")."""
        metrics = {k: v for k, v in data.items() if k not in ("path", "score", "static")}
        return cls(path=data.get("path"), score=data["score"], static=bool(data["static"]),
                   metrics=metrics)  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-ready: {"path", "score", "static", **metrics} with plain Python numbers."""
        out: dict = {"path": self.path, "score": float(self.score), "static": bool(self.static)}
        for key, value in self.metrics.items():
            if value is None or isinstance(value, (bool, int)):
                out[key] = value
            elif isinstance(value, np.integer):
                out[key] = int(value)
            else:
                out[key] = None if not np.isfinite(value) else float(value)
        return out


def _as_rgb_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:  # T x H x W grey
        frames = np.repeat(frames[..., None], 3, axis=3)
    if frames.ndim != 4 or frames.shape[3] not in (3, 4):
        raise ValueError(f"frames must be T x H x W x 3, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames[..., :3]


def _score(
    frames: np.ndarray,
    native_size: tuple[int, int],
    fps: float,
    source: np.ndarray | None,
    path: str | None,
    still: bool = False,
) -> ClipScore:
    """Score RGB frames that may already be downscaled from a clip of native_size (w, h)."""
    count, height, width = frames.shape[:3]
    if count < 2:
        name = f"'{Path(path).name}'" if path else "This clip"
        raise ClipError(f"{name} has fewer than two frames, so there is no motion to score.")
    native_w, native_h = native_size
    work = min(1.0, WORK_SIDE / max(width, height))
    size = (max(round(width * work), 16), max(round(height * work), 16))
    work = size[0] / width

    # Grey before resizing: a third of the pixels to filter, and flow only needs luma.
    grey = np.stack(
        [
            cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
            for f in frames
        ]
    )
    stats = motion.analyse(grey)
    to_native = max(native_w, native_h) / max(size)
    motion_px = stats.motion * to_native
    motion_norm = motion_px / float(np.hypot(native_w, native_h))
    # A take of a locked-off preset is meant to be nearly still: that is not a failure to move.
    static = not still and is_static(motion_norm, fps)

    first = cv2.resize(frames[0], size, interpolation=cv2.INTER_AREA)
    last = cv2.resize(frames[-1], size, interpolation=cv2.INTER_AREA)
    ssim = psnr = None
    if source is not None:
        ssim, psnr = fidelity.fidelity(first, np.asarray(source))
    face = faces.analyse(frames, stats.camera, work)
    parts = None if face is None else face.moving_parts()
    layers = artifacts.analyse(frames, stats.camera, work, parts)
    last_to_first = motion.end_to_start(stats.camera, size[0], size[1])

    metrics: dict[str, float | int | None] = {
        "flicker": round(stats.flicker, 4),
        "camera_jitter": round(stats.camera_jitter * to_native, 4),
        "camera_accel": round(stats.camera_accel * to_native, 4),
        "motion": round(motion_px, 4),
        "motion_norm": round(motion_norm, 7),
        "fidelity_ssim": None if ssim is None else round(ssim, 4),
        "fidelity_psnr": None if psnr is None else round(psnr, 2),
        "colour_drift": round(fidelity.colour_drift(first, last, last_to_first), 3),
        "face_consistency": None if face is None else round(face.consistency, 4),
        "face_worst_frame": None if face is None else face.worst_frame,
        "artifacts": round(layers.figure, 4),
        "frames": int(count),
        "width": int(native_w),
        "height": int(native_h),
        "fps": round(float(fps), 3),
    }
    return ClipScore(
        path=path, score=combine(metrics, static, still=still), static=static, metrics=metrics
    )


def score_frames(
    frames: np.ndarray,
    *,
    source: np.ndarray | None = None,
    fps: float = 24.0,
    path: str | None = None,
    native_size: tuple[int, int] | None = None,
    still: bool = False,
) -> ClipScore:
    """Score a clip held in memory (T x H x W x 3 uint8 RGB), optionally against its source photo.

    native_size (w, h) is the clip's real size when `frames` were downscaled to save memory
    (e.g. to DECODE_SIDE); pixel metrics are reported at that size. still=True: the clip was
    asked to stay nearly still (a locked-off camera), so little motion is neither flagged as
    static nor scored down.
    """
    frames = _as_rgb_frames(frames)
    size = native_size or (frames.shape[2], frames.shape[1])
    return _score(frames, size, fps, source, path, still)


def score_clip(
    path: str | os.PathLike, *, source: np.ndarray | None = None, still: bool = False
) -> ClipScore:
    """Score a video file made anywhere (MP4, WebM, GIF, MOV...); raises ClipError if unreadable."""
    from studio.videoio import read_video  # spawns ffmpeg; keep it out of import time

    p = Path(path)
    if not p.is_file():
        raise ClipError(f"Cannot find the clip '{p.name}'; check that the file is still there.")
    try:
        video = read_video(p, max_side=DECODE_SIDE)
    except (OSError, RuntimeError, ValueError, IndexError, KeyError, AssertionError) as error:
        raise ClipError(
            f"'{p.name}' is not a video we can read; it may be damaged, cut short or not a video."
        ) from error
    return _score(video.frames, video.source_size, video.fps or 24.0, source, str(p), still)


def rank(scores: list[ClipScore]) -> list[int]:
    """Indices of the clips, best first (ties go to the steadier clip)."""
    return order([s.score for s in scores], [stability(s.metrics) for s in scores])


def badges(scores: list[ClipScore]) -> dict[int, list[str]]:
    """'best overall', 'most stable', 'most motion' and (with faces) 'best face' by clip index."""
    return assign_badges(
        [s.metrics for s in scores], [s.score for s in scores], [s.static for s in scores]
    )
