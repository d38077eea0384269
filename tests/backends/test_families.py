"""What each newer pipeline family does differently: its size rule, its guider, its step reports, its sound."""

from __future__ import annotations

import os

import numpy as np
import pytest

from studio.backends import family_backend
from studio.backends.base import RenderContext
from studio.backends.cogvideox import sized_by_short_side
from studio.errors import Cancelled
from studio.models import ModelManager, load_catalog
from studio.plan import VariantPlan
from tests.tiny_pipelines import tiny_catalog, tiny_folder

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach the hub

PHOTO = np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (64, 1, 3))


def _plan(params: dict, width=96, height=64, index=0, **kw) -> VariantPlan:
    return VariantPlan(index=index, seed=11 + index, width=width, height=height, frames=9, fps=24,
                       prompt="a photo of a product", negative_prompt="blurry",
                       params={"device": "cpu", "steps": 2, **params}, **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (1360, 768)), ((1080, 1920), (768, 1360)), ((512, 512), (768, 768)),
     ((2560, 1080), (1360, 768)), ((1000, 750), (1024, 768))],
)  # fmt: skip
def test_cogvideox15_renders_with_a_short_side_of_768_and_a_long_side_up_to_1360(size, expected):
    ckpt = load_catalog()["cogvideox1.5-5b-i2v"]
    backend = family_backend("cogvideox")(ckpt, models=ModelManager({ckpt.id: ckpt}))
    shot = backend.shot(None, _plan({}, *size))  # the rule needs no loaded model
    assert (shot.width, shot.height) == expected
    assert shot.frames == 17  # 16k+1 frames
    assert sized_by_short_side(*size, 768, 1360, 16) == expected


def test_hunyuan_renders_at_the_bucket_its_pipeline_picks_with_the_plans_guidance():
    catalog = tiny_catalog()
    ckpt = catalog["hunyuanvideo-1.5-i2v-480p"]
    manager = ModelManager(catalog)
    params = {"model_path": str(tiny_folder("hunyuan15")), "guidance": 4.5}
    backend = family_backend("hunyuan15")(ckpt, models=manager)
    [(_, rendered)] = list(backend.render_many(PHOTO, [_plan(params)], RenderContext()))
    pipe = manager.get(ckpt, params).pipe
    # target_size 16 and a 3:2 photo: the pipeline's own bucket is 16x12.
    assert pipe.video_processor.calculate_default_height_width(64, 96, pipe.target_size) == (12, 16)
    assert (rendered.facts["width"], rendered.facts["height"]) == (16, 12)
    assert pipe.guider.guidance_scale == 4.5  # guidance goes through the guider
    frames = list(rendered.frames)
    assert len(frames) == 9 and frames[0].shape == (64, 96, 3)  # 4k+1 at its own 24 fps


def test_a_pipeline_without_step_callbacks_still_reports_each_step_and_can_be_cancelled():
    # HunyuanVideo 1.5's __call__ takes no callback_on_step_end: the scheduler's step reports.
    catalog = tiny_catalog()
    ckpt = catalog["hunyuanvideo-1.5-i2v-480p"]
    manager = ModelManager(catalog)
    params = {"model_path": str(tiny_folder("hunyuan15")), "steps": 3}
    backend = family_backend("hunyuan15")(ckpt, models=manager)
    seen: list[float] = []
    ctx = RenderContext(progress=lambda index, fraction: seen.append(round(fraction, 2)))
    list(backend.render_many(PHOTO, [_plan(params)], ctx))
    assert seen == [0.32, 0.63, 0.95]  # one report per step
    scheduler = manager.get(ckpt, params).pipe.scheduler
    assert "step" not in vars(scheduler)  # the wrapper is gone after the call

    ctx = RenderContext()
    ctx.progress = lambda index, fraction: ctx.cancel.set()  # Cancel pressed during step 1
    with pytest.raises(Cancelled):
        list(backend.render_many(PHOTO, [_plan(params)], ctx))
    assert "step" not in vars(scheduler)


def test_ltx2_conditions_on_the_photo_recompressed_at_the_models_crf():
    pytest.importorskip("av")
    from PIL import Image

    catalog = tiny_catalog()
    ckpt = catalog["ltx-2"]
    manager = ModelManager(catalog)
    loaded = manager.get(ckpt, {"device": "cpu", "model_path": str(tiny_folder("ltx2"))})
    backend = family_backend("ltx2")(ckpt, models=manager)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    shown = np.asarray(backend.conditioning_image(loaded, photo), dtype=float)
    assert shown.shape == (64, 96, 3)
    assert 2 < np.abs(shown - np.asarray(photo, dtype=float)).mean() < 60  # CRF 33's loss
    kwargs = backend.pipeline_kwargs(loaded, photo, [_plan({}), _plan({}, index=1)],
                                     backend.shot(loaded, _plan({})))  # fmt: skip
    assert kwargs["image_crf"] == 0 and len(kwargs["image"]) == 2  # done once, for both
    assert kwargs["use_cross_timestep"] is False  # the catalog's LTX-2.0 setting
    assert kwargs["spatio_temporal_guidance_blocks"] == [29]
