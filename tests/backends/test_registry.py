"""The backend registry: built from the settings it is given, one table of families, one title each."""

from __future__ import annotations

import pytest

from studio import backends
from studio.backends import BackendInfo, Backends, family_backend, registry
from studio.backends.base import Backend
from studio.backends.diffusion import DiffusionBackend
from studio.errors import JobError
from studio.models import FAMILIES, load_catalog
from studio.motion.depth import HeuristicDepth
from studio.settings import Settings


def test_the_engine_is_built_from_the_settings_the_app_passes(monkeypatch):
    monkeypatch.setenv("STUDIO_DEPTH", "depth-anything")  # what from_env would have used
    engine = Backends(Settings(depth="heuristic")).get("engine")
    assert isinstance(engine.depth_source(), HeuristicDepth)


def test_one_registry_per_settings_shares_its_backends():
    a, b = Settings(long_side=200), Settings(long_side=300)
    assert registry(a) is registry(Settings(long_side=200))
    assert registry(a) is not registry(b)
    assert registry(a).get("engine") is registry(a).get("engine")


def test_every_catalog_family_has_its_backend_file():
    assert {c.family for c in load_catalog().values()} <= set(FAMILIES)
    for family in FAMILIES:
        assert issubclass(family_backend(family), DiffusionBackend), family


def test_each_backend_has_one_title_and_description():
    infos = Backends(Settings()).infos()
    assert infos[0].id == "engine" and infos[0].title == "Embedded motion engine (CPU)"
    assert "needs no downloads" in infos[0].description
    svd = next(i for i in infos if i.id == "svd-xt")
    assert svd.title == "Stable Video Diffusion XT" and "VRAM 14 GB" in svd.description
    for cls in (Backend, DiffusionBackend):
        assert not hasattr(cls, "title") and not hasattr(cls, "description")


class Still(Backend):
    id = "test-still"

    def render(self, prepared, plan, ctx):
        yield from ()


def test_a_registered_backend_is_offered_until_it_is_withdrawn():
    backends.register(BackendInfo("test-still", "Still", "for this test", Still))
    try:
        mine = Backends(Settings(long_side=111))
        assert mine.ids()[-1] == "test-still" and isinstance(mine.get("test-still"), Still)
    finally:
        backends.unregister("test-still")
    with pytest.raises(JobError, match="Unknown backend 'test-still'. Available: engine, svd-xt"):
        mine.get("test-still")
