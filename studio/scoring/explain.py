"""Present clip scores to a person: one-line labels and an HTML table whose headers explain each metric."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.scoring.ranking import METRIC_INFO

# The columns a creator cares about, in reading order.
TABLE_METRICS = (
    "score",
    "flicker",
    "camera_jitter",
    "motion",
    "fidelity_ssim",
    "colour_drift",
    "face_consistency",
    "artifacts",
)


def number(value: Any) -> str:
    """A metric as a person reads it: three significant figures, whole numbers as they are."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def label(
    position: int, variant: int, score: Mapping[str, Any] | None, badges: Sequence[str]
) -> str:
    """'#1 · variant 3 · 87 · most stable' for a video's caption."""
    parts = [f"#{position}", f"variant {variant}"]
    if score is not None:
        parts.append(f"score {score['score']:.0f}")
        if score.get("static"):
            parts.append("static")
    parts.extend(badges)
    return " · ".join(parts)


def table_html(rows: Sequence[tuple[str, Mapping[str, Any] | None, Sequence[str]]]) -> str:
    """An HTML table, one row per (name, score dict, badges); hover a header for its meaning."""
    head = ["<th>Clip</th>"]
    for key in TABLE_METRICS:
        title, sentence, unit, higher = METRIC_INFO[key]
        hint = f"{sentence} ({unit}; {'higher' if higher else 'lower'} is better)"
        head.append(f'<th title="{html.escape(hint)}">{html.escape(title)}</th>')
    body = []
    for name, score, badges in rows:
        cells = [f"<td>{html.escape(name)} " + "".join(
            f'<span class="badge">{html.escape(b)}</span>' for b in badges) + "</td>"]  # fmt: skip
        for key in TABLE_METRICS:
            cells.append(
                f"<td>{html.escape(number(None if score is None else score.get(key)))}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(
        f"<li><b>{html.escape(METRIC_INFO[k][0])}</b>: {html.escape(METRIC_INFO[k][1])}</li>"
        for k in TABLE_METRICS
    )
    return (
        '<table class="score-table"><thead><tr>' + "".join(head) + "</tr></thead><tbody>"
        + "".join(body) + "</tbody></table>"
        + f'<ul class="score-notes">{notes}</ul>'
    )  # fmt: skip
