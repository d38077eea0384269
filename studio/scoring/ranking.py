"""Turn raw clip metrics into one 0-100 score, an order, and badges a creator can read at a glance.

Each raw metric maps onto a 0..1 sub-score (1 = good):

    flicker         s = exp(-max(0, flicker - 0.5) / 3)     grey levels; 0.5 is clean-render noise
    camera_jitter   s = exp(-camera_jitter / 0.5)            px at the clip's own resolution
    motion          s = 1 - exp(-motion_norm * fps / 0.01)   share of the diagonal per second
    colour_drift    s = exp(-colour_drift / 8)               Delta E, first vs last frame
    fidelity        s = clip((fidelity_ssim - 0.3) / 0.6, 0, 1)   only when a source photo is given
    face            s = face_consistency                     only when the first frame shows a face

    score = 100 * sum(w_i * s_i) / sum(w_i over the metrics present)
            * (1 - ARTIFACT_PENALTY * artifacts)
            * STATIC_PENALTY if the clip is static

with weights w: flicker 0.30, camera_jitter 0.25, motion 0.10, colour_drift 0.10,
fidelity 0.10, face 0.15. artifacts (0 clean .. 1, studio/scoring/artifacts.py) scales the
whole score rather than adding a term: a seam tracing a cheek or a hole beside the subject
spoils a take however steady it is, so with ARTIFACT_PENALTY 0.6 a take with a clearly visible
layer defect (artifacts 0.5 or more) loses 30% or more, and a clean one (under 0.1) at most 6%.
A clip is static when it moves less than 0.25% of its diagonal per second (about 3 px/s at
1024x576); its score is then multiplied by 0.5, because a photo that does not move is not what
anyone asked an image-to-video studio for. A clip whose preset asks for a still camera
(locked-off) is neither flagged static nor scored on motion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# name -> (title, one plain sentence for the UI, unit, higher_is_better)
METRIC_INFO: dict[str, tuple[str, str, str, bool]] = {
    "score": ("Score", "One number that sums up the checks below; higher is better.", "/100", True),
    "flicker": (
        "Flicker",
        "How much brightness and texture still change from frame to frame once the motion is "
        "accounted for; shimmering and pumping light raise it.",
        "grey levels",
        False,
    ),
    "camera_jitter": (
        "Camera shake",
        "How bumpy the camera path is: a smooth push-in or pan is near 0, a shaky one is 1 px or more.",
        "px",
        False,
    ),
    "camera_accel": (
        "Camera acceleration",
        "How much the camera speeds up and slows down overall, intended easing included; "
        "shake is the bumpy part of it.",
        "px/frame²",
        False,
    ),
    "motion": (
        "Motion",
        "How far things move on screen on average from one frame to the next.",
        "px/frame",
        True,
    ),
    "motion_norm": (
        "Motion (relative)",
        "The same motion as a share of the picture's diagonal, so clips of any size compare.",
        "diagonal/frame",
        True,
    ),
    "fidelity_ssim": (
        "Likeness (SSIM)",
        "How closely the first frame matches your photo in structure; 1 means identical.",
        "0-1",
        True,
    ),
    "fidelity_psnr": (
        "Likeness (PSNR)",
        "How closely the first frame matches your photo pixel by pixel; above 30 dB looks the same.",
        "dB",
        True,
    ),
    "colour_drift": (
        "Colour drift",
        "How much the overall colour has shifted between the first and the last frame; under 2 is "
        "hard to see.",
        "ΔE",
        False,
    ),
    "face_consistency": (
        "Face consistency",
        "Whether the face stays the same person all the way through; 1 means it never changes.",
        "0-1",
        True,
    ),
    "face_worst_frame": (
        "Worst face frame",
        "The frame where the face looks least like it does at the start.",
        "frame",
        False,
    ),
    "artifacts": (
        "Edge artifacts",
        "Visible seams, holes, halos, smears or stray specks around the subject that are not in "
        "the photo; 0 means none were seen.",
        "0-1",
        False,
    ),
}

WEIGHTS = {
    "flicker": 0.30,
    "camera_jitter": 0.25,
    "motion": 0.10,
    "colour_drift": 0.10,
    "fidelity": 0.10,
    "face": 0.15,
}
FLICKER_FLOOR, FLICKER_SCALE = 0.5, 3.0
JITTER_SCALE = 0.5
MOTION_SCALE = 0.01  # diagonal per second
DRIFT_SCALE = 8.0
SSIM_LOW, SSIM_SPAN = 0.3, 0.6
STATIC_MOTION = 0.0025  # diagonal per second
STATIC_PENALTY = 0.5
ARTIFACT_PENALTY = 0.6

Metrics = Mapping[str, float | int | None]


def is_static(motion_norm: float, fps: float) -> bool:
    """True when the clip moves less than STATIC_MOTION of its diagonal per second."""
    return motion_norm * fps < STATIC_MOTION


def sub_scores(m: Metrics) -> dict[str, float]:
    """The 0..1 sub-score of every metric present (see the module docstring for the mapping)."""
    s = {
        "flicker": math.exp(-max(0.0, float(m["flicker"]) - FLICKER_FLOOR) / FLICKER_SCALE),
        "camera_jitter": math.exp(-float(m["camera_jitter"]) / JITTER_SCALE),
        "motion": 1.0 - math.exp(-float(m["motion_norm"]) * float(m["fps"]) / MOTION_SCALE),
        "colour_drift": math.exp(-float(m["colour_drift"]) / DRIFT_SCALE),
    }
    if m.get("fidelity_ssim") is not None:
        s["fidelity"] = min(1.0, max(0.0, (float(m["fidelity_ssim"]) - SSIM_LOW) / SSIM_SPAN))
    if m.get("face_consistency") is not None:
        s["face"] = float(m["face_consistency"])
    return s


def combine(m: Metrics, static: bool, *, still: bool = False) -> float:
    """The 0..100 score of one clip's metrics; a clip meant to be still is not scored on motion."""
    s = sub_scores(m)
    if still:
        s.pop("motion")
    total = sum(WEIGHTS[k] * v for k, v in s.items()) / sum(WEIGHTS[k] for k in s)
    artifacts = m.get("artifacts")
    if artifacts is not None:  # scores saved before the figure existed have none
        total *= 1.0 - ARTIFACT_PENALTY * min(1.0, max(0.0, float(artifacts)))
    return round(100.0 * total * (STATIC_PENALTY if static else 1.0), 2)


