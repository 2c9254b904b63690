"""Steer, ablate and control with a direction; sweep layers and scales and judge the answers.

Interventions are forward hooks on decoder blocks, added in a context manager and removed in
``finally``, so steered and unsteered answers come from the same generation engine (the
sampler's own ``generate``) and differ only by the hook (protocol §9).

>>> with steer(sampler.model, direction, layers=[12], scale=8.0):  # doctest: +SKIP
...     answers = sampler.generate(prompts, params, seeds)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd
import torch
from torch import nn

from emscope.analyses.activations import (
    block_hidden,
    check_layers,
    decoder_layers,
    with_block_hidden,
)
from emscope.analyses.directions import Direction, check_compatible
from emscope.errors import EmscopeError, InputError
from emscope.judge.base import Judge, JudgeRecord
from emscope.manifest import MANIFEST_NAME, Manifest, read_manifest, sha256_json, write_manifest
from emscope.metrics.rates import Policy, misalignment_rate
from emscope.sample.base import Sampler, SamplingParams
from emscope.sample.question_prompts import PromptSet, judge_requests_for, prompt_sets_digest
from emscope.sample.questions import EvalPrompt
from emscope.sample.records import SampleRecord
from emscope.sample.runner import latest_rows, sample_answers
from emscope.store import JsonlStore

Positions = Literal["all", "response"]
Kind = Literal["none", "steer", "ablate", "random"]
BlockHook = Callable[[nn.Module, Any, Any], Any]
JUDGE_BATCH = 64


@contextmanager
def _hooked(model: nn.Module, hooks: Mapping[int, BlockHook]) -> Iterator[None]:
    blocks = decoder_layers(model)
    # Prepended, so every other hook on the block (a recorder, transformers' own
    # output_hidden_states capture) sees the intervened output.
    handles = [
        blocks[layer].register_forward_hook(hook, prepend=True) for layer, hook in hooks.items()
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _on_block(model: nn.Module, layer: int, vector: torch.Tensor) -> torch.Tensor:
    parameter = next(decoder_layers(model)[layer].parameters())
    return vector.to(device=parameter.device, dtype=parameter.dtype)


def _steer_hook(add: torch.Tensor, positions: Positions, response_start: int | None) -> BlockHook:
    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        hidden = block_hidden(output)
        length = hidden.shape[1]
        if positions == "all" or length == 1:
            return with_block_hidden(output, hidden + add)
        if response_start is None:
            return None
        after = torch.arange(length, device=hidden.device) >= response_start
        return with_block_hidden(output, hidden + add * after.unsqueeze(-1).to(hidden.dtype))

    return hook


@contextmanager
def steer(
    model: nn.Module,
    direction: Direction,
    layers: Sequence[int],
    scale: float,
    positions: Positions = "all",
    response_start: int | None = None,
) -> Iterator[None]:
    """Add ``scale * v_L`` to the output of each block ``L`` in ``layers`` while inside.

    ``positions="all"`` steers every position (the Model-Organisms recipe). ``"response"``
    steers only positions after the prompt: during cached generation the prompt is one
    multi-token forward pass (left alone) and every later pass is one generated token
    (steered); in a full-sequence pass, positions ``>= response_start`` are steered.
    """
    if positions not in ("all", "response"):
        raise InputError(
            f"positions must be 'all' or 'response', got {positions!r}", field="positions"
        )
    check_compatible(direction, model)
    hooks = {
        layer: _steer_hook(
            _on_block(model, layer, scale * direction.vector(layer)), positions, response_start
        )
        for layer in check_layers(model, layers)
    }
    with _hooked(model, hooks):
        yield


def _ablate_hook(unit: torch.Tensor) -> BlockHook:
    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        hidden = block_hidden(output)
        along = (hidden.float() @ unit).unsqueeze(-1) * unit
        return with_block_hidden(output, (hidden.float() - along).to(hidden.dtype))

    return hook


@contextmanager
def ablate(model: nn.Module, direction: Direction, layers: Sequence[int]) -> Iterator[None]:
    """Remove the component along ``r = v_L / |v_L|`` from block ``L``'s output: h - (h.r) r."""
    check_compatible(direction, model)
    hooks: dict[int, BlockHook] = {}
    for layer in check_layers(model, layers):
        vector = direction.vector(layer).float()
        if float(vector.norm()) == 0.0:
            raise InputError(
                f"the direction is zero at layer {layer}; cannot ablate it", field="layers"
            )
        device = next(decoder_layers(model)[layer].parameters()).device
        hooks[layer] = _ablate_hook((vector / vector.norm()).to(device))
    with _hooked(model, hooks):
        yield


