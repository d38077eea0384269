"""Running the studio's jobs and shootouts on a Ray cluster (optional: nothing here imports Ray until it is used)."""

from __future__ import annotations

from collections.abc import Callable

from studio.settings import Settings


def job_runner(settings: Settings) -> Callable:
    """clips.run_job, or the Ray cluster's (same arguments, same updates) with settings.ray_address."""
    if settings.ray_address:
        from studio.cluster.ray_jobs import ray_runner

        return ray_runner(settings).run_job
    from studio.clips import run_job

    return run_job


def jobs_at_once(settings: Settings) -> int:
    """How many jobs to keep in flight: one here; on a cluster, twice what it runs at once, so
    it never waits for work while a catalogue of photos is not all held in memory together."""
    if not settings.ray_address:
        return 1
    from studio.cluster.ray_jobs import ray_runner

    return ray_runner(settings).jobs_at_once()


def cell_runner(settings: Settings):
    """The shootout cell runner for the Ray cluster at settings.ray_address (joining it now,
    before anything is written), or None: run the cells here."""
    if not settings.ray_address:
        return None
    from studio.cluster.ray_shootout import RayCells

    return RayCells(settings)
