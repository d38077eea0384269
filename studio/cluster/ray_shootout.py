"""A shootout's cells streamed through Ray Data: a pool of actors per kind of worker, results published here.

    cells (photo x preset x backend)          Ray Data, one row per cell
    photos: each once in the object store --> map_batches(CellWorker, batch_size=1,
                                                compute=ActorPoolStrategy(...))
                                                  engine cells: actors on ray_job_cpus CPUs
                                                  model cells:  one actor per GPU
    publish each cell as it streams back <---- the cell's files, rows and thumbnail

Each actor keeps its model manager (and the engine's helper models) for every cell it runs.
Ray Data streams: only the cells in flight and the results not yet written are held, so
a catalogue of photos goes through in bounded memory. An actor lost with its worker or
machine is restarted and its cell run again (ray_retries times); a cell that is still lost
gets a sentence in its rows, and the other cells finish.
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from studio.cluster.payload import (
    Outcome,
    collect,
    publish,
    render_settings,
    scratch,
    where,
    worker_settings,
)
from studio.cluster.ray_jobs import connect
from studio.errors import Cancelled, StudioError
from studio.jobs import Job
from studio.presets import Preset, PresetLibrary
from studio.settings import Settings
from studio.shootout.results import ShootoutRow
from studio.shootout.run import THUMB_SIDE, Cell, CellDone, ProgressFn, run_cell

log = logging.getLogger(__name__)


class CellWorker:
    """A Ray Data actor: runs shootout cells exactly as run_cell does here, in a scratch folder."""

    def __init__(self, render: dict, presets: dict[str, Preset], photos: list):
        from studio.models import ModelManager, set_manager

        self.settings = worker_settings(render)
        set_manager(ModelManager(settings=self.settings))  # one per actor, kept warm
        self.library = PresetLibrary(presets)
        self.photos = photos  # ObjectRefs of each photo's bytes, by photo index

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        outcomes = [pickle.dumps(self.one(json.loads(c), json.loads(j)))
                    for c, j in zip(batch["cell"], batch["job"], strict=True)]  # fmt: skip
        return {"pos": list(batch["pos"]), "outcome": outcomes}

    def one(self, cell_data: dict, job_data: dict) -> Outcome:
        import ray

        cell, job = Cell(**cell_data), Job.from_dict(job_data)
        photo = ray.get(self.photos[cell.photo_index])
        with scratch(cell.image, photo) as (folder, path):
            here = replace(cell, image=str(path))
            rows, rgb = run_cell(here, folder / "out", self.settings, self.library,
                                 replace(job, image=str(path)), threading.Event(),
                                 lambda fraction: None)  # fmt: skip
            files = collect(folder / "out", cell.image)
        node, pid = where()
        return Outcome(files=files, rows=rows, thumbnail=_thumbnail(rgb), node=node, pid=pid,
                       finished=time.time())  # fmt: skip


def _thumbnail(rgb: np.ndarray | None) -> np.ndarray | None:
    # Shrunk here exactly as the report's thumbnail is, so only a small picture travels back.
    if rgb is None:
        return None
    from PIL import Image

    im = Image.fromarray(rgb)
    im.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return np.asarray(im)


class RayCells:
    """A shootout cell runner (studio.shootout.run.CellRunner) that runs the cells on Ray."""

    def __init__(self, settings: Settings, address: str | None = None):
        self.ray = connect(address or settings.ray_address)
        # Which node and process made each cell, and when it finished there.
        self.done_by: dict[Cell, tuple[str, int, float]] = {}

    def __call__(
        self,
        work: list[tuple[Cell, Job]],
        out: Path,
        settings: Settings,
        library: PresetLibrary,
        cancel: threading.Event,
        progress: ProgressFn,
    ) -> Iterator[CellDone]:
        ray = self.ray
        # 1. Each photo once in the object store, shared by all its cells. A photo that cannot
        #    be read here fails its cells here, with the sentence a local run gives.
        photos: dict[int, Any] = {}
        remote: list[tuple[int, Cell, Job]] = []
        for pos, (cell, job) in enumerate(work):
            if cell.photo_index not in photos:
                try:
                    photos[cell.photo_index] = ray.put(Path(cell.image).read_bytes())
                except OSError:
                    photos[cell.photo_index] = None
            if photos[cell.photo_index] is None:
                rows, _ = run_cell(cell, out, settings, library, job, cancel, lambda f: None)
                yield CellDone(cell, rows, None)
            else:
                remote.append((pos, cell, job))
        refs = [photos.get(i) for i in range(max(photos, default=-1) + 1)]
        presets = {job.preset: library.get(job.preset) for _, _, job in remote}

        # 2. Stream the cells through Ray Data and publish each one as it comes back.
        by_pos = {pos: (cell, job) for pos, cell, job in remote}
        left = set(by_pos)
        done = len(work) - len(remote)
        rows_out = self._dataset(remote, settings, presets, refs)
        # iter(): the generator itself, so closing it stops the dataset and its actors.
        stream = iter(rows_out.iter_rows()) if rows_out is not None else iter(())
        try:
            for row in stream:
                if cancel.is_set():
                    raise Cancelled("The shootout was cancelled.")
                pos = int(row["pos"])
                cell, job = by_pos[pos]
                left.discard(pos)
                outcome: Outcome = pickle.loads(row["outcome"])
                self.done_by[cell] = (outcome.node, outcome.pid, outcome.finished)
                rows = self._publish(cell, job, outcome, out)
                done += 1
                progress(done / len(work), cell.label)
                yield CellDone(cell, rows, outcome.thumbnail)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # Cancel, or an error here
                close()

        # 3. Cells the cluster lost more often than it retries: their sentence, in their rows.
        for pos in sorted(left):
            cell, job = by_pos[pos]
            sentence = (
                f"The Ray cluster lost this cell's worker {settings.ray_retries + 1} times "
                "(a machine went away or ran out of memory), so it was not finished."
            )
            yield CellDone(cell, _error_rows(cell, job, sentence), None)

    def _dataset(self, remote, settings: Settings, presets, refs):
        """The cells as a Ray Data pipeline: engine cells on CPU actors, model cells on GPU ones."""
        if not remote:
            return None
        import ray.data

        # Ray Data's own bars are off (the CLI and the studio show theirs): no line saying so.
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        ray = self.ray
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        kinds = {
            "engine": [r for r in remote if r[1].backend == "engine"],
            "model": [r for r in remote if r[1].backend != "engine"],
        }
        render = render_settings(settings)
        datasets = []
        for kind, cells in kinds.items():
            if not cells:
                continue
            if kind == "engine":
                size = max(1, cpus // max(1, settings.ray_job_cpus))
                resources_each = {"num_cpus": max(1, settings.ray_job_cpus)}
            else:  # one actor per GPU; on a cluster without GPUs, one on its CPUs
                size = settings.ray_gpu_actors or max(1, gpus)
                resources_each = {"num_gpus": 1} if gpus else {"num_cpus": 1}
            size = min(size, len(cells))
            items = [{"pos": pos, "cell": json.dumps(asdict(cell)),
                      "job": json.dumps(job.to_dict())} for pos, cell, job in cells]  # fmt: skip
            # One cell per block: a block is what Ray retries, or drops when it keeps failing.
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            ds.context.enable_progress_bars = False  # the CLI and the studio show their own
            ds.context.max_errored_blocks = -1  # a lost cell is reported in its rows instead
            with warnings.catch_warnings():
                # Ray 2.60 has no named parameter for an actor's task retries yet.
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
                ds = ds.map_batches(
                    CellWorker,
                    batch_size=1,
                    # A fixed pool, one cell at a time each: a lost actor costs one cell.
                    compute=ray.data.ActorPoolStrategy(size=size,
                                                       max_tasks_in_flight_per_actor=1),
                    fn_constructor_kwargs={"render": render, "presets": presets,
                                           "photos": refs},
                    max_restarts=-1,
                    max_task_retries=settings.ray_retries,
                    **resources_each,
                )  # fmt: skip
            datasets.append(ds)
        return datasets[0] if len(datasets) == 1 else datasets[0].union(*datasets[1:])

    def _publish(self, cell: Cell, job: Job, outcome: Outcome, out: Path) -> list[ShootoutRow]:
        """Write a finished cell's files; a failed write fails the cell, as it would here."""
        rows = outcome.rows or []
        if outcome.error is not None:
            return _error_rows(cell, job, str(outcome.error))
        try:
            publish(outcome.files, out)
        except StudioError as exc:
            return _error_rows(cell, job, str(exc))
        return rows


def _error_rows(cell: Cell, job: Job, sentence: str) -> list[ShootoutRow]:
    return [ShootoutRow(cell.photo_index, cell.photo, cell.preset, cell.backend, v + 1,
                        cell.seed, error=sentence) for v in range(job.variants)]  # fmt: skip
