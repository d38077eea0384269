"""The checkpoint catalog: presets/models.yaml validated into Checkpoints, errors naming file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio.models import CatalogError, FrameRule, LowVram, load_catalog


def test_catalog_has_the_promised_checkpoints_with_their_facts(catalog):
    assert list(catalog)[:6] == [
        "svd-xt", "ltx-video", "cogvideox-5b-i2v", "wan2.1-i2v-480p", "wan2.2-ti2v-5b", "skyreels-v2-i2v-1.3b",
    ]  # fmt: skip
    svd = catalog["svd-xt"]
    assert svd.repo == "stabilityai/stable-video-diffusion-img2vid-xt"
    assert svd.pipeline == "StableVideoDiffusionPipeline"
    assert not svd.text_prompt and svd.resolution == (1024, 576) and svd.frames.default == 25
    assert "motion_bucket_id" in svd.strength
    assert catalog["ltx-video"].frames.snap(20) == 17 and catalog["ltx-video"].multiple == 32
    assert catalog["wan2.1-i2v-480p"].licence.name == "Apache-2.0"


def test_catalog_facts_follow_their_sources(catalog):
    for ckpt in catalog.values():
        assert ckpt.sources and all(url.startswith("https://") for url in ckpt.sources), ckpt.id
        assert ckpt.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", ckpt.revision), ckpt.id
    # LTX: 0.9.5 is the OpenRAIL-M release, driven by LTXConditionPipeline, 50 steps.
    ltx = catalog["ltx-video"]
    assert (ltx.repo, ltx.pipeline, ltx.steps) == (
        "Lightricks/LTX-Video-0.9.5",
        "LTXConditionPipeline",
        50,
    )
    assert "OpenRAIL-M" in ltx.licence.name
    # CogVideoX: 720x480 only; commercial use after registration, capped at 1M visits a month.
    cog = catalog["cogvideox-5b-i2v"]
    assert cog.fixed_size and cog.resolution == (720, 480)
    assert "registration" in cog.licence.commercial and "1 million visits" in cog.licence.commercial
    assert cog.cache_format == "BFCHW"
    assert catalog["wan2.2-ti2v-5b"].vram_gb == (80.0, 24.0)  # 24 GB is the figure *with* offload
    sky = catalog["skyreels-v2-i2v-1.3b"]
    assert sky.licence.name == "Skywork Community License" and "allowed" in sky.licence.commercial
    assert (sky.steps, sky.scheduler["flow_shift"], sky.vram_gb[1]) == (50, 5.0, 14.7)
    assert catalog["wan2.1-i2v-480p"].dtypes == {"vae": "fp32", "image_encoder": "fp32"}
    svd = catalog["svd-xt"]
    assert svd.variant == "fp16" and svd.low_vram == LowVram(
        forward_chunking=True, decode_chunk_size=2
    )


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("cache_format: BFCHW", "cache_format: BHWC", "cache_format"),
        ("dtypes: {vae: fp32, image_encoder: fp32}", "dtypes: {vae: float64}", "dtypes.vae"),
        (
            "low_vram: {forward_chunking: true, decode_chunk_size: 2}",
            "low_vram: {chunks: 2}",
            "chunks",
        ),
        ("flow_shift: 5.0}", "flow_shift: [5]}", "scheduler"),
        ("    audio: true\n", "    audio: with sound\n", "audio"),
        ("      regions: Not licensed", "      regions: [EU]\n      x: Not licensed", "regions"),
    ],
)
def test_new_catalog_fields_are_validated(tmp_path, old, new, field):
    text = Path("presets/models.yaml").read_text()
    assert old in text
    bad = tmp_path / "models.yaml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError, match=rf"models\.yaml .*field '{re.escape(field)}'"):
        load_catalog(bad)


def test_an_entry_without_sources_is_refused(tmp_path):
    text = Path("presets/models.yaml").read_text()
    start = text.index("    sources:\n", text.index("id: svd-xt"))
    end = text.index("\n\n", start)
    bad = tmp_path / "models.yaml"
    bad.write_text(text[:start] + text[end + 1 :])
    with pytest.raises(CatalogError, match=r"'svd-xt'.*field 'sources' is missing"):
        load_catalog(bad)


def test_broken_catalog_names_file_and_field(tmp_path):
    text = Path("presets/models.yaml").read_text().replace("fps: 7\n", "fps: seven\n", 1)
    bad = tmp_path / "models.yaml"
    bad.write_text(text)
    with pytest.raises(CatalogError, match=r"models\.yaml .*'svd-xt'.*field 'fps'"):
        load_catalog(bad)


def test_frame_rule_snaps_to_valid_counts():
    rule = FrameRule(default=81, step=4, offset=1, max=81)
    assert [rule.snap(n) for n in (1, 8, 9, 11, 200)] == [1, 9, 9, 13, 81]


def test_render_size_keeps_aspect_and_multiple(catalog):
    assert catalog["ltx-video"].render_size(1920, 1080) == (832, 480)
    assert catalog["ltx-video"].render_size(64, 64) == (64, 64)


def test_a_manager_reads_the_catalog_once(monkeypatch):
    from studio.models import ModelManager
    from studio.models import catalog as catalog_module
    from studio.models import manager as manager_module

    reads = []
    real = catalog_module.load_catalog
    monkeypatch.setattr(manager_module, "load_catalog", lambda: reads.append(1) or real())
    manager = ModelManager()
    for _ in range(3):
        ckpt = manager.checkpoint("ltx-video")
        manager.state(ckpt)
        assert "svd-xt" in manager.catalog
    assert reads == [1]


def test_the_newer_families_carry_their_facts_and_sources(catalog):
    ltx2 = catalog["ltx-2"]
    assert (ltx2.family, ltx2.pipeline, ltx2.repo) == (
        "ltx2",
        "LTX2ImageToVideoPipeline",
        "Lightricks/LTX-2",
    )
    assert ltx2.audio and ltx2.multiple == 32 and ltx2.frames.snap(100) == 97  # 8k+1
    assert ltx2.licence.name == "LTX-2 Community License" and "USD 10M" in ltx2.licence.commercial
    assert ltx2.cache_format is None  # packed video and audio tokens
    assert not any(c.audio for c in catalog.values() if c.id != "ltx-2")

    a14b = catalog["wan2.2-i2v-a14b"]
    assert (a14b.family, a14b.repo) == ("wan", "Wan-AI/Wan2.2-I2V-A14B-Diffusers")
    assert (a14b.steps, a14b.guidance, a14b.fps, a14b.vram_gb[1]) == (40, 3.5, 16, 80.0)
    assert a14b.licence.name == "Apache-2.0" and a14b.dtypes == {"vae": "fp32"}

    hy = catalog["hunyuanvideo-1.5-i2v-480p"]
    assert (hy.family, hy.pipeline) == ("hunyuan15", "HunyuanVideo15ImageToVideoPipeline")
    assert (hy.steps, hy.guidance, hy.vram_gb[1], hy.fps) == (50, 6.0, 14.0, 24)
    assert "European Union" in hy.licence.regions and "South Korea" in hy.licence.regions
    assert "100 million monthly active users" in hy.licence.commercial

    cog15 = catalog["cogvideox1.5-5b-i2v"]
    assert re.fullmatch(r"[0-9a-f]{40}", cog15.revision) and not cog15.fixed_size
    assert (cog15.options["short_side"], cog15.options["max_long_side"]) == (768, 1360)
    assert (cog15.frames.default, cog15.frames.max, cog15.fps) == (81, 161, 16)
    assert (cog15.vram_gb, cog15.offload) == ((27.0, 9.0), "sequential")

    for ckpt in (ltx2, a14b, hy, cog15):  # the licence text itself is among the sources
        assert ckpt.licence.url in ckpt.sources, ckpt.id
