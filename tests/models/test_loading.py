"""What from_pretrained is asked for: per-component precision, variant weight files, scheduler settings."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from studio.models import ModelManager, ModelUnavailable, load_catalog
from tests.models.test_cache import render
from tests.tiny_pipelines import BUILDERS, tiny_folder

CATALOG = load_catalog()


def test_components_load_in_the_precision_the_catalog_pins(catalog):
    import torch

    manager = ModelManager(catalog)
    params = {"device": "cpu", "dtype": "bf16", "model_path": str(tiny_folder("wan"))}
    pipe = manager.get(catalog["wan2.1-i2v-480p"], params).pipe
    assert catalog["wan2.1-i2v-480p"].dtypes == {"vae": "fp32", "image_encoder": "fp32"}
    assert (pipe.vae.dtype, pipe.image_encoder.dtype) == (torch.float32, torch.float32)
    assert (pipe.transformer.dtype, pipe.text_encoder.dtype) == (torch.bfloat16, torch.bfloat16)
    frames = render(manager, "wan2.1-i2v-480p", params, steps=1)  # the pipeline casts between them
    assert len(frames) == 9 and all(np.isfinite(f).all() for f in frames)


def test_without_pinned_components_everything_loads_in_the_compute_dtype(catalog):
    import torch

    pipe = (
        ModelManager(catalog)
        .get(
            catalog["ltx-video"],
            {"device": "cpu", "dtype": "bf16", "model_path": str(tiny_folder("ltx"))},
        )
        .pipe
    )
    assert {pipe.vae.dtype, pipe.transformer.dtype, pipe.text_encoder.dtype} == {torch.bfloat16}


@pytest.fixture(scope="module")
def svd_with_variant(tmp_path_factory):
    """A tiny SVD saved twice into one folder: plain weights, and fp16-variant files that differ."""
    import torch

    folder = tmp_path_factory.mktemp("svd-variant") / "svd"
    pipe = BUILDERS["svd"]()
    pipe.save_pretrained(folder)
    with torch.no_grad():
        pipe.unet.conv_in.bias.fill_(0.25)
    pipe.save_pretrained(folder, variant="fp16")
    return folder


def test_the_variant_weight_files_are_the_ones_loaded(catalog, svd_with_variant):
    assert catalog["svd-xt"].variant == "fp16"
    assert (svd_with_variant / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert (svd_with_variant / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    pipe = (
        ModelManager(catalog)
        .get(catalog["svd-xt"], {"device": "cpu", "model_path": str(svd_with_variant)})
        .pipe
    )
    assert bool((pipe.unet.conv_in.bias == 0.25).all())


def test_a_folder_without_the_variant_files_loads_its_plain_weights(catalog):
    folder = tiny_folder("svd")
    assert not list(folder.rglob("*.fp16.safetensors"))
    pipe = (
        ModelManager(catalog)
        .get(catalog["svd-xt"], {"device": "cpu", "model_path": str(folder)})
        .pipe
    )
    assert not bool((pipe.unet.conv_in.bias == 0.25).all())


def test_skyreels_runs_with_the_image_to_video_flow_shift(catalog):
    folder = tiny_folder("skyreels")
    saved = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert saved["flow_shift"] == 8.0  # the text-to-video shift the folder came with
    pipe = (
        ModelManager(catalog)
        .get(catalog["skyreels-v2-i2v-1.3b"], {"device": "cpu", "model_path": str(folder)})
        .pipe
    )
    assert type(pipe.scheduler).__name__ == "UniPCMultistepScheduler"
    assert pipe.scheduler.config.flow_shift == 5.0 and pipe.scheduler.config.use_flow_sigmas


def test_a_scheduler_setting_the_folder_does_not_have_is_refused(catalog):
    ckpt = dataclasses.replace(catalog["skyreels-v2-i2v-1.3b"], scheduler={"no_such_setting": 1})
    with pytest.raises(ModelUnavailable, match="has no setting 'no_such_setting'"):
        ModelManager(catalog).get(
            ckpt, {"device": "cpu", "model_path": str(tiny_folder("skyreels"))}
        )
