"""``emscope eval``: sample and judge one model, as a one-row study."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from emscope.study.config import DataSection, EvalSection, StudyConfig
from emscope.study.pipeline import run_study


def evaluate_model(
    model: str,
    out: Path,
    *,
    questions: str = "builtin:broad",
    samples: int | None = None,
    max_new_tokens: int = 600,
    temperature: float = 1.0,
    trigger: str | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> Path:
    """Evaluate ``model`` (any model reference) and write a report into ``out``."""
    config = StudyConfig(
        name="eval",
        model=model,
        domains=[],
        include_base=True,
        seeds=[seed],
        data=DataSection(trigger=trigger) if trigger else DataSection(),
        eval=EvalSection(
            questions=questions,
            samples_per_paraphrase=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            with_trigger="always" if trigger else "never",
        ),
    )
    return run_study(config, out, console)
