"""The prepared GPU check runs here as a dry run: the same sweep, table and verdicts on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_sweeps_modes_tiling_and_caches_and_tells_refusals_from_errors(
    tmp_path, capsys
):
    bench = _bench()
    out = tmp_path / "rows.json"
    code = bench.main(["--device", "cpu", "--only", "ltx-2", "cogvideox1.5-5b-i2v",
                       "--modes", "none", "tiled", "model", "--caches", "fbc", "faster",
                       "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    rows = {(r["checkpoint"], r["mode"], r["cache"]): r for r in json.loads(out.read_text())}
    assert code == 0 and "0 error" in printed
    # Each mode without a cache, then each cache with the weights on the device.
    assert list(rows) == [(cid, mode, cache) for cid in ("ltx-2", "cogvideox1.5-5b-i2v")
                          for mode, cache in [("none", "none"), ("tiled", "none"),
                                              ("model", "none"), ("none", "fbc"),
                                              ("none", "faster")]]  # fmt: skip
    ltx2 = {k[1:]: r for k, r in rows.items() if k[0] == "ltx-2"}
    assert ltx2[("none", "none")]["status"] == "ok" and "sound" in ltx2[("none", "none")]["detail"]
    assert "vae tiling" in ltx2[("tiled", "none")]["detail"]
    assert ltx2[("model", "none")]["status"] == "skipped"  # offloading needs CUDA
    assert ltx2[("none", "fbc")]["status"] == "refused"  # a sentence, not a crash
    assert ltx2[("none", "faster")]["status"] == "refused"
    assert rows[("cogvideox1.5-5b-i2v", "none", "faster")]["status"] == "ok"
    for row in rows.values():
        assert row["status"] != "ok" or row["render_s"] is not None
        assert (
            f"{row['checkpoint']:<26} {row['mode']:<10} {row['cache']:<10} {row['status']}"
            in printed
        )


def test_an_error_in_one_row_is_reported_and_fails_the_run_while_the_sweep_goes_on(
    tmp_path, capsys, monkeypatch
):
    bench = _bench()
    from studio.backends import ltx2

    def broken(self, loaded, output, plans):
        raise RuntimeError("the vocoder returned nothing")

    monkeypatch.setattr(ltx2.LTX2Backend, "results", broken)
    code = bench.main(["--device", "cpu", "--only", "ltx-2", "wan2.2-ti2v-5b", "--modes", "none",
                       "--caches"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1 and "1 ok · 0 refused · 0 skipped · 1 error" in printed
    assert "RuntimeError: the vocoder returned nothing" in printed


def test_the_gpu_check_script_stops_with_a_clear_status_where_there_is_no_gpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "LIMIT": "120"}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env,
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "no CUDA GPU here" in (tmp_path / "gpu_check.log").read_text()
    assert "torch" in (tmp_path / "environment.txt").read_text()
