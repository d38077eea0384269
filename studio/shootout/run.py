"""Shootout: every photo x preset x backend on the same seeds, scored and collected into one folder.

A shootout plans one cell per photo x preset x backend. Each photo x preset gets its own job
seed, shared by every backend, so backends are compared on identical motion plans. Each cell
runs through prepare_job/run_job; each clip is decoded and scored against its photo. A cell
that fails (a backend that cannot run here, an unreadable photo) keeps its error sentence and
the rest still run. A cell runner runs the cells: here, one after another, or on a Ray
cluster (studio.cluster.ray_shootout) when the caller passes its runner. The folder ends up
holding the clips, report.html (see studio/shootout/report.py), results.csv and results.json,
one row per clip.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.backends import list_backends
from studio.backends.base import RenderContext
from studio.clips import Clip, run_job
from studio.encode import write_text
from studio.errors import Cancelled, JobError, StudioError, failure_message
from studio.jobs import Job, prepare_job, validate_job
from studio.plan import VariantPlan
from studio.presets import PresetLibrary, load_library
from studio.scoring import score_clip
from studio.settings import Settings
from studio.shootout.results import (
    ShootoutResult,
    ShootoutRow,
    pick_winners,
    results_csv,
    results_json,
)

log = logging.getLogger(__name__)

DEFAULT_VARIANTS = 2  # photos x presets x backends x variants multiplies quickly
THUMB_SIDE = 320

# progress(fraction of the whole shootout 0..1, what is running now)
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Cell:
    """One photo x preset x backend of the shootout, with the seed its motion plans come from."""

    photo_index: int
    image: str
    preset: str
    backend: str
    seed: int
    folder: str  # where its clips go, relative to the shootout folder

    @property
    def photo(self) -> str:
        return Path(self.image).name

    @property
    def label(self) -> str:
        return f"{self.photo} · {self.preset} · {self.backend}"


def _unique(ids: Sequence[str] | str) -> list[str]:
    # A UI textbox hands over "a, b"; a list of ids is taken as is. Order kept, repeats dropped.
    if isinstance(ids, str):
        ids = ids.split(",")
    return list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))


def _slug(text: str, fallback: str) -> str:
    # Folder names come from ids and file stems, but only ever as [a-z0-9.-]: no path tricks.
    slug = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:40]
    return slug or fallback


def validate_shootout(
    images: Sequence[str | Path],
    presets: Sequence[str],
    backends: Sequence[str],
    settings: Settings,
    *,
    seed: int | None = None,
    variants: int = DEFAULT_VARIANTS,
    size: tuple[int, int] | None = None,
    frames: int | None = None,
) -> PresetLibrary:
    """Refuse unknown ids and impossible settings with one sentence, before anything runs."""
    if not images:
        raise JobError("Give at least one photo for the shootout.")
    if not _unique(presets):
        raise JobError("Give at least one preset id for the shootout, e.g. product/slow-push-in.")
    if not _unique(backends):
        raise JobError("Give at least one backend id for the shootout, e.g. engine.")
    library = load_library(user_dir=settings.user_presets_dir)
    for preset_id in _unique(presets):
        library.get(preset_id)
    known = [info.id for info in list_backends(settings)]
    for backend_id in _unique(backends):
        if backend_id not in known:
            raise JobError(f"Unknown backend '{backend_id}'. Available: {', '.join(known)}.")
    # The photos and presets are checked above; this checks the numbers, as for any job.
    validate_job(Job(image="-", preset="-", seed=seed, variants=variants, size=size, frames=frames))
    return library


def plan_cells(
    images: Sequence[str | Path], presets: Sequence[str], backends: Sequence[str], seed: int
) -> list[Cell]:
    """Pure: the cells in run order (photo, then preset, then backend) with their seeds.

    Each photo x preset draws its own job seed from `seed`; every backend of that pair gets
    the same one, so all backends animate the photo with identical motion plans.
    """
    cells = []
    presets, backends = _unique(presets), _unique(backends)
    for i, image in enumerate(images):
        photo_dir = f"{i + 1:02d}-{_slug(Path(str(image)).stem, 'photo')}"
        for j, preset in enumerate(presets):
            state = np.random.SeedSequence([seed, i, j]).generate_state(1)[0]
            job_seed = int(state % 2**31)
            for backend in backends:
                folder = f"{photo_dir}/{_slug(preset, 'preset')}/{_slug(backend, 'backend')}"
                cells.append(Cell(i, str(image), preset, backend, job_seed, folder))
    return cells


def _row(cell: Cell, variant: int, **values: Any) -> ShootoutRow:
    return ShootoutRow(
        cell.photo_index, cell.photo, cell.preset, cell.backend, variant, cell.seed, **values
    )


def _error_sentence(error: Exception) -> str:
    if not isinstance(error, StudioError):
        # A bug, not a user problem: keep the shootout going, but keep the traceback in the log.
        log.error("shootout cell failed unexpectedly", exc_info=error)
    return failure_message(error)


def _write_thumbnail(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(rgb)
    im.thumbnail((THUMB_SIDE, THUMB_SIDE))
    im.save(path, "JPEG", quality=85)


def run_cell(
    cell: Cell,
    out_dir: Path,
    settings: Settings,
    library: PresetLibrary,
    job: Job,
    cancel: threading.Event,
    on_fraction: Callable[[float], None],
) -> tuple[list[ShootoutRow], np.ndarray | None]:
    """Render and score one cell; always returns one row per variant (errors included)."""
    # A cell gets its own cancel flag: run_job sets it to stop sibling variants when one fails,
    # and that must not stop the rest of the shootout. The user's cancel reaches it through
    # the backend's progress reports.
    cell_cancel = threading.Event()

    def relay(index: int, fraction: float) -> None:
        if cancel.is_set():
            cell_cancel.set()

    ctx = RenderContext(cancel=cell_cancel, progress=relay)
    rows: dict[int, ShootoutRow] = {}
    photo = None
    try:
        prepared = prepare_job(job, settings, library)
        photo = prepared.photo.rgb
        for update in run_job(prepared, out_dir / cell.folder, settings, ctx):
            on_fraction(update.progress)
            relay(0, 0.0)
            if update.new_clip is not None:
                rows[update.new_clip.index] = _scored_row(cell, update.new_clip, out_dir, photo)
    except Cancelled:
        if cancel.is_set():
            raise
        # A sibling variant's failure stopped the rest of this cell, not the user.
        sentence = "The backend stopped before every variant was rendered."
        for index in range(job.variants):
            rows.setdefault(index, _row(cell, index + 1, error=sentence))
    except Exception as error:  # the cell fails, the shootout goes on
        sentence = _error_sentence(error)
        for index in range(job.variants):
            rows.setdefault(index, _row(cell, index + 1, error=sentence))
    return [rows[i] for i in sorted(rows)], photo


@dataclass
class CellDone:
    """A finished cell: its rows (errors included) and its photo, for the report's thumbnail."""

    cell: Cell
    rows: list[ShootoutRow]
    photo: np.ndarray | None  # None when the photo could not be read


