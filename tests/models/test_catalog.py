"""The checkpoint catalog: presets/models.yaml validated into Checkpoints, errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.models import CatalogError, FrameRule, load_catalog


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
    assert catalog["skyreels-v2-i2v-1.3b"].licence.name == "unknown until the card is read"


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
