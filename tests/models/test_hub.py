"""Hub downloads: only the files a pipeline loads, the settings they use, one sentence per failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

from studio.errors import BackendError
from studio.models import (
    ModelManager,
    ModelUnavailable,
    allow_patterns,
    catalog_table,
    model_summary,
)
from studio.settings import Settings
from tests.tiny_pipelines import tiny_folder


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
        assert call["revision"] == "432149c8ff8775073416c9b1dd615b24e1acaddc"  # pinned
        assert call["cache_dir"] == str(tmp_path / "hf" / "hub")
        assert call["token"] == "hf_secret"
        assert call["local_files_only"] is False
    assert "unet/*.fp16*.safetensors" in full_call["allow_patterns"]
    assert "image_encoder/*.json" in full_call["allow_patterns"]
    assert "*/diffusion_pytorch_model.safetensors" in full_call["ignore_patterns"]


def test_the_hub_is_reached_with_the_settings_given_not_the_environment(
    catalog, monkeypatch, tmp_path
):
    monkeypatch.setenv("HF_TOKEN", "from-the-environment")
    settings = Settings(hf_token="hf_given", hub_cache=tmp_path / "cache", hub_offline=True)
    down = RecordingDownloader(tiny_folder("svd"))
    ModelManager(catalog, downloader=down, settings=settings).download(catalog["svd-xt"])
    assert {c["token"] for c in down.calls} == {"hf_given"}
    assert {c["cache_dir"] for c in down.calls} == {str(tmp_path / "cache")}
    assert {c["local_files_only"] for c in down.calls} == {True}


def test_hub_settings_are_read_under_the_hub_variable_names(tmp_path):
    env = {"HF_TOKEN": "hf_x", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    s = Settings.from_env(env)
    assert (s.hf_token, s.hub_offline, s.hub_cache) == ("hf_x", True, tmp_path / "hf" / "hub")
    assert Settings.from_env({"HF_HUB_CACHE": str(tmp_path / "c")}).hub_cache == tmp_path / "c"
    assert "hf_x" not in repr(s)  # the token never lands in a log line


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
    repo = tmp_path / "hf" / "hub" / ("models--" + catalog["ltx-video"].repo.replace("/", "--"))
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