# runner(cells with their jobs, shootout folder, settings, presets, cancel flag, progress):
# each cell's CellDone as it finishes, in any order, its files already in the folder.
CellRunner = Callable[
    [list[tuple[Cell, Job]], Path, Settings, PresetLibrary, threading.Event, ProgressFn],
    Iterator[CellDone],
]


def run_cells_here(
    work: list[tuple[Cell, Job]],
    out: Path,
    settings: Settings,
    library: PresetLibrary,
    cancel: threading.Event,
    progress: ProgressFn,
) -> Iterator[CellDone]:
    """The cell runner of a shootout on this machine: one cell after another."""
    for done, (cell, job) in enumerate(work):
        if cancel.is_set():
            raise Cancelled("The shootout was cancelled.")

        def on_fraction(fraction: float, done: int = done, cell: Cell = cell) -> None:
            progress((done + fraction) / len(work), cell.label)

        on_fraction(0.0)
        rows, photo = run_cell(cell, out, settings, library, job, cancel, on_fraction)
        yield CellDone(cell, rows, photo)
        on_fraction(1.0)


def _scored_row(cell: Cell, clip: Clip, out_dir: Path, photo: np.ndarray) -> ShootoutRow:
    rel = clip.path.relative_to(out_dir).as_posix()
    # run_job scores clips as they encode when settings.score is on; reuse that so the shootout
    # and the Generate tab agree on the same clip. Otherwise decode the file and score it.
    data = getattr(clip, "score", None)
    if not isinstance(data, dict) or data.get("score") is None:
        try:
            still = VariantPlan.from_dict(clip.plan).still
            data = score_clip(clip.path, source=photo, still=still).to_dict()
        except Exception as error:
            sentence = _error_sentence(error)
            return _row(cell, clip.index + 1, clip_seed=clip.seed, path=rel, error=sentence)
    metrics = {k: v for k, v in data.items() if k not in ("path", "score", "static")}
    return _row(cell, clip.index + 1, clip_seed=clip.seed, path=rel, score=data["score"],
                static=data["static"], metrics=metrics)  # fmt: skip


