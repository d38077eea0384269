"""The embedded CPU motion engine: depth-layered parallax and ambient motion, no model weights."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from studio.backends.base import Backend, RenderContext
from studio.models import ModelManager
from studio.motion.depth import DepthSource, get_depth_source
from studio.motion.edits import SubjectEdit
from studio.motion.render import REPORT_EVERY, PlanRig
from studio.motion.scene import Scene, build_scene
from studio.plan import VariantPlan


class EngineBackend(Backend):
    """Animates a photo by warping a subject layer over an inpainted background with its depth.

    prepare() builds one read-only Scene per photo (working image, depth, subject matte,
    background plate); render() only reads it, so variants render safely in parallel threads.
    """

    id = "engine"
    parallel_variants = True

    def __init__(
        self,
        depth: str | DepthSource = "auto",
        depth_model: str | None = None,
        models: ModelManager | None = None,
    ) -> None:
        self._depth = depth
        self._depth_model = depth_model  # the learned depth model's repo (settings.depth_model)
        self._models = models  # None: the process-wide model manager

    def depth_source(self) -> DepthSource:
        if isinstance(self._depth, DepthSource):
            return self._depth
        self._depth = get_depth_source(self._depth, self._depth_model, self._models)
        return self._depth

    def prepare(
        self,
        image: np.ndarray,
        plans: list[VariantPlan],
        ctx: RenderContext,
        edits: tuple[SubjectEdit, ...] = (),
    ) -> Scene:
        ctx.check_cancel()
        scene = build_scene(image, plans, self.depth_source(), edits=tuple(edits))
        ctx.check_cancel()
        return scene

    def render(
        self, prepared: object, plan: VariantPlan, ctx: RenderContext
    ) -> Iterator[np.ndarray]:
        if not isinstance(prepared, Scene):
            raise TypeError("EngineBackend.render needs the Scene returned by prepare().")
        ctx.check_cancel()
        rig = PlanRig(prepared, plan)
        total = max(int(plan.frames), 1)
        for i in range(total):
            if i % REPORT_EVERY == 0:
                ctx.check_cancel()
                ctx.report(plan.index, i / total)
            yield rig.frame(i)
        ctx.report(plan.index, 1.0)
