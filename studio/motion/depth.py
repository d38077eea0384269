"""Pluggable depth sources: a fast heuristic one and Depth Anything V2 when its weights are cached."""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod

import cv2
import numpy as np

from studio.errors import BackendError
from studio.motion.filters import guided_filter
from studio.motion.matte import subject_matte

DEPTH_ANYTHING_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
# The heuristic is made of smooth cues; 256 px is plenty before the edge-aware upsampling.
HEURISTIC_SIZE = 256


class DepthSource(ABC):
    """Estimates relative depth of a photo: float32 HxW in [0,1], 1 = nearest to the camera."""

    name: str = ""

    def available(self) -> bool:
        """Whether this source can run here without downloading anything."""
        return True

    @abstractmethod
    def estimate(self, image: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
        """Depth of an RGB uint8 image; subject is an optional alpha matte hint."""


class HeuristicDepth(DepthSource):
    """Depth from layout cues: lower is nearer, sky and plain backdrops are far, the subject is near."""

    name = "heuristic"

    def estimate(self, image: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
        h, w = image.shape[:2]
        if subject is None:
            subject = subject_matte(image)
        scale = min(1.0, HEURISTIC_SIZE / max(h, w))
        sw, sh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(subject.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0

        ys = (np.arange(sh, dtype=np.float32) + 0.5) / sh
        # Ground plane prior: the bottom of a photo is usually the nearest thing in it.
        depth = np.repeat((0.12 + 0.55 * ys**1.3)[:, None], sw, axis=1)

        # Plain, detail-free regions touching the top (sky, studio backdrop) are far away.
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        detail = cv2.GaussianBlur(cv2.magnitude(gx, gy), (0, 0), max(1.0, 0.02 * max(sw, sh)))
        hi = float(np.percentile(detail, 98))
        detail = np.clip(detail / hi, 0.0, 1.0) if hi > 1e-6 else np.zeros_like(detail)
        lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
        top = lab[: max(1, sh // 12)].reshape(-1, 3)
        dist = np.sqrt(((lab - top.mean(axis=0)) ** 2).sum(axis=2))
        skyish = (
            np.exp(-0.5 * (dist / 18.0) ** 2)
            * (1.0 - detail)
            * np.clip(1.4 - 1.6 * ys, 0, 1)[:, None]
        )
        depth = depth * (1.0 - 0.8 * skyish)
        # In-focus detail reads as nearer than soft, defocused areas.
        depth = depth + 0.1 * detail

        if float(alpha.max()) > 0.05:
            a = np.clip(alpha, 0.0, 1.0)
            rows = np.flatnonzero(a.max(axis=1) > 0.5)
            foot = float(ys[rows[-1]]) if rows.size else 1.0
            subject_depth = max(0.78, 0.12 + 0.55 * foot**1.3 + 0.15)
            inside = (a > 0.5).astype(np.uint8)
            bulge = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
            peak = float(bulge.max())
            bulge = np.sqrt(bulge / peak) if peak > 0 else bulge
            # A rounded subject gives orbit moves a little internal relief instead of a card.
            subj = subject_depth + 0.1 * bulge.astype(np.float32) - 0.05
            depth = depth * (1.0 - a) + subj * a

        depth = cv2.resize(depth.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        guide = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        radius = max(2, int(round(0.01 * max(h, w))))
        depth = guided_filter(guide, depth, radius, 4e-3)
        return np.clip(depth, 0.0, 1.0).astype(np.float32)


class DepthAnythingDepth(DepthSource):
    """Depth Anything V2 Small through transformers, from the local Hugging Face cache only."""

    name = "depth-anything"

    def __init__(self, repo_id: str = DEPTH_ANYTHING_REPO) -> None:
        self.repo_id = repo_id
        self._model = None
        self._processor = None
        self._lock = threading.Lock()

    def available(self) -> bool:
        for module in ("torch", "transformers", "huggingface_hub"):
            if importlib.util.find_spec(module) is None:
                return False
        from huggingface_hub import try_to_load_from_cache

        for filename in ("config.json", "model.safetensors"):
            found = try_to_load_from_cache(self.repo_id, filename)
            if not isinstance(found, str):
                return False
        return True

    def _load(self):
        with self._lock:
            if self._model is None:
                if not self.available():
                    raise BackendError(
                        "Depth Anything V2 is not downloaded; the studio will use its built-in depth instead."
                    )
                from transformers import AutoImageProcessor, AutoModelForDepthEstimation

                self._processor = AutoImageProcessor.from_pretrained(
                    self.repo_id, local_files_only=True
                )
                model = AutoModelForDepthEstimation.from_pretrained(
                    self.repo_id, local_files_only=True
                )
                self._model = model.eval()
        return self._model, self._processor

    def estimate(self, image: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
        import torch

        model, processor = self._load()
        h, w = image.shape[:2]
        inputs = processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            pred = model(**inputs).predicted_depth
        disparity = pred.squeeze().float().cpu().numpy()
        disparity = cv2.resize(disparity, (w, h), interpolation=cv2.INTER_CUBIC)
        # The model predicts relative inverse depth (larger = nearer): stretch robustly.
        lo, hi = np.percentile(disparity, 1), np.percentile(disparity, 99)
        if hi - lo < 1e-6:
            return np.full((h, w), 0.5, np.float32)
        return np.clip((disparity - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def get_depth_source(name: str = "auto") -> DepthSource:
    """The depth source called name: "auto" (the best one available), "heuristic" or "depth-anything"."""
    if name == "heuristic":
        return HeuristicDepth()
    if name in ("auto", "depth-anything"):
        model = DepthAnythingDepth()
        if model.available():
            return model
        if name == "auto":
            return HeuristicDepth()
        from studio.models import require_model_packages

        require_model_packages("Depth Anything V2", ("torch", "transformers"))
        raise BackendError(
            "Depth Anything V2 is not downloaded; download it in the model manager or use the built-in depth."
        )
    raise BackendError(f"Unknown depth source '{name}'; use auto, heuristic or depth-anything.")


__all__ = [
    "DepthAnythingDepth",
    "DepthSource",
    "HeuristicDepth",
    "get_depth_source",
]
