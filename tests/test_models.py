"""The model manager: catalog validation, downloads, caching, eviction, locks and errors."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
import weakref
from pathlib import Path

import httpx
import pytest
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

from studio.errors import BackendError
from studio.models import (
    CatalogError,
    FrameRule,
    ModelManager,
    ModelUnavailable,
    allow_patterns,
    catalog_table,
    load_catalog,
    model_summary,
)
from tests.tiny_pipelines import tiny_folder

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach the hub


@pytest.fixture
def catalog():
    return load_catalog()


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


def test_allow_patterns_follow_components_and_skip_duplicates():
    index = {
        "_class_name": "X",
        "unet": ["diffusers", "U"],
        "vae": ["diffusers", "V"],
        "safety": [None, None],
    }
    allow, ignore = allow_patterns(index, "fp16")
    assert "unet/*.fp16*.safetensors" in allow and "vae/*.json" in allow
    assert not any(p.startswith("safety") for p in allow)
    assert "*.bin" in ignore and "*/diffusion_pytorch_model.safetensors" in ignore


class RecordingDownloader:
    """Stands in for snapshot_download: records each call and serves a local folder."""

    def __init__(self, folder: Path | None = None, error: BaseException | None = None):
        self.folder, self.error, self.calls = folder, error, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return str(self.folder)


def test_download_call_arguments(catalog, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    down = RecordingDownloader(tiny_folder("svd"))
    manager = ModelManager(catalog, downloader=down)
    manager.download(catalog["svd-xt"])
    index_call, full_call = down.calls
    assert index_call["allow_patterns"] == ["model_index.json"]
    for call in down.calls:
        assert call["repo_id"] == "stabilityai/stable-video-diffusion-img2vid-xt"
        assert call["revision"] == "main"
        assert call["cache_dir"] == str(tmp_path / "hf" / "hub")
        assert call["token"] == "hf_secret"
        assert call["local_files_only"] is False
    assert "unet/*.fp16*.safetensors" in full_call["allow_patterns"]
    assert "image_encoder/*.json" in full_call["allow_patterns"]
    assert "*/diffusion_pytorch_model.safetensors" in full_call["ignore_patterns"]


def _response(code: int) -> httpx.Response:
    return httpx.Response(code, request=httpx.Request("GET", "https://huggingface.co/x"))


@pytest.mark.parametrize(
    ("error", "offline", "expected"),
    [
        (LocalEntryNotFoundError("missing"), True, "not downloaded and the studio is offline"),
        (LocalEntryNotFoundError("missing"), False, "hub cannot be reached"),
        (
            GatedRepoError("restricted", response=_response(403)),
            False,
            "gated on Hugging Face.*HF_TOKEN",
        ),
        (
            HfHubHTTPError("500 Server Error", response=_response(500)),
            False,
            "failed \\(500 Server Error\\).*resume",
        ),
    ],
)
def test_download_failures_are_one_clear_sentence(catalog, monkeypatch, error, offline, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    manager = ModelManager(catalog, downloader=RecordingDownloader(error=error))
    with pytest.raises(ModelUnavailable, match=expected) as info:
        manager.get(catalog["svd-xt"], {"device": "cpu"})
    assert isinstance(info.value, BackendError) and "\n" not in str(info.value)
    assert info.value.__cause__ is None  # no traceback chained onto what the user sees


def test_local_folder_must_be_a_diffusers_folder(catalog, tmp_path):
    with pytest.raises(ModelUnavailable, match="no model_index.json"):
        ModelManager(catalog).get(catalog["ltx-video"], {"model_path": str(tmp_path)})


def test_offline_mode_resolves_a_populated_hf_cache(catalog, monkeypatch, tmp_path):
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--Lightricks--LTX-Video"
    shutil.copytree(tiny_folder("ltx"), repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    (repo / "snapshots" / rev / "README.md").write_text("---\nlicense: openrail\n---\n# card\n")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manager = ModelManager(catalog)  # the real snapshot_download, with no network
    ckpt = catalog["ltx-video"]
    assert manager.state(ckpt) == "on disk"
    loaded = manager.get(ckpt, {"device": "cpu"})
    assert loaded.folder == repo / "snapshots" / rev
    assert manager.state(ckpt) == "loaded"
    assert "model card: `openrail`" in model_summary(ckpt, manager)
    assert any("[loaded]" in line for line in catalog_table(manager))
    assert "not downloaded" in manager.state(catalog["svd-xt"])


def test_second_request_reuses_the_loaded_pipeline(catalog):
    manager = ModelManager(catalog)
    params = {"model_path": str(tiny_folder("ltx")), "device": "cpu"}
    first = manager.get(catalog["ltx-video"], params)
    second = manager.get(catalog["ltx-video"], dict(params))
    assert first.pipe is second.pipe and manager.loads == 1


def test_lru_eviction_really_frees_the_pipeline(catalog):
    manager = ModelManager(catalog, budget_bytes=1)  # room for one pipeline only
    ltx = manager.get(
        catalog["ltx-video"], {"model_path": str(tiny_folder("ltx")), "device": "cpu"}
    )
    gone = weakref.ref(ltx.pipe)
    del ltx
    cog = manager.get(
        catalog["cogvideox-5b-i2v"], {"model_path": str(tiny_folder("cogvideox")), "device": "cpu"}
    )
    gc.collect()
    assert gone() is None
    assert [e.checkpoint.id for e in manager.loaded()] == [
        "cogvideox-5b-i2v"
    ] and cog.pipe is not None
    assert manager.loads == 2


def test_concurrent_requests_wait_for_one_load(catalog, monkeypatch):
    manager = ModelManager(catalog)
    real_load = manager._load

    def slow_load(*args):
        time.sleep(0.3)  # long enough for every thread to arrive while loading
        return real_load(*args)

    monkeypatch.setattr(manager, "_load", slow_load)
    params = {"model_path": str(tiny_folder("ltx")), "device": "cpu"}
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(manager.get(catalog["ltx-video"], params)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert manager.loads == 1 and len({id(r.pipe) for r in results}) == 1


def test_bad_offload_mode_is_refused(catalog):
    with pytest.raises(BackendError, match="Offload must be one of"):
        ModelManager(catalog).get(catalog["ltx-video"], {"offload": "turbo", "device": "cpu"})


def test_step_cache_is_applied_to_the_transformer(catalog):
    manager = ModelManager(catalog)
    loaded = manager.get(
        catalog["wan2.1-i2v-480p"],
        {"model_path": str(tiny_folder("wan")), "device": "cpu", "cache": "fbc"},
    )
    assert loaded.pipe.transformer.is_cache_enabled and "step cache fbc" in loaded.notes


def test_models_and_ui_modules_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, studio.models, studio.backends; studio.backends.list_backends(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
