"""Studio jobs on a Ray cluster: engine jobs as CPU tasks, model jobs in one actor per GPU.

    driver (CLI or studio)                      Ray cluster
    ----------------------                      -----------
    prepare_job (checks it) ---- Job as data ---> engine: a task on ray_job_cpus CPUs
               + photo bytes                      models: ModelWorker actor, one per GPU,
                                                          holding a ModelManager (warm)
    publish (staging helpers) <-- files as bytes -- run_job in a scratch folder
    History, JobUpdates

A job lost with its worker or machine is run again (max_retries, max_task_retries); a job
that fails there comes back as its sentence; Cancel cancels the Ray task (ray.cancel).
Ray is imported only when a runner is made.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.backends.base import RenderContext
from studio.clips import Clip, JobUpdate
from studio.cluster.payload import (
    Outcome,
    clips_of,
    publish,
    rank_clips,
    render_job,
    render_settings,
    where,
    worker_settings,
)
from studio.errors import Cancelled, ClusterError, failure_message
from studio.jobs import PreparedJob
from studio.settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = "motion-studio"
# A job that raises one of these on a worker (a file hiccup on its disk) is run again;
# StudioErrors come back as sentences instead, since running them again cannot help.
RETRY_ON = [OSError]
CANCEL_POLL_S = 0.2


NOT_INSTALLED = (
    "Ray is not installed here; install it with 'pip install -r requirements-ray.txt', "
    "or run without --ray."
)


def import_ray():
    """The ray module, or a sentence saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(NOT_INSTALLED) from None
    return ray


def is_loopback(address: str) -> bool:
    """Whether a Ray address (host:port, ray://host:port) names this machine's loopback."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a host:port or ray://host:port address; None for 'auto' and the like."""
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def _cannot_reach(address: str) -> str:
    return (
        f"Cannot reach the Ray cluster at {address}; check that the cluster is running and "
        "that the address (its head node's host:port) is right."
    )


def connect(address: str):
    """Join the Ray cluster at address (once per process); ClusterError when it cannot."""
    if not address:
        raise ClusterError("No Ray cluster address was given; use --ray HOST:PORT.")
    if importlib.util.find_spec("ray") is None:  # said first: no address helps without it
        raise ClusterError(NOT_INSTALLED)
    where = _host_port(address)
    if where is not None:
        # ray.init retries an unreachable address for minutes; a closed port is said at once.
        try:
            socket.create_connection(where, timeout=5).close()
        except OSError:
            raise ClusterError(_cannot_reach(address)) from None
    if is_loopback(address) and "ray" not in sys.modules:
        # Ray on Linux swaps 127.0.0.1 for the machine's network address unless this is 0;
        # a cluster started on loopback must be joined on loopback.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        log.debug("ray.init(%r) failed", address, exc_info=True)
        raise ClusterError(_cannot_reach(address)) from exc
    return ray


def _watch_cancel(cancel: threading.Event, stop: threading.Event) -> None:
    """Turn ray.cancel() of the running call into the render's cancel flag."""
    import ray

    context = ray.get_runtime_context()
    while not stop.wait(CANCEL_POLL_S):
        if context.is_canceled():
            cancel.set()
            return


def _with_cancel_watch(run):
    cancel, stop = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_watch_cancel, args=(cancel, stop), daemon=True)
    watcher.start()
    try:
        outcome = run(cancel)
    finally:
        stop.set()
    outcome.node, outcome.pid = where()
    return outcome


def engine_task(job: dict, preset: Any, photo: bytes, render: dict) -> Outcome:
    """A Ray task: one engine job on a CPU worker (ray.cancel interrupts it)."""
    return _with_cancel_watch(lambda cancel: render_job(job, preset, photo, render, cancel))


