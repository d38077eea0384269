"""Variants side by side get their share of the cores; beside() runs a step on another thread."""

from __future__ import annotations

import threading
import time

import cv2
import pytest

from studio import cpu

WAIT_S = 10  # a deadlock fails the test instead of hanging it


@pytest.fixture
def opencv_threads():
    """OpenCV's process-wide thread count, put back as it was after the test."""
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(cpu, "cores", lambda: 8)


@pytest.mark.parametrize(
    ("parallel", "expected"),
    [(1, 8), (2, 4), (3, 2), (4, 2), (8, 1), (16, 1), (0, 8), (-1, 8)],
)
def test_each_task_gets_its_share_of_the_cores_and_at_least_one(eight_cores, parallel, expected):
    assert cpu.threads_each(parallel) == expected


def test_a_machine_whose_core_count_is_unknown_counts_as_one_core(monkeypatch):
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: None)
    assert cpu.cores() == 1
    assert cpu.threads_each(1) == 1 and cpu.threads_each(2) == 1


def test_a_section_sets_opencv_to_the_share_and_puts_the_old_count_back(
    eight_cores, opencv_threads
):
    cv2.setNumThreads(6)
    with cpu.parallel_section(2) as each:
        assert each == 4
        assert cv2.getNumThreads() == 4
    assert cv2.getNumThreads() == 6


@pytest.mark.parametrize("first_to_end", ["outer", "inner"])
def test_overlapping_sections_restore_the_count_from_before_the_first(
    eight_cores, opencv_threads, first_to_end
):
    cv2.setNumThreads(6)
    outer = cpu.parallel_section(2)
    inner = cpu.parallel_section(4)
    assert outer.__enter__() == 4
    assert cv2.getNumThreads() == 4
    assert inner.__enter__() == 2
    assert cv2.getNumThreads() == 2  # the smaller share of the two, process-wide
    ending = [outer, inner] if first_to_end == "outer" else [inner, outer]
    ending[0].__exit__(None, None, None)
    assert cv2.getNumThreads() <= 4  # a section still runs: no more than its share
    ending[1].__exit__(None, None, None)
    assert cv2.getNumThreads() == 6


def test_a_section_whose_body_raises_still_restores_and_closes(eight_cores, opencv_threads):
    cv2.setNumThreads(6)
    with pytest.raises(RuntimeError, match="render failed"), cpu.parallel_section(4):
        assert cv2.getNumThreads() == 2
        raise RuntimeError("render failed")
    assert cv2.getNumThreads() == 6
    # Had the failed section stayed counted, this one would be held to min(8, 6).
    with cpu.parallel_section(1) as each:
        assert each == 8 and cv2.getNumThreads() == 8
    assert cv2.getNumThreads() == 6


def test_beside_returns_the_result_of_fn_run_on_another_thread():
    def add(a, b, *, scale):
        return (a + b) * scale, threading.get_ident()

    value, ident = cpu.beside(add, 2, 3, scale=10).result(timeout=WAIT_S)
    assert value == 50
    assert ident != threading.get_ident()


def test_beside_reraises_the_tasks_exception_from_result():
    def broken():
        raise ValueError("bad depth map")

    future = cpu.beside(broken)
    with pytest.raises(ValueError, match="bad depth map"):
        future.result(timeout=WAIT_S)


def test_beside_inside_a_beside_task_runs_inline_in_that_thread():
    def inner(x):
        return x * 2, threading.get_ident()

    def broken_inner():
        raise KeyError("inner")

    def outer():
        nested = cpu.beside(inner, 21)
        done_on_return = nested.done()
        failed = cpu.beside(broken_inner)
        return threading.get_ident(), done_on_return, nested.result(timeout=0), failed

    outer_ident, done_on_return, (value, inner_ident), failed = cpu.beside(outer).result(
        timeout=WAIT_S
    )
    assert done_on_return
    assert value == 42 and inner_ident == outer_ident
    assert failed.done()
    with pytest.raises(KeyError, match="inner"):
        failed.result(timeout=0)


def test_many_callers_of_nested_beside_at_once_do_not_deadlock_the_pool(monkeypatch):
    # A fresh pool of two threads, far fewer than the callers: had the nested calls been
    # queued behind the outer tasks holding both threads, every outer task would wait forever.
    monkeypatch.setattr(cpu, "cores", lambda: 2)
    monkeypatch.setattr(cpu, "_pool", None)
    callers = 8

    def inner(i):
        return i * i, threading.get_ident()

    def task(i):
        time.sleep(0.01)  # hold the pool thread while the other callers queue up
        value, ident = cpu.beside(inner, i).result(timeout=WAIT_S)
        return value, ident == threading.get_ident()

    results: dict[int, tuple[int, bool]] = {}
    errors: list[BaseException] = []

    def caller(i):
        try:
            results[i] = cpu.beside(task, i).result(timeout=WAIT_S)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(2 * WAIT_S)
    finally:
        if cpu._pool is not None:
            cpu._pool.shutdown(wait=False, cancel_futures=True)
    assert not errors
    assert results == {i: (i * i, True) for i in range(callers)}
