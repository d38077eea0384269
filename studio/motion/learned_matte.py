"""A learned subject matte for photos without people: Segment Anything, prompted with the automatic matte's boxes."""

from __future__ import annotations

import cv2
import numpy as np

from studio.models import HelperModel, ModelManager, get_manager
from studio.motion.filters import guided_filter

# SAM resizes every photo to 1024 px on its long side; a bigger photo is shrunk first so its
# preprocessing does not work on pixels the model never sees.
SAM_SIZE = 1024
# One box per blob of the automatic matte, the largest first; blobs under a tenth of the
# largest are left to the automatic matte's own judgement (they are not prompted).
MAX_BOXES = 3
MIN_BLOB_SHARE = 0.1
# Boxes are padded by this share of the photo's long side: the automatic matte often stops
# short of a thin part (a handle, an ear) that SAM should still see inside its box.
BOX_MARGIN = 0.02
# SAM's answer is not used when it covers less or more than this share of the photo.
MIN_COVERAGE, MAX_COVERAGE = 0.005, 0.9


class LearnedMatte:
    """Segment Anything (transformers' SamModel) loaded by the model manager from the local
    Hugging Face cache only (never downloaded here) and counted in its memory budget."""

    name = "segment-anything"

    def __init__(self, repo_id: str | None = None, models: ModelManager | None = None) -> None:
        self._models = models  # None: the process-wide manager
        repo = repo_id if repo_id is not None else self.models.settings.matte_model
        self.helper = HelperModel(
            name="Segment Anything",
            repo=repo,
            files=("config.json", "model.safetensors", "preprocessor_config.json"),
            classes=("transformers.SamModel", "transformers.SamProcessor"),
            packages=("torch", "transformers"),
        )

    @property
    def models(self) -> ModelManager:
        return self._models or get_manager()

    @property
    def repo_id(self) -> str:
        return self.helper.repo

    def available(self) -> bool:
        """Whether the model is configured and its weights are in the local cache (no network)."""
        if self.helper.repo.strip().lower() in ("", "none"):
            return False
        return self.models.helper_folder(self.helper) is not None

    def matte(self, rgb: np.ndarray, rough: np.ndarray) -> np.ndarray | None:
        """SAM's soft alpha (float32 HxW in [0, 1]) of the subject the rough matte found in an
        RGB uint8 photo; None when the rough matte found nothing or SAM's answer covers almost
        none or almost all of the photo (the caller then keeps the rough matte)."""
        import torch

        h, w = rgb.shape[:2]
        boxes = subject_boxes(rough)
        if not boxes:
            return None
        model, processor = self.models.load_helper(self.helper)

        # 1. The photo at SAM's size and one box prompt per blob, in that photo's pixels.
        s = min(1.0, SAM_SIZE / max(h, w))
        small = cv2.resize(
            rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
        )
        prompts = [[[x0 * s, y0 * s, x1 * s, y1 * s] for x0, y0, x1, y1 in boxes]]
        inputs = processor(images=small, input_boxes=prompts, return_tensors="pt")
        device = next(model.parameters()).device
        inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}

        # 2. Three candidate masks per box.
        with torch.inference_mode():
            out = model(**inputs, multimask_output=True)
        logits = (
            processor.image_processor.post_process_masks(
                out.pred_masks.cpu(),
                inputs["original_sizes"].cpu(),
                inputs["reshaped_input_sizes"].cpu(),
                binarize=False,
            )[0]
            .float()
            .numpy()
        )  # (boxes, 3, h, w)
        scores = out.iou_scores[0].float().cpu().numpy()  # (boxes, 3)

        # 3. Per box, the candidate that agrees best with the rough matte inside the box, SAM's
        # own quality estimate breaking ties; the subject is all boxes' picks together.
        rough_small = cv2.resize(rough.astype(np.float32), small.shape[1::-1]) > 0.5
        union = np.zeros(small.shape[:2], np.float32)
        for i, (x0, y0, x1, y1) in enumerate(prompts[0]):
            ys = slice(int(y0), int(np.ceil(y1)))
            xs = slice(int(x0), int(np.ceil(x1)))
            ref = rough_small[ys, xs]
            best = max(range(logits.shape[1]),
                       key=lambda j: _iou(logits[i, j][ys, xs] > 0, ref) + float(scores[i, j]))  # fmt: skip
            union = np.maximum(union, 1.0 / (1.0 + np.exp(-np.clip(logits[i, best], -30, 30))))
        coverage = float((union > 0.5).mean())
        if not MIN_COVERAGE < coverage < MAX_COVERAGE:
            return None

        # 4. Back to the photo's size, the edge refined against the photo.
        alpha = cv2.resize(union, (w, h), interpolation=cv2.INTER_LINEAR)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        alpha = guided_filter(gray, alpha, max(2, round(0.004 * max(h, w))), 1e-4)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def subject_boxes(alpha: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Padded boxes (x0, y0, x1, y1, pixels) around the main blobs of a matte, largest first."""
    hard = (alpha > 0.5).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if n <= 1:
        return []
    h, w = alpha.shape[:2]
    pad = BOX_MARGIN * max(h, w)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1
    largest = stats[order[0], cv2.CC_STAT_AREA]
    boxes = []
    for i in order[:MAX_BOXES]:
        x, y, bw, bh, area = stats[i]
        if area < MIN_BLOB_SHARE * largest:
            break
        boxes.append((max(0.0, x - pad), max(0.0, y - pad), min(float(w), x + bw + pad),
                      min(float(h), y + bh + pad)))  # fmt: skip
    return boxes


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
