"""Small living motions of a portrait's face and body (blinks, a head turn, breathing), from the face mesh."""

from __future__ import annotations

import numpy as np

from studio.motion.scene import Scene
from studio.plan import VariantPlan


class LifeRig:
    """Per-plan face and body motion, applied to the subject layer's source maps.

    displace(i, mx, my) moves, in place, the working-image positions (mx, my) the subject
    layer samples for frame i, so the face and shoulders move with the layer and the camera.
    """

    def __init__(self, scene: Scene, plan: VariantPlan) -> None:
        self.scene = scene
        self.plan = plan

    @property
    def displaces(self) -> bool:
        return False

    def displace(self, i: int, mx: np.ndarray, my: np.ndarray) -> None:
        return None
