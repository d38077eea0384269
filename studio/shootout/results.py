"""A shootout's results: one row per clip, the winner of each photo, and the table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.scoring import METRIC_INFO, ClipScore, rank

ROW_FIELDS = ("photo", "preset", "backend", "variant", "seed", "clip_seed", "path", "score",
              "static", "winner")  # fmt: skip


@dataclass
class ShootoutRow:
    """One clip of the shootout: where it is and how it scored, or why it is missing."""

    photo_index: int
    photo: str
    preset: str
    backend: str
    variant: int
    seed: int  # the cell's job seed: `generate --seed` with it remakes this variant
    clip_seed: int | None = None
    path: str | None = None  # relative to the shootout folder, with forward slashes
    score: float | None = None
    static: bool | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    winner: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Flat and JSON-ready: the row fields, then every metric by name, then the error."""
        out = {name: getattr(self, name) for name in ROW_FIELDS}
        out.update(self.metrics)
        out["error"] = self.error
        return out


@dataclass
class ShootoutResult:
    """What a shootout made: its rows (one per clip), the winner of each photo and its files."""

    out_dir: Path
    images: list[str]
    presets: list[str]
    backends: list[str]
    seed: int
    variants: int
    rows: list[ShootoutRow]
    thumbnails: dict[int, str]  # photo index -> thumbnail path relative to out_dir
    elapsed_s: float
    report: Path | None = None
    csv: Path | None = None
    json: Path | None = None

    @property
    def winners(self) -> dict[int, ShootoutRow]:
        """The best clip of each photo (by photo index); photos whose cells all failed have none."""
        return {row.photo_index: row for row in self.rows if row.winner}

    @property
    def failed(self) -> list[ShootoutRow]:
        return [row for row in self.rows if row.error]

    def metric_names(self) -> list[str]:
        """Metrics present in any row, in METRIC_INFO order, then any others the scorer added."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row.metrics))
        known = [k for k in METRIC_INFO if k in seen]
        return known + [k for k in seen if k not in METRIC_INFO]


def pick_winners(rows: list[ShootoutRow]) -> None:
    """Mark the best scored clip of each photo (ties go to the steadier clip, as in rank())."""
    for row in rows:
        row.winner = False
    by_photo: dict[int, list[ShootoutRow]] = {}
    for row in rows:
        if row.error is None and row.score is not None:
            by_photo.setdefault(row.photo_index, []).append(row)
    for scored in by_photo.values():
        clips = [ClipScore(r.path, r.score, bool(r.static), r.metrics) for r in scored]
        scored[rank(clips)[0]].winner = True


def results_json(result: ShootoutResult) -> str:
    """A JSON list with one flat object per clip (see ShootoutRow.to_dict)."""
    return json.dumps([row.to_dict() for row in result.rows], indent=2, ensure_ascii=False) + "\n"


def results_csv(result: ShootoutResult) -> str:
    """The same rows as CSV: row fields, every metric, then the error (empty when none)."""
    columns = [*ROW_FIELDS, *result.metric_names(), "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: _csv_value(v) for k, v in row.to_dict().items()})
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    # Spelled as in results.json, so the two files read alike.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


TABLE_HEADER = ["photo", "preset", "backend", "variant", "score", "", "error"]


def results_table(result: ShootoutResult) -> list[list[Any]]:
    """The rows as the studio's table shows them: best first within each photo."""
    rows = sorted(result.rows, key=lambda r: (r.photo_index, -(r.score or -1)))
    return [
        [Path(r.photo).name, r.preset, r.backend, r.variant,
         None if r.score is None else round(r.score, 1), "winner" if r.winner else "", r.error or ""]
        for r in rows
    ]  # fmt: skip
