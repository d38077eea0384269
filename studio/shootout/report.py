"""Render a shootout into one self-contained HTML page (template: assets/report.html)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from studio import __version__
from studio.scoring import METRIC_INFO
from studio.scoring.explain import number

if TYPE_CHECKING:
    from studio.shootout.results import ShootoutResult, ShootoutRow

TEMPLATE = Path(__file__).resolve().parents[2] / "assets" / "report.html"
# Facts about a clip rather than judgements of it: in results.csv/json, not in the table.
CLIP_FACTS = ("frames", "width", "height", "fps")
# A position in the clip, not a quality: no "higher/lower is better" arrow.
NO_DIRECTION = ("face_worst_frame",)


@dataclass(frozen=True)
class Column:
    """One metric column of the table: its key, header, unit, explanation and better direction."""

    key: str
    title: str
    unit: str
    explanation: str
    higher_is_better: bool | None


def _columns(names: list[str]) -> list[Column]:
    cols = []
    for key in names:
        title, sentence, unit, higher = METRIC_INFO.get(key, (key, "", "", None))
        if key in NO_DIRECTION:
            higher = None
        cols.append(Column(key, title, unit, sentence, higher))
    return cols


def _href(rel: str | None) -> str | None:
    # Paths are relative to report.html and built from our own slugs; quoting is belt and braces.
    return quote(rel) if rel else None


def _cells(result: ShootoutResult, photo_index: int) -> list[dict[str, Any]]:
    """Presets (rows) x backends (columns) of one photo, each with its clips and error."""
    grid = []
    for preset in result.presets:
        line = []
        for backend in result.backends:
            rows = [r for r in result.rows if (r.photo_index, r.preset, r.backend)
                    == (photo_index, preset, backend)]  # fmt: skip
            errors = list(dict.fromkeys(r.error for r in rows if r.error))
            line.append(
                {
                    "backend": backend,
                    "clips": [_clip(r) for r in rows if r.path and r.score is not None],
                    "errors": errors,
                    "seed": rows[0].seed if rows else None,
                }
            )
        grid.append({"preset": preset, "cells": line})
    return grid


def _clip(row: ShootoutRow) -> dict[str, Any]:
    return {
        "src": _href(row.path),
        "variant": row.variant,
        "score": f"{row.score:.1f}" if row.score is not None else "—",
        "static": bool(row.static),
        "winner": row.winner,
        "title": f"{row.photo} · {row.preset} · {row.backend} · variant {row.variant}",
    }


def _table_row(row: ShootoutRow, columns: list[Column]) -> dict[str, Any]:
    metrics = [
        {"v": "" if row.metrics.get(c.key) is None else row.metrics[c.key],
         "text": number(row.metrics.get(c.key))}
        for c in columns
    ]  # fmt: skip
    return {
        "photo": row.photo,
        "preset": row.preset,
        "backend": row.backend,
        "variant": row.variant,
        "seed": row.seed,
        "src": _href(row.path),
        "score": "" if row.score is None else row.score,
        "score_text": "—" if row.score is None else f"{row.score:.1f}",
        "static": "" if row.static is None else ("yes" if row.static else "no"),
        "metrics": metrics,
        "error": row.error or "",
        "winner": row.winner,
    }


def render_report(result: ShootoutResult) -> str:
    """The report as HTML text: a clip grid per photo, a sortable table and what each metric means."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # autoescape: every photo name, id and error sentence is escaped on the way into the page.
    env = Environment(
        loader=FileSystemLoader(TEMPLATE.parent), autoescape=True, undefined=StrictUndefined
    )
    # A metric nobody has (no faces, no source) would only be a column of dashes.
    measured = [n for n in result.metric_names() if n not in CLIP_FACTS and
                any(r.metrics.get(n) is not None for r in result.rows)]  # fmt: skip
    columns = _columns(measured)
    winners = result.winners
    photos = []
    for index, image in enumerate(result.images):
        win = winners.get(index)
        photos.append(
            {
                "name": Path(image).name,
                "thumb": _href(result.thumbnails.get(index)),
                "winner": _clip(win) | {"preset": win.preset, "backend": win.backend}
                if win
                else None,
                "grid": _cells(result, index),
            }
        )
    clips = len(result.rows)
    return env.get_template(TEMPLATE.name).render(
        photos=photos,
        backends=result.backends,
        columns=columns,
        rows=[_table_row(r, columns) for r in result.rows],
        summary={
            "photos": len(result.images),
            "presets": len(result.presets),
            "backends": len(result.backends),
            "variants": result.variants,
            "clips": clips,
            "failed": len(result.failed),
            "seed": result.seed,
            "elapsed": f"{result.elapsed_s:.0f}",
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "version": __version__,
        },
        score_info=METRIC_INFO["score"],
    )
