"""Share one machine between many users: a fair line per device, and a cap on each user's jobs."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import JobError
from studio.models.device import resolve_device
from studio.serve.history import History, open_history
from studio.settings import Settings

if TYPE_CHECKING:
    from studio.backends.base import RenderContext
    from studio.clips import Clip, JobUpdate
    from studio.jobs import PreparedJob

log = logging.getLogger(__name__)

ENGINE_LANE = "engine"
RAY_LANE = "the Ray cluster"  # every job, when the studio sends its jobs to a cluster
# How many clients' newest jobs are remembered for the Cancel note; the oldest go first.
MAX_REMEMBERED_CLIENTS = 1000


def lane_for(backend_id: str, params: dict | None = None) -> str:
    """The device a job will occupy: the CPU engine, or the accelerator a model runs on.

    Model jobs on the same GPU must take turns (two pipelines on one card run out of memory
    or thrash it); engine jobs share the CPU cores instead.
    """
    if backend_id == "engine":
        return ENGINE_LANE
    # The same rule the model manager loads by: the job's device, else this machine's default.
    device = resolve_device((params or {}).get("device")).strip().lower()
    if device == "cuda":
        device = "cuda:0"  # what "cuda" means to torch, so both spellings share one line
    return device if device.startswith(("cuda:", "mps")) else f"{device} (model)"


@dataclass
class Ticket:
    """One job's place: waiting in its device's line, then holding one of its slots."""

    lane: str
    client: str
    running: bool = False
    started: threading.Event = field(default_factory=threading.Event)


class JobQueue:
    """A first-come-first-served line per device, with a slot count per device.

    Jobs wait inside their own handler (so each user sees where they are in line and
    Cancel works while waiting), and each client may hold only a few tickets at once so
    one person cannot fill the machine.
    """

    def __init__(self, slots: dict[str, int], max_per_client: int, default_slots: int = 1):
        self._slots = dict(slots)
        self._default_slots = default_slots
        self.max_per_client = max_per_client
        self._lock = threading.Condition()
        self._waiting: dict[str, deque[Ticket]] = {}
        self._running: dict[str, int] = {}
        self._per_client: dict[str, int] = {}

    def slots(self, lane: str) -> int:
        return self._slots.get(lane, self._default_slots)

    def join(self, client: str, lane: str) -> Ticket:
        """Take a place in line, or refuse when this client already has enough jobs."""
        with self._lock:
            held = self._per_client.get(client, 0)
            if self.max_per_client > 0 and held >= self.max_per_client:
                jobs = "job" if self.max_per_client == 1 else "jobs"
                raise JobError(
                    f"You already have {held} {jobs} queued or running (the limit is "
                    f"{self.max_per_client}); wait for one to finish, then try again."
                )
            self._per_client[client] = held + 1
            ticket = Ticket(lane, client)
            self._waiting.setdefault(lane, deque()).append(ticket)
            self._promote(lane)
            return ticket

    def ahead(self, ticket: Ticket) -> int:
        """How many jobs are in front of this one (0 once it runs or is next)."""
        with self._lock:
            if ticket.running:
                return 0
            line = self._waiting.get(ticket.lane, deque())
            return line.index(ticket) if ticket in line else 0

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        """Block up to timeout for the ticket's turn; True once it holds a slot."""
        return ticket.started.wait(timeout)

    def leave(self, ticket: Ticket) -> None:
        """Give back the slot (or the place in line); always called, also on error/cancel."""
        with self._lock:
            if ticket.running:
                ticket.running = False
                self._running[ticket.lane] -= 1
            else:
                line = self._waiting.get(ticket.lane)
                if line is not None and ticket in line:
                    line.remove(ticket)
            self._per_client[ticket.client] -= 1
            if not self._per_client[ticket.client]:
                del self._per_client[ticket.client]
            self._promote(ticket.lane)

    def load(self) -> dict[str, tuple[int, int]]:
        """(running, waiting) per lane, for logs and tests."""
        with self._lock:
            lanes = set(self._waiting) | set(self._running)
            return {
                lane: (self._running.get(lane, 0), len(self._waiting.get(lane, ())))
                for lane in lanes
            }

    def _promote(self, lane: str) -> None:
        line = self._waiting.get(lane)
        while line and self._running.get(lane, 0) < self.slots(lane):
            ticket = line.popleft()
            ticket.running = True
            self._running[lane] = self._running.get(lane, 0) + 1
            ticket.started.set()


def wait_message(ahead: int, lane: str) -> str:
    where = "the CPU engine" if lane == ENGINE_LANE else lane
    if ahead <= 0:
        return f"Waiting for a free slot on {where}…"
    jobs = "job" if ahead == 1 else "jobs"
    return f"Queued: {ahead} {jobs} ahead of yours on {where}…"


