"""Shootout: photos x presets x backends on shared seeds, scored, with a report that works offline."""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from studio import backends
from studio.backends import BackendInfo
from studio.backends.base import Backend
from studio.errors import BackendError, Cancelled, StudioError
from studio.settings import Settings
from studio.shootout.results import ShootoutResult
from studio.shootout.run import plan_cells, run_shootout
from tests.test_cli import assert_one_error_line, studio

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PRESETS = ["product/slow-push-in", "scenic/drifting-clouds"]
TINY = {"seed": 5, "variants": 1, "size": (128, 72), "frames": 8}


class _Links(HTMLParser):
    """Every src/href in a page, and the tags that carry them."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.videos: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attrs_d = dict(attrs)
        if tag == "video":
            self.videos.append(attrs_d)
        for name in ("src", "href"):
            if attrs_d.get(name):
                self.links.append((tag, attrs_d[name]))


def tiny_settings(tmp: Path) -> Settings:
    return Settings(outputs_dir=tmp / "outputs", user_presets_dir=tmp / "none", workers=2)


@pytest.fixture(scope="module")
def shootout(tmp_path_factory, samples) -> ShootoutResult:
    tmp = tmp_path_factory.mktemp("shootout")
    seen: list[float] = []
    result = run_shootout(
        [samples["product"], samples["scenic"]], PRESETS, ["engine"], tmp / "out",
        tiny_settings(tmp), progress=lambda fraction, message: seen.append(fraction), **TINY,
    )  # fmt: skip
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    return result


def test_writes_report_csv_and_json_with_one_row_per_clip(shootout):
    out = shootout.out_dir
    assert {p.name for p in out.iterdir()} >= {"report.html", "results.csv", "results.json"}
    rows = json.loads((out / "results.json").read_text())
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(rows) == len(table) == 2 * 2 * 1 * 1
    for row, line in zip(rows, table, strict=True):
        assert row["error"] is None and 0 < row["score"] <= 100
        assert row["static"] is False and row["flicker"] is not None
        assert (out / row["path"]).is_file() and line["path"] == row["path"]
        assert line["score"] == str(row["score"]) and line["backend"] == "engine"
    assert {(r["photo"], r["preset"]) for r in rows} == {
        (photo, preset) for photo in ("coffee.png", "rocket.jpg") for preset in PRESETS
    }


def test_each_photo_has_exactly_one_winner_its_best_scored_clip(shootout):
    rows = json.loads((shootout.out_dir / "results.json").read_text())
    for photo in ("coffee.png", "rocket.jpg"):
        mine = [r for r in rows if r["photo"] == photo]
        winners = [r for r in mine if r["winner"]]
        assert len(winners) == 1
        assert winners[0]["score"] == max(r["score"] for r in mine)
    assert set(shootout.winners) == {0, 1}


def test_report_references_only_files_inside_its_folder(shootout):
    out = shootout.out_dir.resolve()
    parser = _Links()
    parser.feed((out / "report.html").read_text())
    assert len(parser.videos) == 4
    for video in parser.videos:
        assert all(name in video for name in ("muted", "autoplay", "loop", "playsinline"))
    for tag, link in parser.links:
        assert "://" not in link and not link.startswith(("/", "//")), (tag, link)
        target = (out / link).resolve()
        assert target.is_relative_to(out) and target.is_file(), (tag, link)


class BrokenBackend(Backend):
    """Fails while rendering, in parallel threads, as a model that runs out of memory would."""

    id = "test-broken"
    parallel_variants = True

    def render(self, prepared, plan, ctx):
        raise BackendError("This backend needs <16 GB> & a GPU that is not here.")


@pytest.fixture
def broken_backend():
    backends.register(BackendInfo("test-broken", "Broken", "Always fails.", BrokenBackend))
    yield "test-broken"
    backends.unregister("test-broken")


def test_failing_cells_show_their_error_while_the_others_succeed(tmp_path, samples, broken_backend):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(samples["scenic"].read_bytes()[:300])
    # The broken backend runs first: its failure must not stop the engine cells after it.
    result = run_shootout(
        [samples["product"], corrupt], PRESETS[:1], [broken_backend, "engine"], tmp_path / "out",
        tiny_settings(tmp_path), **(TINY | {"variants": 2}),
    )  # fmt: skip
    assert len(result.rows) == 2 * 2 * 2
    by_cell = {(r.photo, r.backend): r for r in result.rows}
    good = [r for r in result.rows if (r.photo, r.backend) == ("coffee.png", "engine")]
    assert [r.error for r in good] == [None, None] and all(r.score > 0 for r in good)
    assert sum(r.winner for r in good) == 1
    assert "needs <16 GB> & a GPU" in by_cell[("coffee.png", "test-broken")].error
    assert "damaged" in by_cell[("corrupt.jpg", "engine")].error
    # Same photo x preset, same seed, whatever the backend.
    assert by_cell[("coffee.png", "engine")].seed == by_cell[("coffee.png", "test-broken")].seed
    assert set(result.winners) == {0}  # the corrupt photo has no winner

    html = result.report.read_text()
    assert "needs &lt;16 GB&gt; &amp; a GPU" in html and "<16 GB>" not in html
    assert str(escape(by_cell[("corrupt.jpg", "engine")].error)) in html
    saved = json.loads(result.json.read_text())
    assert [bool(r["error"]) for r in saved] == [True, True, False, False] + [True] * 4


def test_cancel_stops_the_shootout_and_writes_no_report(tmp_path, samples):
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        run_shootout(
            [samples["product"]], PRESETS, ["engine"], tmp_path / "out", tiny_settings(tmp_path),
            progress=lambda fraction, message: cancel.set(), cancel=cancel, **TINY,
        )  # fmt: skip
    assert not (tmp_path / "out" / "report.html").exists()


def test_unknown_preset_or_backend_is_refused_before_anything_is_written(tmp_path, samples):
    out = tmp_path / "out"
    with pytest.raises(StudioError, match="Unknown preset 'product/nope'"):
        run_shootout([samples["product"]], ["product/nope"], ["engine"], out,
                     tiny_settings(tmp_path), **TINY)  # fmt: skip
    with pytest.raises(StudioError, match="Unknown backend 'warp-drive'"):
        run_shootout([samples["product"]], PRESETS, ["engine", "warp-drive"], out,
                     tiny_settings(tmp_path), **TINY)  # fmt: skip
    assert not out.exists()


def test_cli_refuses_unknown_preset_with_one_error_line(tmp_path, samples):
    out = tmp_path / "out"
    result = studio("shootout", str(samples["product"]), "--presets", "product/slow-push-in,nope",
                    "--out", str(out), tmp=tmp_path)  # fmt: skip
    assert_one_error_line(result, "Unknown preset 'nope'")
    assert not out.exists()


def test_cli_runs_a_shootout_and_prints_winner_and_report(tmp_path, samples):
    out = tmp_path / "out"
    result = studio("shootout", str(samples["portrait"]), "--presets", "portrait/slow-push-in",
                    "--backends", "engine", "--out", str(out), "--seed", "2", "--variants", "2",
                    "--size", "96x96", "--frames", "6", tmp=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("winner astronaut.png: portrait/slow-push-in on engine, variant ")
    assert lines[-1] == str(out / "report.html")
    assert result.stderr == ""  # no progress bar into a pipe; test_cli.py covers a terminal
    assert len(json.loads((out / "results.json").read_text())) == 2


def test_plan_shares_seeds_across_backends_and_not_across_presets():
    cells = plan_cells(["a.png", "b.png"], ["p/one", "p/two"], ["engine", "other"], seed=9)
    assert len(cells) == 8
    seeds = {(c.photo_index, c.preset, c.backend): c.seed for c in cells}
    for photo in (0, 1):
        for preset in ("p/one", "p/two"):
            assert seeds[(photo, preset, "engine")] == seeds[(photo, preset, "other")]
    assert len(set(seeds.values())) == 4
    assert plan_cells(["a.png", "b.png"], ["p/one", "p/two"], ["engine", "other"], seed=9) == cells
    assert len({c.folder for c in cells}) == 8


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def test_report_in_a_browser_sorts_its_table_and_loads_every_video(shootout, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((shootout.out_dir / "report.html").resolve().as_uri())
    page.wait_for_function(
        "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout=20_000
    )
    assert page.locator("video").count() == 4
    assert page.locator("figure.winner").count() == 2

    def scores() -> list[float]:
        cells = page.locator("#metrics tbody tr td:nth-child(6)").all_inner_texts()
        return [float(text) for text in cells]

    header = page.locator("#metrics thead th", has_text="Score")
    header.click()
    assert scores() == sorted(scores(), reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    assert scores() == sorted(scores())
    page.locator("#metrics thead th", has_text="Preset").click()
    presets = page.locator("#metrics tbody tr td:nth-child(2)").all_inner_texts()
    assert presets == sorted(presets)
    assert all(url.startswith("file://") for url in requests), requests
    page.close()
