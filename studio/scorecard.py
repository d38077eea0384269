"""Score clip files for the command line: one verdict or error per file, and a readable text block."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.scoring import DECODE_SIDE, METRIC_INFO, ClipError, ClipScore, score_clip
from studio.scoring.explain import number

# Facts about the file, printed on one line under the metrics.
FACTS = ("frames", "width", "height", "fps")
# Why a metric can be missing, in the creator's words.
MISSING = {
    "fidelity_ssim": "needs --source",
    "fidelity_psnr": "needs --source",
    "face_consistency": "no face found",
    "face_worst_frame": "no face found",
}


@dataclass
class Verdict:
    """The outcome for one file: its score, or the sentence saying why it could not be scored."""

    path: str
    score: ClipScore | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.score is None:
            return {"path": self.path, "error": self.error}
        return self.score.to_dict() | {"path": self.path}


def load_source(path: str | os.PathLike) -> np.ndarray:
    """The source photo as RGB, through the same checks as an upload (raises ImageError)."""
    from studio.images import load_photo

    # Likeness is measured on small frames; a 12 MP decode would be wasted.
    return load_photo(path, max_side=2 * DECODE_SIDE).rgb


def score_files(paths: list[str], source: np.ndarray | None = None) -> list[Verdict]:
    """Score every file in order; a missing or damaged one gets its error and the rest go on."""
    verdicts = []
    for path in paths:
        try:
            verdicts.append(Verdict(path, score=score_clip(path, source=source)))
        except ClipError as error:
            verdicts.append(Verdict(path, error=str(error)))
    return verdicts


def describe(score: ClipScore, name: str) -> list[str]:
    """A block of aligned lines: score, static flag, each metric with its unit, then the facts."""
    data = score.to_dict()
    metrics = [k for k in METRIC_INFO if k != "score" and k in data]
    metrics += [k for k in data if k not in METRIC_INFO and k not in (*FACTS, "path", "static")]
    width = max(len(METRIC_INFO.get(k, (k,))[0]) for k in [*metrics, "score"])
    lines = [name]
    static = "yes: it barely moves, so its score is halved" if score.static else "no"
    lines.append(f"  {'Score':<{width}}  {data['score']:.1f} /100")
    lines.append(f"  {'Static':<{width}}  {static}")
    for key in metrics:
        title, _, unit, _ = METRIC_INFO.get(key, (key, "", "", None))
        value = data[key]
        text = f"{number(value)} {unit}".rstrip() if value is not None else "—"
        if value is None and key in MISSING:
            text += f" ({MISSING[key]})"
        lines.append(f"  {title:<{width}}  {text}")
    if all(data.get(k) is not None for k in FACTS):
        clip = f"{data['width']}x{data['height']}, {data['frames']} frames at {data['fps']:g} fps"
        lines.append(f"  {'Clip':<{width}}  {clip}")
    return lines


def explain() -> list[str]:
    """What each metric means, one line each, with which direction is better."""
    lines = ["What the numbers mean:"]
    for key, (title, sentence, unit, higher) in METRIC_INFO.items():
        # The worst face frame is a position in the clip, not a quality.
        # (The score's sentence already says which way is better.)
        if key in ("score", "face_worst_frame"):
            better = ""
        else:
            better = ", higher is better" if higher else ", lower is better"
        lines.append(f"  {title} ({unit}{better}): {sentence}")
    lines.append("  Static: the clip barely moves, so its score is halved.")
    return lines
