"""Share the CPU between the studio's own parallel work and the libraries' thread pools.

The studio renders a job's variants in parallel threads, one per core. OpenCV and x264 would
each start a thread pool per call on top of that, and on a busy machine those pools mostly
wait on each other: measured on 2 cores, a frame took 25 ms of CPU with OpenCV's pool and
15 ms without it, in the same wall time, and an x264 encode 1.0 s of CPU instead of 0.7 s.
So while variants run side by side, each one gets its share of the cores and no more.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_lock = threading.Lock()
_active = 0  # parallel sections running now (several jobs may run at once in the server)
_saved: int | None = None  # OpenCV's thread count from before the first of them


def cores() -> int:
    return os.cpu_count() or 1


def threads_each(parallel: int) -> int:
    """Threads one of `parallel` tasks running side by side may use: its share of the cores."""
    return max(1, cores() // max(1, parallel))


@contextlib.contextmanager
def parallel_section(parallel: int) -> Iterator[int]:
    """While `parallel` tasks run side by side, OpenCV uses their share of the cores each.

    OpenCV's thread count is process-wide, so overlapping sections (two jobs in the server)
    are counted, and the count from before the first one is put back when the last one ends.
    Yields the threads each task may use (for an encoder's own thread count).
    """
    import cv2

    global _active, _saved
    each = threads_each(parallel)
    with _lock:
        if _active == 0:
            _saved = cv2.getNumThreads()
        _active += 1
        cv2.setNumThreads(min(each, cv2.getNumThreads()) if _active > 1 else each)
    try:
        yield each
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                cv2.setNumThreads(_saved)
                _saved = None


_pool = None
_inside = threading.local()  # set on the pool's own threads


def _run_marked(fn, args, kwargs):
    _inside.active = True
    try:
        return fn(*args, **kwargs)
    finally:
        _inside.active = False


def beside(fn, *args, **kwargs) -> Future:
    """Start fn(*args, **kwargs) on another thread now; .result() waits for it (or re-raises).

    For independent steps of one serial stage (building a photo's scene) whose libraries
    release the GIL (OpenCV, most of NumPy), so a second core is not left idle. Called from
    one of those threads it runs at once, in that thread: a task waiting on another that
    waits for a free thread could otherwise stall the pool when several jobs run at once.
    """
    global _pool
    if getattr(_inside, "active", False):
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to .result(), as the pool would
            done.set_exception(exc)
        return done
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(2, cores()), thread_name_prefix="beside")
    return _pool.submit(_run_marked, fn, args, kwargs)
