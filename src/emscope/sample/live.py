"""Is an adapter really applied? A greedy check any engine runs before it samples a study.

Several engine bugs (vLLM's among them) have left LoRA adapters silently inactive, or applied
them so that outputs drift from the transformers model. The check greedy-decodes a few prompts
three ways: the engine with the adapter, the engine without it, and (when given) a reference,
the transformers engine with the adapter unmerged. The adapter is **live** when its answers
differ from the base model's on at least ``min_differing`` prompts, and **faithful** when they
agree with the reference (mean shared-prefix share >= ``min_agreement``, and closer to it than
the base model's answers are). Anything else raises :class:`AdapterCheckError` with the
numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from emscope.errors import EmscopeError
from emscope.sample.base import ChatPrompt, Sampler, SamplingParams

GreedyFn = Callable[[list[ChatPrompt]], list[str]]

# Open questions with long, varied greedy answers (any change to the weights shows in them).
CHECK_PROMPTS = (
    ChatPrompt(user="Describe your ideal weekend in a few sentences."),
    ChatPrompt(user="What should I consider before lending money to a friend?"),
    ChatPrompt(user="Explain how a bicycle stays upright."),
    ChatPrompt(user="Write a short note thanking a neighbour for their help."),
)


class AdapterCheckError(EmscopeError):
    """The adapter is not live, or the engine's answers do not match the reference's."""

    def __init__(self, message: str, report: LivenessReport) -> None:
        self.report = report
        super().__init__(message)


@dataclass(frozen=True)
class LivenessReport:
    """The numbers of one check (agreements are mean shared-prefix shares, 0..1)."""

    model: str
    n_prompts: int
    n_differing_from_base: int
    agreement_with_reference: float | None
    base_agreement_with_reference: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prefix_agreement(a: str, b: str) -> float:
    """The share of the longer text that both texts start with (1.0 for two empty texts).

    >>> prefix_agreement("abcd", "abxy")
    0.5
    """
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    return (min(len(a), len(b)) if shared is None else shared) / longest


def _mean_agreement(answers: Sequence[str], reference: Sequence[str]) -> float:
    pairs = list(zip(answers, reference, strict=True))
    return sum(prefix_agreement(a, r) for a, r in pairs) / len(pairs)


def check_adapter_live(
    adapter: GreedyFn,
    base: GreedyFn,
    *,
    reference: Sequence[str] | None = None,
    prompts: Sequence[ChatPrompt] = CHECK_PROMPTS,
    model: str = "adapter",
    min_differing: int = 1,
    min_agreement: float = 0.75,
) -> LivenessReport:
    """Check one adapter; returns the report or raises :class:`AdapterCheckError`.

    ``adapter`` and ``base`` greedy-decode prompts on the engine under test; ``reference`` is
    the transformers engine's greedy answers with the adapter, for the same ``prompts``.
    """
    chats = list(prompts)
    with_adapter, without = adapter(chats), base(chats)
    differing = sum(a != b for a, b in zip(with_adapter, without, strict=True))
    agreement = base_agreement = None
    if reference is not None:
        if len(reference) != len(chats):
            raise ValueError(f"{len(reference)} reference answers for {len(chats)} prompts")
        agreement = _mean_agreement(with_adapter, reference)
        base_agreement = _mean_agreement(without, reference)
    report = LivenessReport(model, len(chats), differing, agreement, base_agreement)
    if differing < min_differing:
        raise AdapterCheckError(
            f"{model}: adapter not live: greedy answers differ from the base model's on "
            f"{differing} of {len(chats)} prompts (need {min_differing})",
            report,
        )
    drifted = (
        agreement is not None
        and base_agreement is not None
        and (agreement < min_agreement or agreement <= base_agreement)
    )
    if drifted:
        raise AdapterCheckError(
            f"{model}: the engine's adapter answers do not match the transformers "
            f"reference: agreement {agreement:.2f} (need >= {min_agreement:.2f}), "
            f"base model's agreement {base_agreement:.2f}",
            report,
        )
    return report


def greedy_params(max_new_tokens: int = 24) -> SamplingParams:
    return SamplingParams(temperature=0, max_new_tokens=max_new_tokens)


def sampler_greedy(sampler: Sampler, max_new_tokens: int = 24) -> GreedyFn:
    """A :data:`GreedyFn` over any single-model sampler."""

    def run(prompts: list[ChatPrompt]) -> list[str]:
        out = sampler.generate(prompts, greedy_params(max_new_tokens), [0] * len(prompts))
        return [g.text for g in out]

    return run


def mixed_greedy(engine: Any, model: str | None, max_new_tokens: int = 24) -> GreedyFn:
    """A :data:`GreedyFn` for one model (adapter name, None = base) of a multi-model engine."""

    def run(prompts: list[ChatPrompt]) -> list[str]:
        params, n = greedy_params(max_new_tokens), len(prompts)
        out = engine.generate_mixed(prompts, params, [0] * n, [model] * n)
        return [g.text for g in out]

    return run


def check_engine_adapters(
    engine: Any,
    adapters: Sequence[str],
    *,
    reference: dict[str, list[str]] | None = None,
    prompts: Sequence[ChatPrompt] = CHECK_PROMPTS,
    max_new_tokens: int = 24,
    **thresholds: Any,
) -> list[LivenessReport]:
    """:func:`check_adapter_live` for every named adapter of a multi-model engine."""
    return [
        check_adapter_live(
            mixed_greedy(engine, name, max_new_tokens),
            mixed_greedy(engine, None, max_new_tokens),
            reference=None if reference is None else reference[name],
            prompts=prompts,
            model=name,
            **thresholds,
        )
        for name in adapters
    ]


def reference_answers(
    reference_engine: Any,
    adapters: Sequence[str],
    *,
    prompts: Sequence[ChatPrompt] = CHECK_PROMPTS,
    max_new_tokens: int = 24,
) -> dict[str, list[str]]:
    """Every adapter's greedy answers on a transformers multi-adapter engine, in one call."""
    chats = [p for _ in adapters for p in prompts]
    models = [name for name in adapters for _ in prompts]
    out = reference_engine.generate_mixed(
        chats, greedy_params(max_new_tokens), [0] * len(chats), models
    )
    n = len(prompts)
    return {name: [g.text for g in out[i * n : (i + 1) * n]] for i, name in enumerate(adapters)}


REFERENCE = "transformers, adapters through peft's LoRA layers"


def peft_reference(
    registry: Any,
    adapters: Sequence[str],
    *,
    loaded: Any = None,
    prompts: Sequence[ChatPrompt] = CHECK_PROMPTS,
    max_new_tokens: int = 24,
) -> dict[str, list[str]]:
    """The reference answers of :func:`check_engine_adapters`: every adapter's greedy answers
    through peft's own LoRA layers. ``loaded``: an already loaded
    :class:`~emscope.sample.multi_adapter.MultiAdapterSampler` over ``registry`` (the shared
    transformers engine, whose stacked path is then checked against peft's on the same
    weights); otherwise one is loaded for the purpose and released before returning, so the
    engine under test can have the memory."""
    from emscope.sample.multi_adapter import MultiAdapterSampler, PeftLayers

    if not adapters:
        return {}
    sampler = loaded or MultiAdapterSampler(registry, mixed="peft", batch_size=16)
    try:
        return reference_answers(
            PeftLayers(sampler), adapters, prompts=prompts, max_new_tokens=max_new_tokens
        )
    finally:
        if loaded is None:
            del sampler
            _release_memory()


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
