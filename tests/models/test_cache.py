"""Step caches: FasterCache gets each transformer's real tensor layout, and every transformer gets the cache."""

from __future__ import annotations

import numpy as np
import pytest

from studio.backends import family_backend
from studio.backends.base import RenderContext
from studio.errors import BackendError
from studio.models import ModelManager
from studio.plan import VariantPlan
from tests.tiny_pipelines import FOR_CHECKPOINT as TINY
from tests.tiny_pipelines import tiny_catalog, tiny_folder

CATALOG = tiny_catalog()
TRANSFORMER_ENTRIES = [cid for cid in CATALOG if CATALOG[cid].family != "svd"]
PHOTO = np.full((64, 64, 3), 120, np.uint8)


def render(manager: ModelManager, ckpt_id: str, params: dict, steps: int = 2) -> list:
    ckpt = CATALOG[ckpt_id]
    plan = VariantPlan(index=0, seed=5, width=64, height=64, frames=9, fps=8, prompt="a photo",
                       negative_prompt="blurry", params={**params, "steps": steps, "batch": 1})  # fmt: skip
    return family_backend(ckpt.family)(ckpt, models=manager).render(PHOTO, plan, RenderContext())


def _layout(shape: tuple, channels: int) -> str | None:
    if len(shape) != 5:
        return None  # packed tokens (LTX): no frame axis to split
    return "BCFHW" if shape[1] == channels else "BFCHW" if shape[2] == channels else "?"


@pytest.mark.parametrize("ckpt_id", TRANSFORMER_ENTRIES)
def test_faster_cache_is_offered_exactly_where_it_fits_with_the_transformers_layout(ckpt_id):
    # FasterCache splits one batch of [unconditional, conditional] video, laid out as
    # tensor_format says. Watch one guided step to see what each pipeline really does.
    manager = ModelManager(CATALOG)
    params = {"device": "cpu", "model_path": str(tiny_folder(TINY[ckpt_id]))}
    transformer = manager.get(CATALOG[ckpt_id], params).pipe.transformer
    shapes = []

    def record(module, args, output):
        sample = output[0] if isinstance(output, tuple) else output.sample
        shapes.append(tuple(sample.shape))

    handle = transformer.register_forward_hook(record)
    try:
        render(manager, ckpt_id, params, steps=1)
    finally:
        handle.remove()
    one_guided_batch = len(shapes) == 1 and shapes[0][0] == 2
    layout = _layout(shapes[0], transformer.config.out_channels)
    assert CATALOG[ckpt_id].cache_format == (layout if one_guided_batch else None), shapes


@pytest.mark.parametrize("ckpt_id", [c for c in TRANSFORMER_ENTRIES if CATALOG[c].cache_format])
def test_faster_cache_runs_with_the_catalog_tensor_format(ckpt_id):
    manager = ModelManager(CATALOG)
    params = {"device": "cpu", "cache": "faster", "model_path": str(tiny_folder(TINY[ckpt_id]))}
    loaded = manager.get(CATALOG[ckpt_id], params)
    hook = loaded.pipe.transformer._diffusers_hook.get_hook("faster_cache_denoiser")
    assert hook.tensor_format == CATALOG[ckpt_id].cache_format
    assert "step cache faster on transformer" in loaded.notes
    frames = render(
        manager, ckpt_id, params, steps=3
    )  # guidance > 1: the unconditional branch runs
    assert len(frames) == 9 and all(np.isfinite(f).all() for f in frames)


@pytest.mark.parametrize("ckpt_id", [c for c in TRANSFORMER_ENTRIES if not CATALOG[c].cache_format])
def test_faster_cache_is_refused_where_it_does_not_fit(ckpt_id):
    params = {"device": "cpu", "cache": "faster", "model_path": str(tiny_folder(TINY[ckpt_id]))}
    with pytest.raises(
        BackendError, match="FasterCache does not fit .*; use the taylorseer step cache instead"
    ):
        ModelManager(CATALOG).get(CATALOG[ckpt_id], params)


def test_a_two_expert_pipeline_gets_the_step_cache_on_both_transformers():
    # Wan 2.2 A14B: transformer for high noise, transformer_2 below boundary_ratio.
    manager = ModelManager(CATALOG)
    params = {"device": "cpu", "cache": "fbc", "model_path": str(tiny_folder("wan2.2-a14b"))}
    loaded = manager.get(CATALOG["wan2.2-i2v-a14b"], params)
    pipe = loaded.pipe
    assert pipe.transformer.is_cache_enabled and pipe.transformer_2.is_cache_enabled
    assert "step cache fbc on transformer, transformer_2" in loaded.notes
    calls = {"transformer": 0, "transformer_2": 0}
    handles = [getattr(pipe, name).register_forward_pre_hook(
        lambda m, a, name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls]  # fmt: skip
    try:
        frames = render(manager, "wan2.2-i2v-a14b", params, steps=2)
    finally:
        for h in handles:
            h.remove()
    assert len(frames) == 9 and calls["transformer"] > 0 and calls["transformer_2"] > 0


@pytest.mark.parametrize("ckpt_id", ["skyreels-v2-i2v-1.3b", "ltx-2", "hunyuanvideo-1.5-i2v-480p"])
def test_first_block_cache_is_refused_in_a_sentence_where_diffusers_cannot_hook_the_blocks(ckpt_id):
    # diffusers 0.42 registers no first-block hooks for these transformers' block classes.
    params = {"device": "cpu", "cache": "fbc", "model_path": str(tiny_folder(TINY[ckpt_id]))}
    with pytest.raises(
        BackendError, match="does not support the fbc step cache; use the taylorseer"
    ):
        ModelManager(CATALOG).get(CATALOG[ckpt_id], params)
