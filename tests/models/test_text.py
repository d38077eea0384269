"""What the studio and the CLI say about models: picker labels, summaries and the catalog table."""

from __future__ import annotations

from studio.backends import list_backends
from studio.models import ModelManager, backend_choices, backend_markdown, choice_label, describe


def test_the_picker_lists_the_engine_first_then_each_checkpoint_with_its_facts(catalog, tmp_path):
    from studio.settings import Settings

    manager = ModelManager(catalog, settings=Settings(hub_cache=tmp_path / "hub"))
    choices = backend_choices(list_backends(), manager)
    assert choices[0] == ("Embedded motion engine (CPU)", "engine")
    labels = dict((bid, label) for label, bid in choices)
    assert labels["wan2.1-i2v-480p"] == choice_label(catalog["wan2.1-i2v-480p"], "not downloaded")
    assert (
        "commercial OK" in labels["wan2.1-i2v-480p"]
        and "12-40 GB VRAM" in labels["wan2.1-i2v-480p"]
    )
    assert [bid for _, bid in choices][1:7] == list(catalog)[:6]


def test_a_checkpoint_is_described_in_one_line_and_the_engine_not_at_all(catalog, tmp_path):
    from studio.settings import Settings

    manager = ModelManager(catalog, settings=Settings(hub_cache=tmp_path / "hub"))
    line = describe(catalog["svd-xt"], state="on disk")
    assert line.startswith("1024x576, 25 frames @ 7 fps · VRAM 14 GB (8 GB with offload)")
    assert line.endswith(" · on disk") and "\n" not in line
    assert backend_markdown("engine", manager) == ""
    summary = backend_markdown("svd-xt", manager)
    assert "**Stable Video Diffusion XT**" in summary and "not downloaded" in summary


def test_the_picker_states_each_licences_commercial_terms_and_where_it_does_not_apply(
    catalog, tmp_path
):
    from studio.settings import Settings

    manager = ModelManager(catalog, settings=Settings(hub_cache=tmp_path / "hub"))
    hunyuan = catalog["hunyuanvideo-1.5-i2v-480p"]
    # What the studio shows under the picker (the UI calls backend_markdown).
    shown = backend_markdown(hunyuan.id, manager)
    assert hunyuan.licence.line() in shown and hunyuan.summary(licence=False) in shown
    assert "100 million monthly active users" in shown
    assert "European Union, the United Kingdom or South Korea" in shown
    assert "(not everywhere)" in choice_label(hunyuan)
    ltx2 = describe(catalog["ltx-2"])
    assert "with sound" in ltx2 and "USD 10M annual revenue" in ltx2
    assert "(not everywhere)" not in choice_label(catalog["ltx-2"])
    for ckpt in catalog.values():  # every entry says whether and how it may be used commercially
        assert ckpt.licence.commercial and ckpt.licence.line() in describe(ckpt)
