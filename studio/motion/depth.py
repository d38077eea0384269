"""Pluggable depth sources: a fast heuristic one and Depth Anything V2 when its weights are cached."""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from studio.errors import BackendError
from studio.models import HelperModel, ModelManager, get_manager, require_model_packages
from studio.motion.filters import guided_filter
from studio.motion.matte import subject_matte

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
    """Depth Anything V2 Small through transformers, loaded by the model manager from the local
    Hugging Face cache only (never downloaded here) and counted in its memory budget."""

    name = "depth-anything"

    def __init__(self, repo_id: str | None = None, models: ModelManager | None = None) -> None:
        self._models = models  # None: the process-wide manager
        repo = repo_id or self.models.settings.depth_model
        self.helper = HelperModel(
            name="Depth Anything V2",
            repo=repo,
            files=("config.json", "model.safetensors"),
            classes=(
                "transformers.AutoModelForDepthEstimation",
                "transformers.AutoImageProcessor",
            ),
            packages=("torch", "transformers"),
        )

    @property
    def models(self) -> ModelManager:
        return self._models or get_manager()

    @property
    def repo_id(self) -> str:
        return self.helper.repo

    def available(self) -> bool:
        return self.models.helper_folder(self.helper) is not None

    def estimate(self, image: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
        import torch

        if not self.available():
            raise BackendError(
                "Depth Anything V2 is not downloaded; the studio will use its built-in depth instead."
            )
        model, processor = self.models.load_helper(self.helper)
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


def get_depth_source(
    name: str = "auto", repo_id: str | None = None, models: ModelManager | None = None
) -> DepthSource:
    """The depth source called name: "auto" (the best one available), "heuristic" or "depth-anything".

    repo_id is the learned model's repo (default: the manager's settings.depth_model).
    """
    if name == "heuristic":
        return HeuristicDepth()
    if name in ("auto", "depth-anything"):
        model = DepthAnythingDepth(repo_id, models)
        if model.available():
            return model
        if name == "auto":
            return HeuristicDepth()
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