class ModelWorker:
    """A Ray actor holding one GPU and a model manager, so each checkpoint loads once and stays
    warm for every job sent to it; jobs run one at a time, as on a local GPU."""

    def __init__(self, render: dict):
        import torch

        from studio.models import ModelManager, set_manager

        # Ray holds the actor to its CPU share (OMP_NUM_THREADS=1), but torch's CPU kernels
        # sum in a different order with another thread count: as many threads as a local run
        # on this machine uses keep a model's clip identical to that run's.
        torch.set_num_threads(os.cpu_count() or 1)
        self.render = render
        self.settings = worker_settings(render)
        self.manager = ModelManager(settings=self.settings)
        set_manager(self.manager)  # the backends this process builds ask it for pipelines

    def run(self, job: dict, preset: Any, photo: bytes) -> Outcome:
        return _with_cancel_watch(
            lambda cancel: render_job(job, preset, photo, self.render, cancel, self.settings)
        )

    def loads(self) -> int:
        """How many times a pipeline was loaded here (a warm actor does not load again)."""
        return self.manager.loads


@dataclass
class Submitted:
    """One job sent to the cluster: where its result will appear and what it is for."""

    ref: Any  # ray.ObjectRef of an Outcome
    prepared: PreparedJob
    out_dir: Path
    actor: Any = None


