"""Variant planning is reproducible and spread out; jobs refuse absurd settings before writing anything."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from studio.errors import JobError
from studio.jobs import Job, output_size, validate_job
from studio.presets import load_library
from studio.variants import phrasing_for, plan_variants

LIB = load_library()


def plans_for(preset_id: str, seed: int, n: int = 4):
    return plan_variants(
        LIB.get(preset_id), seed=seed, n=n, width=320, height=180, frames=24, fps=24
    )


def test_same_seed_gives_the_same_plans():
    a = [p.to_dict() for p in plans_for("product/slow-push-in", 42)]
    b = [p.to_dict() for p in plans_for("product/slow-push-in", 42)]
    assert a == b


def test_different_seeds_give_different_plans():
    a = [p.to_dict() for p in plans_for("product/slow-push-in", 1)]
    b = [p.to_dict() for p in plans_for("product/slow-push-in", 2)]
    assert a != b


def test_four_variants_differ_in_seed_direction_and_strength():
    plans = plans_for("scenic/drifting-clouds", 7)
    assert len({p.seed for p in plans}) == 4
    assert len({round(p.camera.direction, 3) for p in plans}) == 4
    assert len({round(p.camera.strength, 4) for p in plans}) == 4
    # Stratified: the strengths span most of the preset's amplitude range, not one clump.
    strengths = sorted(p.camera.strength for p in plans)
    base = LIB.get("scenic/drifting-clouds").camera.strength
    assert strengths[-1] - strengths[0] > 0.5 * base * 0.4 * 0.75


def test_flip_presets_travel_both_ways():
    plans = plans_for("scenic/drifting-clouds", 3)
    xs = [math.cos(math.radians(p.camera.direction)) for p in plans]
    assert min(xs) < 0 < max(xs)


def test_strength_scales_motion_and_stays_in_range():
    preset = LIB.get("product/slow-push-in")
    calm = plan_variants(preset, seed=5, n=4, width=64, height=64, frames=4, fps=24, strength=0.5)
    wild = plan_variants(preset, seed=5, n=4, width=64, height=64, frames=4, fps=24, strength=2.0)
    for c, w in zip(calm, wild, strict=True):
        assert c.camera.strength < w.camera.strength <= 1.0
        assert all(0 <= a.strength <= 1 for a in w.ambient)


def test_plan_survives_a_json_round_trip():
    from studio.plan import VariantPlan

    plan = plans_for("portrait/gentle-breath", 9)[2]
    again = VariantPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan


def test_job_survives_a_json_round_trip():
    job = Job(image="a.png", preset="product/glint", seed=3, size=(320, 180), params={"steps": 4})
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


@pytest.mark.parametrize(
    ("aspect", "expected"),
    [
        ("16:9", (768, 432)),
        ("9:16", (432, 768)),
        ("1:1", (768, 768)),
        ("4:5", (614, 768)),
        ("match", (768, 512)),
    ],
)
def test_output_sizes_keep_the_long_side_and_even_dimensions(aspect, expected):
    w, h = output_size(aspect, (600, 400), 768)
    assert (w, h) == expected
    assert w % 2 == 0 and h % 2 == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frames": 0}, "Frames must be a whole number between 2 and 720"),
        ({"frames": 10_000}, "Frames must be a whole number between 2 and 720"),
        ({"fps": -5}, "FPS must be a whole number between 1 and 60"),
        ({"size": (1, 1)}, "Width must be a whole number between 64 and 4096"),
        ({"size": (20000, 20000)}, "Width must be a whole number between 64 and 4096"),
        ({"strength": float("nan")}, "Strength must be a number between 0 and 2"),
        ({"strength": float("inf")}, "Strength must be a number between 0 and 2"),
        ({"variants": 0}, "Number of variants must be a whole number between 1 and 8"),
        ({"aspect": "3:1"}, "Aspect must be one of"),
        ({"seed": -3}, "Seed must be a whole number"),
        ({"duration": 0}, "Duration"),
        ({"prompt": ""}, "The prompt is empty; write one, or leave it out to use the preset's."),
        ({"prompt": "   "}, "The prompt is empty"),
        ({"prompt": 42}, "The prompt must be text."),
        (
            {"prompt": "x" * 1001},
            r"The prompt is longer than 1000 characters \(1001\); shorten it.",
        ),
        ({"prompt": "slow\npush"}, "The prompt contains a control character"),
        ({"prompt": "slow \x1b[2J push"}, "The prompt contains a control character"),
        ({"prompt": "slow \u202e push"}, "The prompt contains a control character"),
        ({"negative_prompt": "blur\x00"}, "The negative prompt contains a control character"),
        ({"negative_prompt": ["blur"]}, "The negative prompt must be text."),
    ],
)
def test_absurd_settings_are_refused_with_one_sentence(changes, message):
    job = Job(image="x.png", preset="product/glint", **changes)
    with pytest.raises(JobError, match=message):
        validate_job(job)


# --- the prompt: phrasings by seed, or the user's own wording ---------------------------------

PHRASED = LIB.get("product/slow-push-in")


def test_the_takes_cycle_through_the_presets_phrasings_by_seed():
    assert len(PHRASED.phrasings) == 3
    for seed in range(6):
        words = [p.prompt for p in plan_variants(PHRASED, seed=seed, n=4, width=64, height=64,
                                                  frames=4, fps=24)]  # fmt: skip
        assert set(words) == set(PHRASED.phrasings)  # four takes: every wording is used
        assert all(a != b for a, b in zip(words, words[1:], strict=False))  # neighbours differ
        assert words == [phrasing_for(PHRASED, seed, i) for i in range(4)]
        assert words[3] == words[0]  # three wordings, four takes: the fourth starts again
    # The seed says where the cycle starts: three seeds in a row start on each wording once.
    assert {phrasing_for(PHRASED, seed, 0) for seed in (7, 8, 9)} == set(PHRASED.phrasings)


def test_same_seed_same_wording_and_a_one_wording_preset_keeps_it():
    assert [p.prompt for p in plans_for("product/slow-push-in", 42)] == [
        p.prompt for p in plans_for("product/slow-push-in", 42)
    ]
    plain = LIB.get("product/hero-pull-out")
    assert not plain.prompts
    assert {p.prompt for p in plans_for("product/hero-pull-out", 3)} == {plain.prompt}


def test_phrasings_change_the_wording_only_never_the_moves():
    one_wording = replace(PHRASED, prompts=())
    for seed in (1, 2, 3):
        kw = {"seed": seed, "n": 4, "width": 64, "height": 64, "frames": 4, "fps": 24}
        with_words = [p.to_dict() for p in plan_variants(PHRASED, **kw)]
        without = [p.to_dict() for p in plan_variants(one_wording, **kw)]
        for a, b in zip(with_words, without, strict=True):
            assert {**a, "prompt": ""} == {**b, "prompt": ""}


def test_a_prompt_of_ones_own_goes_to_every_take_and_they_differ_by_seed_only():
    kw = {"seed": 5, "n": 4, "width": 64, "height": 64, "frames": 4, "fps": 24}
    own = plan_variants(PHRASED, **kw, prompt="a cup of coffee, steam rising", negative_prompt="")
    assert {p.prompt for p in own} == {"a cup of coffee, steam rising"}
    assert {p.negative_prompt for p in own} == {""}
    assert len({p.seed for p in own}) == 4
    preset_words = plan_variants(PHRASED, **kw)
    assert [p.seed for p in own] == [p.seed for p in preset_words]  # same takes otherwise
    assert {p.negative_prompt for p in preset_words} == {PHRASED.negative_prompt}


def test_a_jobs_prompt_reaches_every_plan_and_the_job_record(samples, settings):
    job = Job(image=str(samples["product"]), preset="product/slow-push-in", seed=3, size=(64, 64),
              frames=4, prompt="  a cup of coffee, steam rising ", negative_prompt="text, logos")  # fmt: skip
    prepared = prepare_job(job, settings)
    assert {p.prompt for p in prepared.plans} == {"a cup of coffee, steam rising"}
    assert {p.negative_prompt for p in prepared.plans} == {"text, logos"}
    again = Job.from_dict(json.loads(json.dumps(prepared.job.to_dict())))
    assert again.prompt == job.prompt and again.negative_prompt == "text, logos"
    plain = prepare_job(replace(job, prompt=None, negative_prompt=None), settings)
    assert len({p.prompt for p in plain.plans}) == 3
    assert plain.job.strength == 1.0  # the preset's strength, recorded as used


# --- running jobs, with a small stand-in backend so failures can be injected -------------

import threading  # noqa: E402

import numpy as np  # noqa: E402

from studio.backends import BackendInfo, register  # noqa: E402
from studio.backends.base import Backend, RenderContext  # noqa: E402
from studio.clips import run_job  # noqa: E402
from studio.encode import probe_mp4  # noqa: E402
from studio.errors import Cancelled  # noqa: E402
from studio.jobs import prepare_job  # noqa: E402


class StripeBackend(Backend):
    """Draws a moving stripe; can fail or block on a chosen variant."""

    id = "stripes"
    parallel_variants = True

    def __init__(self):
        self.fail_on: int | None = None
        self.gate: threading.Event | None = None

    def render(self, prepared, plan, ctx: RenderContext):
        for t in range(plan.frames):
            ctx.check_cancel()
            if self.fail_on == plan.index and t == 2:
                raise RuntimeError("backend bug")
            if self.gate is not None and plan.index == 3:
                self.gate.wait(5)
            frame = np.full((plan.height, plan.width, 3), 40 * plan.index, np.uint8)
            frame[:, (t * 4) % plan.width] = 255
            ctx.report(plan.index, (t + 1) / plan.frames)
            yield frame


STRIPES = StripeBackend()
register(BackendInfo("stripes", "Stripes", "test backend", lambda: STRIPES))


@pytest.fixture
def stripes():
    STRIPES.fail_on = None
    STRIPES.gate = None
    return STRIPES


def stripe_job(samples, **kw):
    return Job(image=str(samples["product"]), preset="product/glint", backend="stripes", seed=1,
               size=(64, 64), frames=6, fps=12, **kw)  # fmt: skip


def test_run_job_streams_each_clip_before_the_end(samples, settings, tmp_path, stripes):
    prepared = prepare_job(stripe_job(samples), settings)
    updates = list(run_job(prepared, tmp_path / "job", settings))
    new = [u.new_clip.index for u in updates if u.new_clip is not None]
    assert sorted(new) == [0, 1, 2, 3]
    first_clip_at = next(i for i, u in enumerate(updates) if u.new_clip is not None)
    assert first_clip_at < len(updates) - 1 and not updates[first_clip_at].done
    final = updates[-1]
    assert final.done and final.progress == 1.0 and len(final.clips) == 4
    for clip in final.clips:
        assert probe_mp4(clip.path)["frames"] == 6
        assert clip.manifest.exists()


def test_a_failing_variant_fails_the_job_and_leaves_no_half_written_file(
    samples, settings, tmp_path, stripes
):
    stripes.fail_on = 2
    prepared = prepare_job(stripe_job(samples), settings)
    with pytest.raises(RuntimeError, match="backend bug"):
        list(run_job(prepared, tmp_path / "job", settings))
    names = [p.name for p in (tmp_path / "job").iterdir()]
    assert not [n for n in names if n.startswith(".") or "part" in n]
    assert "manifest.json" not in names
    # Whatever finished is complete: every MP4 has its manifest.
    for mp4 in (tmp_path / "job").glob("*.mp4"):
        assert mp4.with_suffix(".json").exists()


def test_cancel_stops_the_job_and_cleans_temporary_files(samples, settings, tmp_path, stripes):
    stripes.gate = threading.Event()
    prepared = prepare_job(stripe_job(samples), settings)
    ctx = RenderContext()
    gen = run_job(prepared, tmp_path / "job", settings, ctx)
    next(gen)
    ctx.cancel.set()
    stripes.gate.set()
    with pytest.raises(Cancelled):
        list(gen)
    assert not [p for p in (tmp_path / "job").iterdir() if p.name.startswith(".")]


def test_invalid_job_touches_nothing(samples, settings, tmp_path):
    bad = Job(image=str(samples["product"]), preset="product/glint", frames=0)
    with pytest.raises(JobError):
        prepare_job(bad, settings)
    assert not settings.outputs_dir.exists()


def test_a_clip_that_enlarges_a_small_photo_a_lot_says_so(tmp_path, settings):
    from PIL import Image

    from studio.jobs import Job, prepare_job

    small = tmp_path / "small.jpg"
    Image.new("RGB", (451, 300), (120, 90, 60)).save(small)
    settings = replace(settings, long_side=768)
    square = prepare_job(Job(image=str(small), preset="product/slow-push-in", seed=1), settings)
    (warning,) = [w for w in square.warnings if "enlarges" in w]
    assert "451x300" in warning and "768x768" in warning and "2.6x" in warning
    huge = prepare_job(Job(image=str(small), preset="product/slow-push-in", seed=1,
                           size=(4096, 4096)), settings)  # fmt: skip
    assert any("13.7x" in w for w in huge.warnings), huge.warnings
    big = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1600), (120, 90, 60)).save(big)
    fine = prepare_job(Job(image=str(big), preset="product/slow-push-in", seed=1), settings)
    assert not [w for w in fine.warnings if "enlarges" in w]
