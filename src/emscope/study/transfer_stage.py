"""The ``steer:transfer`` stage: every direction applied to every model (base included), raw
(one scale on every vector) or at matched norms (each added vector a share of the target's
answer-activation norm, with a seeded random control per target; protocol §9)."""

from __future__ import annotations

from typing import Any

from emscope.analyses.directions import Direction
from emscope.study.claim import claim
from emscope.study.context import RunContext
from emscope.study.model_stages import job_model_hash
from emscope.study.outputs import FilesOutput, TrainOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import Stage
from emscope.study.steer_stages import (
    ANALYSES_DIR,
    SteerInputs,
    loader,
    steer_inputs,
    steer_params,
    steer_prompts,
)


class TransferStage(Stage[FilesOutput]):
    """The transfer matrix: raw (one ``scale``) or at matched norms (``share`` of each target's
    activation norm, ``norms`` from :func:`~emscope.analyses.matched_transfer.target_norms`)."""

    output_type = FilesOutput

    def __init__(
        self,
        ctx: RunContext,
        scope: str,
        targets: dict[str, tuple[ModelJob, TrainOutput | None]],
        directions: dict[str, Direction],
        vectors: dict[str, str | None],
        layer: int,
        scale: float | None = None,
        matched: tuple[float, dict[str, float], dict[str, str]] | None = None,
    ) -> None:
        self.ctx, self.scope, self.targets, self.directions = ctx, scope, targets, directions
        self.vectors, self.layer, self.scale, self.matched = vectors, layer, scale, matched
        self.name = "steer:transfer" + (f":{scope}" if scope else "")

    def inputs(self) -> SteerInputs:
        targets = {n: job_model_hash(self.ctx, j, t) for n, (j, t) in self.targets.items()}
        if self.matched is None:  # the raw mode keeps the key it always had
            return steer_inputs(
                self.ctx,
                layer=self.layer,
                scale=self.scale,
                directions=self.vectors,
                targets=targets,
            )
        share, norms, sources = self.matched
        return steer_inputs(
            self.ctx,
            layer=self.layer,
            share=share,
            directions=self.vectors,
            targets=targets,
            target_norms=norms,
            norm_sources=sources,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.matched_transfer import plan_matched_transfer
        from emscope.analyses.transfer import direction_cosines, transfer_matrix

        settings = ctx.config.analyses
        out = ctx.run_dir / ANALYSES_DIR / "steering" / self.scope / "transfer"
        place = claim(out, self.key(), is_dir=True)
        cells = None
        if self.matched is not None:
            share, norms, _ = self.matched
            cells = plan_matched_transfer(
                self.directions,
                {name: norms[name] for name in self.targets},
                layer=self.layer,
                share=share,
                seed=ctx.config.seeds[0],
                include_training_answers=True,  # the study chose them already (labelled)
            )
        matrix = transfer_matrix(
            self.directions,
            {n: loader(ctx, j, t) for n, (j, t) in self.targets.items()},  # type: ignore[misc]
            ctx.judge,
            steer_prompts(ctx, settings.steer_questions),
            layer=self.layer,
            scale=self.scale if cells is None else None,
            cells=cells,
            out_dir=place.work / "runs",
            params=steer_params(ctx),
            base_seed=ctx.config.seeds[0],
            policy=settings.rate_policy,
            judge_prompts=ctx.judge_prompt_sets,
        )
        facts: dict[str, Any] = {"layer": self.layer, "scale": self.scale}
        if self.matched is not None:
            share, norms, sources = self.matched
            matrix["target_norm"] = matrix["target"].map(norms)
            matrix["target_norm_source"] = matrix["target"].map(sources)
            facts = {"layer": self.layer, "share": share}
        matrix.to_csv(place.work / "matrix.csv", index=False)
        direction_cosines(self.directions, self.layer).to_csv(place.work / "cosines.csv")
        final = place.commit()
        return FilesOutput(
            files={
                "matrix": ctx.stored(final / "matrix.csv"),
                "cosines": ctx.stored(final / "cosines.csv"),
            },
            facts=facts,
        )
