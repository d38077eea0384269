"""The model manager: caching, eviction under the budget, locks, memory modes and helper models."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from studio.errors import BackendError
from studio.models import GIB, HelperModel, ModelManager, ModelUnavailable
from studio.settings import Settings
from tests.tiny_pipelines import in_hub_cache, save_tiny_depth_anything, tiny_folder


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
    assert (
        loaded.pipe.transformer.is_cache_enabled and "step cache fbc on transformer" in loaded.notes
    )


def test_the_budget_comes_from_the_settings_given(catalog, monkeypatch):
    monkeypatch.setenv("STUDIO_MODEL_BUDGET_GB", "99")
    manager = ModelManager(catalog, settings=Settings(model_budget_gb=1.5))
    assert manager.budget("cpu") == int(1.5 * GIB)
    assert ModelManager(catalog).budget("cpu") == 99 * GIB  # from the environment by default
    loaded = manager.get(
        catalog["ltx-video"], {"model_path": str(tiny_folder("ltx")), "device": "cpu"}
    )
    assert manager.free_bytes("cpu") == int(1.5 * GIB) - loaded.nbytes


DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"


def _depth_helper(repo: str = DEPTH_REPO) -> HelperModel:
    return HelperModel(
        name="Depth Anything V2",
        repo=repo,
        files=("config.json", "model.safetensors"),
        classes=("transformers.AutoModelForDepthEstimation", "transformers.AutoImageProcessor"),
    )


def test_a_helper_model_loads_once_from_the_local_cache_within_the_budget(catalog, tmp_path):
    snapshot = in_hub_cache(tmp_path / "hub", DEPTH_REPO, save_tiny_depth_anything)
    manager = ModelManager(catalog, settings=Settings(hub_cache=tmp_path / "hub"))
    helper = _depth_helper()
    assert manager.helper_folder(helper) == snapshot
    model, processor = manager.load_helper(helper)
    assert type(model).__name__ == "DepthAnythingForDepthEstimation" and not model.training
    assert manager.load_helper(helper)[0] is model  # cached
    assert 0 < manager.cache.used_bytes() == manager.budget("cpu") - manager.free_bytes("cpu")

    # It shares the budget with the pipelines: loading one past the budget evicts it.
    manager.budget_bytes = manager.cache.used_bytes()
    gone = weakref.ref(model)
    del model, processor
    manager.get(catalog["ltx-video"], {"model_path": str(tiny_folder("ltx")), "device": "cpu"})
    gc.collect()
    assert gone() is None
    assert [e.label for e in manager.cache.entries()] == ["ltx-video"]


def test_a_helper_model_that_is_not_downloaded_is_refused_without_network(catalog, tmp_path):
    manager = ModelManager(catalog, settings=Settings(hub_cache=tmp_path / "empty"))
    helper = _depth_helper("someone/not-here")
    assert manager.helper_folder(helper) is None
    with pytest.raises(ModelUnavailable, match="Depth Anything V2 is not downloaded"):
        manager.load_helper(helper)


def test_a_helper_model_may_build_itself_from_files_that_ship_with_the_studio(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"x" * 1000)
    helper = HelperModel(name="Faces", folder=tmp_path, files=("model.tflite",),
                         build=lambda folder: ("interpreter", folder), packages=())  # fmt: skip
    manager = ModelManager({})
    assert manager.load_helper(helper) == ("interpreter", tmp_path)
    assert manager.load_helper(helper) is manager.load_helper(helper)
    assert manager.cache.used_bytes() == 1000  # no torch weights: counted by its files
