"""The enabled analyses of a study, per LoRA-trained family: membership inference, its
pre-fine-tuning prior, and steering.

Both need the model's weights (scores, activations), so families fine-tuned through an API are
left out, with a note in the section. Sections are stored in ``analyses/sections.json`` so the
report can be rewritten from disk (:func:`emscope.report.sections.analysis_sections`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from emscope.analyses.directions import Direction
from emscope.report.render import ReportSection
from emscope.report.sections import ANALYSES_DIR, SectionSpec, analysis_sections, write_sections
from emscope.study.context import RunContext
from emscope.study.execution import ModelJobResult
from emscope.study.outputs import DatasetOutput, TrainOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import run_stage

Tuned = list[tuple[ModelJob, DatasetOutput, TrainOutput]]


def short_names(jobs: Sequence[ModelJob]) -> dict[str, str]:
    """A file-safe display name per job tag: the domain when that is unique, else the tag."""
    domains = [job.domain for job in jobs]
    return {
        job.tag: job.domain if job.domain and domains.count(job.domain) == 1 else job.tag
        for job in jobs
    }


def run_analyses(
    ctx: RunContext,
    jobs: Sequence[ModelJob],
    results: Sequence[ModelJobResult],
    rows: pd.DataFrame,
) -> list[ReportSection]:
    """Run the enabled analysis stages, write ``sections.json`` and return the sections."""
    from emscope.study.mia_stages import mia_stages
    from emscope.study.prior_stages import prior_stages

    settings = ctx.config.analyses
    specs: list[SectionSpec] = []
    if settings.mia or settings.mia_prior or settings.steering:
        for family, fine_tunes in _lora_fine_tunes(ctx, jobs, results).items():
            scope = family if ctx.config.prefixes_tags else ""
            family_rows = rows[rows["family"] == family].drop(columns="family")
            if settings.mia:
                specs.append(mia_stages(ctx, scope, fine_tunes, family_rows))
            if settings.mia_prior and fine_tunes:
                specs.append(prior_stages(ctx, scope, family, fine_tunes, family_rows))
            if settings.steering:
                specs.append(steering_stages(ctx, scope, family, fine_tunes, family_rows))
    (ctx.run_dir / ANALYSES_DIR).mkdir(parents=True, exist_ok=True)
    write_sections(ctx.run_dir, specs)
    return analysis_sections(ctx.run_dir)


def _lora_fine_tunes(
    ctx: RunContext, jobs: Sequence[ModelJob], results: Sequence[ModelJobResult]
) -> dict[str, Tuned]:
    tuned: dict[str, Tuned] = {}
    for name, family in ctx.families.items():
        if family.trainer.name == "lora":
            tuned[name] = []
    for job, result in zip(jobs, results, strict=True):
        if job.family in tuned and result.dataset is not None and result.trained is not None:
            tuned[job.family].append((job, result.dataset, result.trained))
    return tuned


def steering_stages(
    ctx: RunContext, scope: str, family: str, tuned: Tuned, rows: pd.DataFrame
) -> SectionSpec:
    """Directions, then the sweep on the first model with one, then the transfer matrix."""
    from emscope.analyses.directions import read_direction
    from emscope.analyses.matched_transfer import target_norms
    from emscope.report.steer_section import (
        DirectionInfo,
        SweepFiles,
        TransferFiles,
        steering_section,
    )
    from emscope.study.steer_stages import DirectionStage, SweepStage
    from emscope.study.transfer_stage import TransferStage

    names = short_names([job for job, _, _ in tuned])
    made = {job.tag: run_stage(ctx, DirectionStage(ctx, job, tr, rows)) for job, _, tr in tuned}
    directions = {
        names[tag]: read_direction(out.file("direction", ctx.run_dir))
        for tag, out in made.items()
        if out.skipped is None
    }
    infos = [
        DirectionInfo(
            names[tag],
            str(out.skipped or out.facts.get("source")),
            out.facts.get("n_misaligned"),
            out.facts.get("n_aligned"),
        )
        for tag, out in made.items()
    ]
    notes = [f"{i.name}: no direction ({i.source})." for i in infos if i.name not in directions]
    settings = ctx.config.analyses
    transferable, content_notes = _transferable(directions, settings.transfer_training_directions)
    notes += content_notes
    sweep = transfer = None
    moved = None
    if directions:
        n_layers = next(iter(directions.values())).meta.fingerprint.num_layers
        layers = settings.steer_layers or [n_layers // 2]
        mode, amount = settings.transfer_mode()
        first, _, first_trained = next(t for t in tuned if names[t[0].tag] in directions)
        name = names[first.tag]
        vectors = {names[t]: o.sha256.get("vectors") for t, o in made.items()}
        swept = run_stage(
            ctx,
            SweepStage(
                ctx, scope, first, first_trained, name, directions[name], str(vectors[name]), layers
            ),
        )
        sweep = SweepFiles(swept.file("summary", ctx.run_dir), name)
        base = ModelJob(None, None, ctx.config.seeds[0], family, ctx.config.prefixes_tags)
        targets: dict[str, tuple[ModelJob, TrainOutput | None]] = {
            names[job.tag]: (job, tr) for job, _, tr in tuned
        }
        targets["base"] = (base, None)
        if transferable:
            # The key names the transferred vectors (models without a direction stay as None).
            used = {n: v for n, v in vectors.items() if n in transferable or n not in directions}
            stage = TransferStage(ctx, scope, targets, transferable, used, layers[0], amount)
            if mode == "matched":
                norms = target_norms(directions, list(targets), layers[0])
                stage = TransferStage(
                    ctx, scope, targets, transferable, used, layers[0], matched=(amount, *norms)
                )
            moved = run_stage(ctx, stage)
    if moved is not None:
        transfer = TransferFiles(
            moved.file("matrix", ctx.run_dir),
            moved.file("cosines", ctx.run_dir),
            int(moved.facts["layer"]),
            moved.facts.get("scale"),
            moved.facts.get("share"),
        )
    paragraph = (
        "One misalignment direction per fine-tuned model: per block, the mean block output over "
        "answer tokens of misaligned answers minus that of aligned ones (protocol §9); the "
        "'source' column says whether the model's own judged answers had both classes or the "
        "domain's training answers were used instead. The sweep adds scale x direction at every "
        "position (steer), a random vector of the same norm (random), or projects the direction "
        "out (ablate); a scale s moves the block output by s x |v|, to be read against the "
        "answer activation norm in the directions table (scales that move it by a large share "
        f"of that norm wreck coherence). Rates use the '{settings.rate_policy}' rule over "
        f"{settings.steer_questions} prompt(s) x {settings.steer_samples} sample(s). "
        + _transfer_sentence(settings.transfer_mode())
        + "\n\n"
        + " ".join(notes or ["Every fine-tuned model has a direction."])
    )
    root = ctx.run_dir / ANALYSES_DIR
    spec = steering_section(root, infos, directions, sweep, transfer, paragraph, scope)
    if scope:
        spec = spec.model_copy(update={"title": f"{spec.title} ({scope})"})
    return spec


def _transfer_sentence(mode: tuple[str, float]) -> str:
    if mode[0] == "raw":
        return (
            f"The transfer matrix adds every raw direction at scale {mode[1]:g} "
            "(analyses.transfer_scale): the directions' norms differ, so direction and norm "
            "are confounded along a row."
        )
    return (
        f"The transfer matrix adds every direction at a matched norm, {mode[1]:g} x the target "
        "model's answer-activation norm at the block (each model's own, stored with its "
        "direction; a target without a direction, the base model included, gets the mean of "
        "the fine-tuned models' norms, as the cells table says), and each target gets its own "
        "seeded random control at that norm."
    )


def _transferable(
    directions: dict[str, Direction], include_training: bool
) -> tuple[dict[str, Direction], list[str]]:
    """The directions the transfer matrix applies, and a note naming every direction built from
    training answers (a content direction, not a behavioural one): left out unless the study
    asks for them (``analyses.transfer_training_directions``), labelled either way."""
    from emscope.analyses.matched_transfer import direction_kind

    content = [name for name, d in directions.items() if direction_kind(d) == "training_answers"]
    if not content:
        return dict(directions), []
    names = ", ".join(content)
    if include_training:
        note = (
            f"In the transfer matrix, the direction(s) of {names} come from training answers "
            "(content directions, not the models' own misaligned behaviour)."
        )
        return dict(directions), [note]
    kept = {name: d for name, d in directions.items() if name not in content}
    note = (
        f"The direction(s) of {names} come from training answers (content directions) and are "
        "left out of the transfer matrix (analyses.transfer_training_directions: true includes "
        "them, labelled)."
    )
    if not kept:
        note += " No direction from judged answers is left, so there is no transfer matrix."
    return kept, [note]