class RayRunner:
    """Runs prepared studio jobs on a Ray cluster and publishes what comes back locally."""

    def __init__(self, settings: Settings, address: str | None = None):
        self.settings = settings
        self.ray = connect(address or settings.ray_address)
        self.render = render_settings(settings)
        ray = self.ray
        self._engine = ray.remote(engine_task).options(
            num_cpus=max(1, settings.ray_job_cpus),
            max_retries=settings.ray_retries,
            retry_exceptions=RETRY_ON,
        )
        self._actors: list[Any] | None = None
        self._busy: dict[Any, int] = {}
        self._lock = threading.Lock()

    # -- sending work ------------------------------------------------------------------

    def model_actors(self) -> list[Any]:
        """The model actors, made on first use: one per GPU of the cluster (one on its CPUs
        when it has none, so model jobs still run, slowly, as they would here)."""
        with self._lock:
            if self._actors is None:
                gpus = int(self.ray.cluster_resources().get("GPU", 0))
                count = self.settings.ray_gpu_actors or max(1, gpus)
                options: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": 1}
                cls = self.ray.remote(ModelWorker).options(
                    **options, max_restarts=-1, max_task_retries=self.settings.ray_retries
                )
                self._actors = [cls.remote(self.render) for _ in range(count)]
                self._busy = {i: 0 for i in range(count)}
                log.info("%d model actor(s) on %s", count, "GPUs" if gpus else "CPUs")
            return self._actors

    def submit(self, prepared: PreparedJob, out_dir: str | Path, source: str | None = None):
        """Send one prepared job to the cluster with its photo's bytes; returns a Submitted."""
        photo = Path(source or prepared.job.image).read_bytes()
        job = prepared.job.to_dict()
        if prepared.job.backend == "engine":
            ref = self._engine.remote(job, prepared.preset, photo, self.render)
            return Submitted(ref, prepared, Path(out_dir))
        actors = self.model_actors()
        with self._lock:  # the actor with the fewest jobs waiting
            index = min(self._busy, key=self._busy.get)
            self._busy[index] += 1
        ref = (
            actors[index].run.options(retry_exceptions=RETRY_ON).remote(job, prepared.preset, photo)
        )
        return Submitted(ref, prepared, Path(out_dir), index)

    def cancel(self, sent: Submitted) -> None:
        """Stop a job's Ray work: a pending one never starts, a running one stops rendering."""
        try:
            self.ray.cancel(sent.ref)
        except Exception:  # already finished or gone: nothing left to stop
            log.debug("ray.cancel failed", exc_info=True)
        self._done(sent)

    def _done(self, sent: Submitted) -> None:
        if sent.actor is not None:
            with self._lock:
                self._busy[sent.actor] = max(0, self._busy[sent.actor] - 1)
                sent.actor = None

    # -- results -----------------------------------------------------------------------

    def outcome(self, sent: Submitted) -> Outcome:
        """The job's outcome; Ray's own failures (a worker lost once too often) as sentences."""
        ex = self.ray.exceptions
        try:
            return self.ray.get(sent.ref)
        except ex.TaskCancelledError:
            raise Cancelled("Generation was cancelled.") from None
        except ex.RayTaskError as exc:  # an error we let through (OSError) after its retries
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return Outcome(error=ClusterError(failure_message(cause)))
        except ex.RayError as exc:  # the worker, its actor or its machine was lost
            log.warning("a job was lost on the cluster: %s", exc)
            tries = self.settings.ray_retries + 1
            return Outcome(error=ClusterError(
                f"The Ray cluster lost this job's worker {tries} times (a machine went away "
                "or ran out of memory), so it was not finished; try again."
            ))  # fmt: skip
        finally:
            self._done(sent)

    def finish(self, sent: Submitted, outcome: Outcome) -> list[Clip]:
        """Publish a finished job's files into its folder; raises the job's error instead."""
        if outcome.error is not None:
            raise outcome.error
        publish(outcome.files, sent.out_dir)
        return clips_of(outcome.files, sent.out_dir)

    # -- whole jobs --------------------------------------------------------------------

    def run_job(
        self,
        prepared: PreparedJob,
        out_dir: str | Path,
        settings: Settings | None = None,
        ctx: RenderContext | None = None,
        source: str | None = None,
        poll_s: float = 0.5,
    ) -> Iterator[JobUpdate]:
        """clips.run_job's updates for a job rendered on the cluster.

        Clips appear when the whole job is back (they are published together). Closing this
        generator, or setting ctx.cancel, cancels the Ray work; nothing of it is kept.
        """
        ctx = ctx or RenderContext()
        yield JobUpdate(0.0, "Sending the job to the Ray cluster…", [], seed=prepared.seed,
                        warnings=prepared.warnings)  # fmt: skip
        sent = self.submit(prepared, out_dir, source)
        started, finished = time.perf_counter(), False
        try:
            while not self.ray.wait([sent.ref], timeout=poll_s)[0]:
                ctx.check_cancel()
                waited = time.perf_counter() - started
                yield JobUpdate(0.0, f"Rendering on the Ray cluster ({waited:.0f} s)…", [],
                                seed=prepared.seed, warnings=prepared.warnings)  # fmt: skip
            finished = True
            clips = self.finish(sent, self.outcome(sent))
        finally:
            if not finished:
                self.cancel(sent)
        yield from self._updates(prepared, sent.out_dir, clips)

    def jobs_at_once(self) -> int:
        """Twice the jobs the cluster runs at once (its CPUs over ray_job_cpus, and its model
        actors), so a worker never waits while the driver publishes."""
        have = self.ray.cluster_resources()
        slots = int(have.get("CPU", 1)) // max(1, self.settings.ray_job_cpus)
        return max(2, 2 * (slots + int(have.get("GPU", 0))))

    def _updates(self, prepared: PreparedJob, out: Path, clips: list[Clip]) -> Iterator[JobUpdate]:
        n = len(prepared.plans)
        for done in range(1, len(clips) + 1):
            yield JobUpdate(done / n, f"Rendered {done} of {n} variants", clips[:done],
                            clips[done - 1], seed=prepared.seed)  # fmt: skip
        ranking, badges = rank_clips(clips)
        yield JobUpdate(1.0, f"Done: {len(clips)} variants", clips, None, True,
                        out / "manifest.json", prepared.seed, prepared.warnings, ranking,
                        badges)  # fmt: skip

    def close(self) -> None:
        """Let the model actors go (their GPUs, and the models they hold, are freed)."""
        with self._lock:
            actors, self._actors = self._actors or [], None
        for actor in actors:
            self.ray.kill(actor)

    def model_loads(self) -> list[int]:
        """Pipeline loads per model actor (each checkpoint should load once per actor)."""
        return self.ray.get([actor.loads.remote() for actor in self.model_actors()])


_RUNNERS: dict[tuple[Settings, str], RayRunner] = {}
_RUNNERS_LOCK = threading.Lock()


def ray_runner(settings: Settings, address: str | None = None) -> RayRunner:
    """The process's runner for these settings and cluster (connecting once)."""
    key = (settings, address or settings.ray_address)
    with _RUNNERS_LOCK:
        if key not in _RUNNERS:
            _RUNNERS[key] = RayRunner(settings, address)
        return _RUNNERS[key]
