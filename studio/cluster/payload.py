"""A job's folder as plain data: rendered in a scratch folder on a Ray worker, published here by the driver.

A worker runs the same prepare_job/run_job (or shootout cell) as a local run, into a scratch
folder, and sends back every file it wrote: clips and posters as bytes, manifests as data.
The driver writes them through the same staging helpers as a local job (hidden temp names,
flushed, then renamed manifest first and MP4 last), so a folder made on the cluster cannot
be told from one made here, and a crash leaves nothing half-written.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from studio.backends.base import RenderContext
from studio.clips import Clip, run_job
from studio.encode import write_failure, write_together
from studio.errors import ClusterError, JobError, StudioError, failure_message
from studio.jobs import Job, prepare_job
from studio.presets import Preset, PresetLibrary
from studio.settings import Settings

log = logging.getLogger(__name__)

# The settings that decide what a clip looks like travel from the driver, so a clip made on
# the cluster is the one this machine would make; the rest (model cache, memory budget,
# token) belong to the worker's own machine and come from its environment.
RENDER_FIELDS = ("long_side", "crf", "x264_preset", "x264_params", "score", "max_upload_mb", "depth",
                 "depth_model", "matte_model")  # fmt: skip
SUMMARY = "manifest.json"


def render_settings(settings: Settings) -> dict[str, Any]:
    """What a worker needs to render exactly as this machine would (plain, picklable data)."""
    values = {name: getattr(settings, name) for name in RENDER_FIELDS}
    # A job holds ray_job_cpus CPUs on the cluster: its variants render in that many threads.
    values["workers"] = max(1, settings.ray_job_cpus)
    return values


def worker_settings(render: dict[str, Any]) -> Settings:
    """The worker's settings: its own machine's, with the driver's render settings on top."""
    return Settings.from_env(**render)


@dataclass
class Outcome:
    """What a worker sends back for one job or shootout cell."""

    files: dict[str, bytes | dict] = field(default_factory=dict)  # relative path -> content
    error: StudioError | None = None  # the job failed there, with this sentence
    rows: list | None = None  # a shootout cell's rows (studio.shootout.results.ShootoutRow)
    thumbnail: np.ndarray | None = None  # a shootout cell's photo, at thumbnail size
    node: str = ""  # the Ray node and process that did the work (logs, tests)
    pid: int = 0
    finished: float = 0.0  # time.time() there when the work was done (logs, tests)


@contextmanager
def scratch(name: str, photo: bytes):
    """A scratch folder holding the photo under its own file name; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="studio-ray-") as tmp:
        folder = Path(tmp)
        # The file name shows up in shootout rows and reports: keep the driver's.
        path = folder / "photo" / (Path(name).name or "photo")
        path.parent.mkdir()
        path.write_bytes(photo)
        yield folder, path


def collect(folder: Path, image: str) -> dict[str, bytes | dict]:
    """Every file under folder by relative path; manifests as data, pointing at the driver's photo."""
    files: dict[str, bytes | dict] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("job"), dict):
                data["job"]["image"] = image  # not the scratch copy's path
            files[rel] = data
        else:
            files[rel] = path.read_bytes()
    return files


def render_job(
    job: dict[str, Any],
    preset: Preset,
    photo: bytes,
    render: dict[str, Any],
    cancel: threading.Event,
    settings: Settings | None = None,
) -> Outcome:
    """On a worker: prepare and run one studio job in a scratch folder; its files, or its error.

    A StudioError (the photo, the preset, a model that is not here) comes back as the job's
    sentence: running it again elsewhere would not help. OSError passes through, so Ray runs
    the job again (retry_exceptions); a bug comes back as failure_message's sentence, logged
    here with its traceback.
    """
    settings = settings or worker_settings(render)
    image = job["image"]
    try:
        with scratch(f"photo{Path(str(image)).suffix}", photo) as (folder, path):
            local = Job.from_dict({**job, "image": str(path)})
            library = PresetLibrary({preset.id: preset})
            prepared = prepare_job(local, settings, library)
            for _ in run_job(prepared, folder / "job", settings, RenderContext(cancel=cancel)):
                pass
            return Outcome(files=collect(folder / "job", image))
    except StudioError as exc:
        return Outcome(error=exc)
    except OSError:
        raise
    except Exception as exc:
        log.exception("a job failed on the cluster")
        return Outcome(error=ClusterError(failure_message(exc)))


def publish(files: dict[str, bytes | dict], out: Path) -> list[Path]:
    """Write a worker's files into out atomically: manifests, then posters, the MP4s, and the
    job's manifest.json last (it lists the clips). Nothing is left behind when one fails."""
    out.mkdir(parents=True, exist_ok=True)
    order = sorted(files, key=_publish_rank)
    try:
        return write_together([(out / _safe(rel), files[rel]) for rel in order])
    except OSError as exc:
        raise write_failure(out, exc, "video") from exc


def _publish_rank(rel: str) -> tuple[int, str]:
    # The MP4's name is what History and listings look for, so a clip appears only after its
    # manifest and poster; start-up recovery removes a manifest left alone by a crash.
    name = PurePosixPath(rel)
    if name.name == SUMMARY:
        return 3, rel
    return {".json": 0, ".mp4": 2}.get(name.suffix, 1), rel


def _safe(rel: str) -> Path:
    # Files come from a worker: never let one name a place outside the job's folder.
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("..", "") for p in parts):
        raise JobError("The cluster sent back a file with an unusable name.")
    return Path(*parts)


def clips_of(files: dict[str, bytes | dict], out: Path) -> list[Clip]:
    """The published clips of a job, rebuilt from their manifests, in variant order."""
    clips = []
    for rel, data in files.items():
        if not isinstance(data, dict) or "video" not in data or "variant" not in data:
            continue
        video, plan = data["video"], data["plan"]
        mp4 = out / _safe(rel).parent / video["file"]
        clips.append(Clip(int(data["variant"]) - 1, int(data["seed"]), mp4, out / _safe(rel),
                          int(video["width"]), int(video["height"]), int(video["frames"]),
                          int(plan["fps"]), plan, data.get("timings", {}), data.get("score"),
                          data))  # fmt: skip
    return sorted(clips, key=lambda c: c.index)


def rank_clips(clips: list[Clip]) -> tuple[list[int] | None, dict[int, list[str]] | None]:
    """Clip indices best-first and badges by index, when every clip was scored.

    # Copied from studio.clips._rank: the Generate tab ranks takes made on the cluster alike.
    """
    if not clips or any(c.score is None for c in clips):
        return None, None
    from studio.scoring import ClipScore, badges, rank

    scores = [ClipScore.from_dict(c.score) for c in clips]
    order = rank(scores)
    return [clips[i].index for i in order], {clips[i].index: b for i, b in badges(scores).items()}


def where() -> tuple[str, int]:
    """This worker's Ray node id and process id."""
    import ray

    return ray.get_runtime_context().get_node_id(), os.getpid()