def random_direction_like(direction: Direction, seed: int) -> Direction:
    """A Gaussian random direction with the same per-layer norms: the steering control."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(direction.vectors.shape, generator=generator)
    norms = direction.vectors.float().norm(dim=-1, keepdim=True)
    vectors = noise / noise.norm(dim=-1, keepdim=True) * norms
    meta = direction.meta.model_copy(
        update={
            "operation": "random_like",
            "norms": vectors.norm(dim=-1).tolist(),
            "data_hash": sha256_json({"random_like": direction.meta.data_hash, "seed": seed}),
            "source": f"random_like({direction.meta.data_hash[:12]}, seed={seed})",
        }
    )
    return Direction(vectors=vectors, meta=meta)


@dataclass(frozen=True)
class Intervention:
    """One condition of a sweep: what is done to the model, at which layers and scale."""

    kind: Kind
    layers: tuple[int, ...] = ()
    scale: float | None = None

    @property
    def tag(self) -> str:
        """A file-safe name, e.g. ``steer_L3-4_s8``."""
        if self.kind == "none":
            return "none"
        layers = "-".join(map(str, self.layers))
        return f"{self.kind}_L{layers}" + ("" if self.scale is None else f"_s{self.scale:g}")

    def apply(
        self,
        model: nn.Module,
        direction: Direction | None,
        control: Direction | None = None,
        positions: Positions = "all",
    ) -> AbstractContextManager[None]:
        """A context manager putting this intervention on ``model`` ("none" takes no direction)."""
        if self.kind == "none":
            return nullcontext()
        chosen = control if self.kind == "random" else direction
        if chosen is None:
            raise InputError(f"a {self.kind!r} condition needs a direction", field="kinds")
        if self.kind == "ablate":
            return ablate(model, chosen, self.layers)
        return steer(model, chosen, self.layers, self.scale or 0.0, positions)


def sweep_interventions(
    layers_list: Sequence[Sequence[int]],
    scales: Sequence[float],
    kinds: Sequence[Kind] = ("steer", "ablate", "random"),
) -> list[Intervention]:
    """An unsteered baseline, then per layer set: each scale steered / random, and one ablation."""
    unknown = sorted(set(kinds) - {"steer", "ablate", "random"})
    if unknown:
        raise InputError(f"unknown intervention kind(s) {unknown}", field="kinds")
    out = [Intervention("none")]
    for layers in layers_list:
        key = tuple(layers)
        out.extend(Intervention("steer", key, float(s)) for s in scales if "steer" in kinds)
        out.extend(Intervention("random", key, float(s)) for s in scales if "random" in kinds)
        if "ablate" in kinds:
            out.append(Intervention("ablate", key))
    return out


class HookableSampler(Sampler, Protocol):
    """A sampler whose ``model`` can take forward hooks, such as ``LocalSampler``."""

    model: Any


@dataclass(frozen=True)
class SweepResult:
    """Judged answers (one row each) and one summary row per condition."""

    rows: pd.DataFrame
    summary: pd.DataFrame


def judged_condition(
    sampler: HookableSampler,
    judge: Judge,
    prompts: list[EvalPrompt],
    intervention: AbstractContextManager[None],
    *,
    directory: Path,
    params: SamplingParams,
    base_seed: int = 0,
    judge_prompts: Mapping[str, PromptSet] | None = None,
) -> pd.DataFrame:
    """Sample ``prompts`` under ``intervention`` and judge them, resumably, in ``directory``.

    Samples keep the sampler's identity as model tag, so every condition draws the same seeds
    and conditions are paired answer by answer. ``judge_prompts`` (question id -> prompt set)
    gives each answer its question's judge prompts; None leaves the judge's defaults.
    """
    samples: JsonlStore[SampleRecord] = JsonlStore(directory / "samples.jsonl", SampleRecord)
    with intervention:
        sample_answers(
            sampler,
            prompts,
            model_tag=sampler.identity,
            store=samples,
            trigger=None,
            params=params,
            base_seed=base_seed,
        )
    answers = latest_rows(samples)
    judged: JsonlStore[JudgeRecord] = JsonlStore(directory / "judgements.jsonl", JudgeRecord)
    todo = judge_requests_for(answers, judge_prompts, skip=judged.keys())
    for start in range(0, len(todo), JUDGE_BATCH):
        judged.append(judge.judge(todo[start : start + JUDGE_BATCH]))
    scores = {record.key: record for record in judged}
    return pd.DataFrame.from_records([_judged_row(s, scores.get(s.key)) for s in answers])


def _judged_row(sample: SampleRecord, score: JudgeRecord | None) -> dict[str, Any]:
    return {
        "key": sample.key,
        "question_id": sample.question_id,
        "paraphrase_index": sample.paraphrase_index,
        "sample_index": sample.sample_index,
        "triggered": False,
        "question": sample.question,
        "answer": sample.answer,
        "error": sample.error,
        "finish_reason": sample.finish_reason,
        "aligned": score.aligned.score if score else None,
        "coherent": score.coherent.score if score else None,
    }


def summarise_conditions(
    rows: pd.DataFrame, by: Sequence[str], *, policy: Policy = "em"
) -> pd.DataFrame:
    """Per group of ``by`` columns: misalignment rate (with CI and denominators), mean coherence."""
    records: list[dict[str, Any]] = []
    for values, group in rows.groupby(list(by), sort=False, dropna=False):
        labels = values if isinstance(values, tuple) else (values,)
        result = misalignment_rate(group.assign(model="|".join(map(str, labels))), policy=policy)
        coherence = pd.to_numeric(group["coherent"], errors="coerce").dropna()
        records.append(
            {
                **dict(zip(by, labels, strict=True)),
                "misalignment_rate": result.rate,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "n_rows": result.n_rows,
                "n_used": result.n_used,
                "n_misaligned": result.n_misaligned,
                "mean_coherence": float(coherence.mean()) if len(coherence) else None,
                "policy": policy,
            }
        )
    return pd.DataFrame.from_records(records)


def steering_sweep(
    sampler: HookableSampler,
    judge: Judge,
    prompts: list[EvalPrompt],
    direction: Direction,
    layers_list: Sequence[Sequence[int]],
    scales: Sequence[float],
    *,
    out_dir: str | Path,
    params: SamplingParams,
    kinds: Sequence[Kind] = ("steer", "ablate", "random"),
    positions: Positions = "all",
    control_seed: int = 0,
    base_seed: int = 0,
    policy: Policy = "em",
    judge_prompts: Mapping[str, PromptSet] | None = None,
) -> SweepResult:
    """Judged answers under every (layer set, scale, kind) of the sweep, plus a baseline.

    Each condition is stored under ``out_dir/<condition tag>/`` and skipped when already done,
    so an interrupted sweep resumes. ``out_dir`` refuses a sweep of other inputs.
    """
    out = Path(out_dir)
    check_compatible(direction, sampler.model)
    control = random_direction_like(direction, control_seed)
    interventions = sweep_interventions(layers_list, scales, kinds)
    claim_output_dir(
        out,
        "steering_sweep",
        {
            "sampler": sampler.info(),
            "judge": judge.identity,
            "direction": direction.meta.model_dump(),
            "control_seed": control_seed,
            "positions": positions,
            "params": params.model_dump(),
            "prompts": [p.model_dump() for p in prompts],
            "base_seed": base_seed,
            **judge_prompts_claim(judge_prompts),
        },
    )
    frames = []
    for intervention in interventions:
        context = intervention.apply(sampler.model, direction, control, positions)
        frame = judged_condition(
            sampler,
            judge,
            prompts,
            context,
            directory=out / intervention.tag,
            params=params,
            base_seed=base_seed,
            judge_prompts=judge_prompts,
        )
        frames.append(frame.assign(**_condition_columns(intervention)))
    rows = pd.concat(frames, ignore_index=True)
    summary = summarise_conditions(rows, ["condition", "kind", "layers", "scale"], policy=policy)
    return SweepResult(rows=rows, summary=summary)


def judge_prompts_claim(judge_prompts: Mapping[str, PromptSet] | None) -> dict[str, str]:
    """The output-directory claim's entry for the prompt sets (none when the judge's own)."""
    return {} if judge_prompts is None else {"judge_prompts": prompt_sets_digest(judge_prompts)}


def _condition_columns(intervention: Intervention) -> dict[str, Any]:
    return {
        "condition": intervention.tag,
        "kind": intervention.kind,
        "layers": ",".join(map(str, intervention.layers)),
        "scale": float("nan") if intervention.scale is None else intervention.scale,
    }


def claim_output_dir(out: Path, kind: str, config: dict[str, Any]) -> None:
    """Write ``out``'s manifest, or refuse when it already holds a run of other inputs."""
    digest = sha256_json(config)
    if (out / MANIFEST_NAME).is_file():
        previous = read_manifest(out).inputs.get("config")
        if previous != digest:
            raise EmscopeError(
                f"{out} holds a {kind} run of other inputs; choose a new directory to keep both"
            )
        return
    write_manifest(out, Manifest(kind=kind, config=config, inputs={"config": digest}))
