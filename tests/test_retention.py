"""Retention: old clips and clips beyond the quota go, oldest first; selected and fresh ones stay."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from studio.clips import run_job
from studio.jobs import Job, prepare_job
from studio.serve import retention
from studio.serve.history import open_history
from studio.serve.retention import Item, Policy, plan_cleanup, remove_stray_temp_files, sweep

DAY = 86400.0
NOW = 1_700_000_000.0


def item(name: str, age_days: float, mb: float) -> Item:
    p = Path(f"/out/{name}.mp4")
    return Item(p, (p, p.with_suffix(".json")), NOW - age_days * DAY, int(mb * 1e6))


def names(items) -> list[str]:
    return [i.clip.stem for i in items]


def test_clips_older_than_the_retention_period_are_planned_for_deletion():
    items = [item("new", 1, 1), item("old", 8, 1), item("older", 30, 1)]
    plan = plan_cleanup(items, now=NOW, policy=Policy(7 * DAY, None, grace_s=0))
    assert names(plan) == ["older", "old"]


def test_beyond_the_quota_the_oldest_go_first_until_it_fits():
    items = [item(f"c{i}", age_days=i, mb=10) for i in range(1, 6)]  # 50 MB, c5 oldest
    plan = plan_cleanup(items, now=NOW, policy=Policy(None, 25_000_000, grace_s=0))
    assert names(plan) == ["c5", "c4", "c3"]


def test_protected_and_fresh_clips_are_never_planned_even_over_quota():
    items = [item("starred", 40, 10), item("old", 20, 10), item("fresh", 0.01, 10)]
    policy = Policy(7 * DAY, 0, grace_s=3600)
    plan = plan_cleanup(items, now=NOW, policy=policy, protected={Path("/out/starred.mp4")})
    assert names(plan) == ["old"]


def test_no_limits_means_nothing_is_deleted():
    items = [item("a", 400, 1000)]
    assert plan_cleanup(items, now=NOW, policy=Policy(None, None, grace_s=0)) == []


def test_settings_give_sane_defaults():
    from studio.settings import Settings

    policy = retention.policy_from(Settings())
    assert policy.max_age_s == 7 * DAY and policy.quota_bytes == 10 * 1024**3
    assert retention.policy_from(Settings(retention_days=0, outputs_quota_gb=0)).quota_bytes is None
    assert retention.upload_cache_policy(Settings()) == (300, 3600)
    env = {"STUDIO_RETENTION_DAYS": "0.5", "STUDIO_OUTPUTS_QUOTA_GB": "2"}
    assert Settings.from_env(env).retention_days == 0.5


# --- real files -------------------------------------------------------------------------------


@pytest.fixture
def two_jobs(settings, samples):
    """Two real jobs on disk: the first made 10 days ago."""
    settings = replace(settings, retention_grace_minutes=0)
    jobs = []
    for n, seed in enumerate((1, 2)):
        job = Job(image=str(samples["product"]), preset="product/glint", seed=seed, frames=4,
                  variants=2)  # fmt: skip
        out = settings.outputs_dir / f"job{n}"
        clips = [
            u.new_clip for u in run_job(prepare_job(job, settings), out, settings) if u.new_clip
        ]
        jobs.append(sorted(c.path for c in clips))
    for clip in jobs[0]:
        old = time.time() - 10 * DAY
        os.utime(clip, (old, old))
    return settings, jobs


def test_sweep_removes_old_clips_with_their_manifests_and_keeps_selected_ones(two_jobs):
    settings, (old_job, new_job) = two_jobs
    history = open_history(settings.outputs_dir)
    history.reconcile()
    history.select(old_job[1])
    removed = sweep(settings, history)
    assert removed == [old_job[0]]
    assert not old_job[0].exists() and not old_job[0].with_suffix(".json").exists()
    assert old_job[1].exists() and all(p.exists() for p in new_job)
    assert old_job[0] not in {e.path for e in history.recent()}


def test_sweep_over_quota_removes_the_oldest_job_and_its_folder(two_jobs):
    settings, (old_job, new_job) = two_jobs
    # A clip's bytes are its MP4, its manifest and its poster.
    sizes = sum(
        f.stat().st_size
        for p in new_job
        for f in (p, p.with_suffix(".json"), p.with_suffix(".jpg"))
    )
    settings = replace(settings, retention_days=0, outputs_quota_gb=(sizes + 10) / 1024**3)
    assert sorted(sweep(settings)) == old_job
    assert not old_job[0].parent.exists()  # the job folder went with its last clip
    assert all(p.exists() for p in new_job)


def test_stray_temp_files_are_removed_but_a_young_one_survives_the_periodic_sweep(tmp_path):
    job = tmp_path / "job"
    job.mkdir(parents=True)
    stray = job / ".product-glint-v1-5.ab12cd.part.mp4"
    stray.write_bytes(b"half")
    clip = job / "product-glint-v1-5.mp4"
    clip.write_bytes(b"whole")
    assert remove_stray_temp_files(tmp_path, older_than_s=3600) == []  # may be in progress
    assert remove_stray_temp_files(tmp_path) == [stray]
    assert clip.exists()


def test_clicking_select_records_the_clip_so_retention_keeps_it(two_jobs, tmp_path):
    from studio.ui import build_ui

    settings, (old_job, _) = two_jobs
    demo = build_ui(settings)
    button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "select-2")
    handler = next(f for f in demo.fns.values() if f.targets and f.targets[0][0] == button._id)
    handler.fn([str(p) for p in old_job])  # what the click runs, with the clips state
    assert open_history(settings.outputs_dir).selected() == {old_job[1]}
    sweep(settings)
    assert old_job[1].exists() and not old_job[0].exists()