def client_key(request: Any) -> str:
    """Who is asking, for the per-client limit: the login, else the browser session."""
    if request is None:
        return "local"
    user = getattr(request, "username", None)
    if user:
        return f"user:{user}"
    session = getattr(request, "session_hash", None)
    if session:
        return f"session:{session}"
    client = getattr(request, "client", None)
    return f"host:{getattr(client, 'host', 'unknown')}"


class JobRunner:
    """Runs the studio's jobs for many users: waits for the job's turn on its device, streams
    run_job's updates, records each finished clip in History, and always gives the slot back."""

    def __init__(self, settings: Settings, history: History | None = None):
        self.settings = settings
        self.history = history or open_history(settings.outputs_dir)
        # On a cluster, Ray schedules the jobs: the line only holds what the studio accepts.
        slots = {ENGINE_LANE: settings.engine_jobs, RAY_LANE: settings.max_queue}
        self.queue = JobQueue(slots, settings.max_jobs_per_client)
        self._latest: dict[str, tuple[Path, threading.Event]] = {}  # client -> newest job
        self._latest_lock = threading.Lock()
        self._cluster = None  # studio.cluster.ray_jobs.RayRunner, made at the first job

    def cluster(self):
        """The Ray runner when settings.ray_address names a cluster (connecting once), else None."""
        if self._cluster is None and self.settings.ray_address:
            from studio.cluster.ray_jobs import ray_runner

            self._cluster = ray_runner(self.settings)
        return self._cluster

    def cancelled_note(self, client: str, timeout: float = 10.0) -> str:
        """What the user is told after Cancel: the job stopped, and how many takes were kept.

        Waits (briefly) for the job to finish closing, so a take that was being published
        as Cancel arrived is counted exactly when it is in History.
        """
        with self._latest_lock:
            latest = self._latest.get(client)
        if latest is None:
            return "Nothing was running to cancel."
        out_dir, closed = latest
        closed.wait(timeout)
        kept = len(self.history.in_folder(out_dir))
        takes = "take was" if kept == 1 else "takes were"
        where = " (they are in History)" if kept else ""
        return f"**Cancelled.** {kept} finished {takes} kept{where}."

    def run(
        self,
        prepared: PreparedJob,
        out_dir: str | Path,
        ctx: RenderContext,
        client: str = "local",
        poll_s: float = 0.5,
    ) -> Iterator[JobUpdate]:
        from studio.clips import JobUpdate, run_job

        cluster = self.cluster()
        source = prepared.job.image  # the upload itself: a cluster's workers get its bytes
        # The upload's path holds the user's file name ("jane-home.jpg"): manifests written for
        # the web keep only the photo's hash, which is enough to reproduce the clip.
        anonymous = replace(prepared.job, image=f"upload:{prepared.photo.sha256[:16]}")
        prepared = replace(prepared, job=anonymous)
        lane = RAY_LANE if cluster else lane_for(prepared.job.backend, prepared.job.params)
        ticket = self.queue.join(client, lane)
        closed = threading.Event()
        with self._latest_lock:
            self._latest.pop(client, None)  # re-inserted last: the dict stays oldest-first
            self._latest[client] = (Path(out_dir), closed)
            if len(self._latest) > MAX_REMEMBERED_CLIENTS:  # browser sessions come and go
                del self._latest[next(iter(self._latest))]
        jobs = None
        try:
            while not self.queue.wait(ticket, poll_s):
                # Yielding while waiting keeps Cancel working and tells the user where they are.
                ctx.check_cancel()
                note = wait_message(self.queue.ahead(ticket), ticket.lane)
                yield JobUpdate(0.0, note, [], seed=prepared.seed)
            if cluster is not None:  # closing it (Cancel) cancels the Ray work
                jobs = cluster.run_job(prepared, out_dir, self.settings, ctx, source=source)
            else:
                jobs = run_job(prepared, out_dir, self.settings, ctx)
            for update in jobs:
                if update.new_clip is not None:
                    self._remember(update.new_clip)
                yield update
        finally:
            if jobs is not None:
                # Stops the variant workers (run_job sets the cancel flag), waits for them, and
                # removes their temp files; takes already published stay.
                jobs.close()
            self.queue.leave(ticket)
            with contextlib.suppress(OSError):
                Path(out_dir).rmdir()  # only if the job left nothing behind
            closed.set()

    def _remember(self, clip: Clip) -> None:
        try:
            self.history.record(clip.path, clip.manifest, clip.manifest_data)
        except Exception:  # the clip is safe on disk; reconcile() picks it up at the next start
            log.exception("Could not record %s in History", clip.path)
