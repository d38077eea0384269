"""One device rule: a model job waits in line for the device its model really loads on."""

from __future__ import annotations

from studio.models import device, resolve_options
from studio.serve.queueing import lane_for


def test_the_job_line_and_the_loader_pick_the_same_default_device(catalog, monkeypatch):
    ckpt = catalog["ltx-video"]
    assert lane_for("ltx-video", {}) == lane_for("ltx-video", {"device": device.default_device()})
    monkeypatch.setattr(device, "default_device", lambda: "mps")
    assert lane_for("ltx-video", {}) == "mps" == resolve_options(ckpt, {}).device
    monkeypatch.setattr(device, "default_device", lambda: "cpu")
    assert lane_for("ltx-video", {}) == "cpu (model)"
    assert resolve_options(ckpt, {}).device == "cpu"


def test_without_torch_the_default_device_is_the_cpu(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    assert device.default_device() == "cpu"