def run_shootout(
    images: Sequence[str | Path],
    presets: Sequence[str],
    backends: Sequence[str],
    out_dir: str | Path,
    settings: Settings,
    *,
    seed: int | None = None,
    variants: int = DEFAULT_VARIANTS,
    size: tuple[int, int] | None = None,
    frames: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    runner: CellRunner | None = None,
) -> ShootoutResult:
    """Run every photo x preset x backend into out_dir, score every clip and write the report.

    Unknown ids and impossible settings raise a StudioError before anything is written; a
    cell that fails while running is recorded in its rows and the others still run.
    Cancelling (setting `cancel`) raises Cancelled and writes no report. runner runs the
    cells (default: on the Ray cluster at settings.ray_address, else here, in turn).
    """
    import secrets

    from studio.shootout.report import render_report

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise JobError(f"The output folder '{out}' exists and is not a folder.")
    library = validate_shootout(images, presets, backends, settings, seed=seed,
                                variants=variants, size=size, frames=frames)  # fmt: skip
    base_seed = int(seed) if seed is not None else secrets.randbelow(2**31)
    cells = plan_cells(images, presets, backends, base_seed)
    cancel = cancel or threading.Event()
    started = time.perf_counter()
    rows: list[ShootoutRow] = []
    thumbnails: dict[int, str] = {}
    out.mkdir(parents=True, exist_ok=True)

    work = [(cell, Job(image=cell.image, preset=cell.preset, backend=cell.backend,
                       seed=cell.seed, variants=variants, size=size, frames=frames))
            for cell in cells]  # fmt: skip
    finished: dict[Cell, list[ShootoutRow]] = {}
    on_progress = progress or (lambda fraction, message: None)
    for done in (runner or run_cells_here)(work, out, settings, library, cancel, on_progress):
        finished[done.cell] = done.rows
        if done.photo is not None and done.cell.photo_index not in thumbnails:
            thumb = f"{done.cell.folder.split('/')[0]}/photo.jpg"
            _write_thumbnail(done.photo, out / thumb)
            thumbnails[done.cell.photo_index] = thumb
    for cell in cells:  # in plan order, however the runner finished them
        rows.extend(finished.get(cell, []))

    pick_winners(rows)
    result = ShootoutResult(
        out_dir=out,
        images=[str(i) for i in images],
        presets=_unique(presets),
        backends=_unique(backends),
        seed=base_seed,
        variants=int(variants),
        rows=rows,
        thumbnails=thumbnails,
        elapsed_s=round(time.perf_counter() - started, 2),
    )
    result.json = _write_text(out / "results.json", results_json(result))
    result.csv = _write_text(out / "results.csv", results_csv(result))
    result.report = _write_text(out / "report.html", render_report(result))
    return result


def _write_text(path: Path, text: str) -> Path:
    # Atomic, like the clips: a half-written report never replaces a good one.
    return write_text(text, path)