def stability(m: Metrics) -> float:
    """0..2, higher is steadier: the flicker and camera-shake sub-scores added."""
    s = sub_scores(m)
    return s["flicker"] + s["camera_jitter"]


def order(scores: Sequence[float], stabilities: Sequence[float]) -> list[int]:
    """Indices best-first by score; the steadier clip wins a tie."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], -stabilities[i], i))


def assign_badges(
    metrics: Sequence[Metrics], scores: Sequence[float], statics: Sequence[bool]
) -> dict[int, list[str]]:
    """Badges for a set of clips; a lone clip gets none, since badges compare."""
    out: dict[int, list[str]] = {i: [] for i in range(len(metrics))}
    if len(metrics) < 2:
        return out
    stab = [stability(m) for m in metrics]
    out[order(scores, stab)[0]].append("best overall")
    # A clip that does not move is trivially steady; it only wins "most stable" among its kind.
    moving = [i for i in range(len(metrics)) if not statics[i]]
    steady_pool = moving or list(range(len(metrics)))
    out[max(steady_pool, key=lambda i: (stab[i], scores[i]))].append("most stable")
    if moving:
        out[max(moving, key=lambda i: float(metrics[i]["motion_norm"]))].append("most motion")
    faces = [i for i, m in enumerate(metrics) if m.get("face_consistency") is not None]
    if faces:
        best = max(faces, key=lambda i: (float(metrics[i]["face_consistency"]), scores[i]))
        out[best].append("best face")
    return out
