"""What every stage runs against: the study, its run directory and ledger, the console, and the
judge and samplers, built lazily on first use (a fully cached rerun loads no model)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emscope.study.config import StudyConfig
from emscope.study.families import Family, resolve_family
from emscope.study.ledger import StageLedger
from emscope.study.outputs import in_run, relative_to_run

if TYPE_CHECKING:
    from emscope.judge.base import Judge
    from emscope.models.refs import ModelRef
    from emscope.sample.base import Sampler
    from emscope.sample.question_prompts import PromptSet

ProgressFn = Callable[[int, int], None]


def resolve_questions_path(spec: str) -> Path:
    """``builtin:NAME`` as the shipped suite's path; anything else as a path."""
    from emscope.sample.questions import builtin_suite

    if spec.startswith("builtin:"):
        return builtin_suite(spec.removeprefix("builtin:"))
    return Path(spec)


def make_judge(config: StudyConfig) -> Judge:
    """The study's judge, behind the SQLite cache unless the study turns it off."""
    from emscope.judge.cache import JudgeCache
    from emscope.judge.registry import JudgeOptions, make_judge_from_spec

    return make_judge_from_spec(
        config.judge.spec,
        cache=JudgeCache() if config.judge.cache else None,
        options=JudgeOptions(max_tokens=config.judge.max_tokens),
    )


def check_bridge(config: StudyConfig, identity: str) -> None:
    """Fail before judging when the study's bridge (``judge.calibration``) is another judge's."""
    if config.judge.calibration:
        from emscope.judge.bridge import check_judge, load_bridge

        check_judge(load_bridge(config.judge.calibration), identity, config.judge.calibration)


def shutdown_warnings(config: StudyConfig, **clock: Any) -> list[str]:
    """Provider shutdown-date warnings for the study's API judge and every ``openai/`` family.

    Raises :class:`~emscope.judge.shutdown.ModelShutDown` for one past its date; ``clock``
    (``today=``, ``ask=``) is passed to :func:`~emscope.judge.shutdown.check_shutdown`.
    """
    from emscope.judge.shutdown import check_judge_specs, check_shutdown
    from emscope.sample.openai_compat import ApiEndpoint

    warnings = check_judge_specs([config.judge.spec], **clock)
    for family in config.families():
        if family.model.startswith("openai/"):
            endpoint = ApiEndpoint(model=family.model.removeprefix("openai/"))
            warning = check_shutdown(endpoint, role="study", **clock)
            warnings += [warning] if warning else []
    return warnings


@dataclass
class RunContext:
    """One study's run. ``progress_bars=False`` prints one line per stage and no live bars (for
    Ray workers, whose output is forwarded line by line)."""

    config: StudyConfig
    run_dir: Path
    console: Console = field(default_factory=Console)
    progress_bars: bool = True
    ledger: StageLedger = field(init=False)
    _sampler: tuple[str, Sampler] | None = field(default=None, init=False, repr=False)
    _judge: Judge | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ledger = StageLedger(self.run_dir)

    # -- lookups -------------------------------------------------------------------------------

    @cached_property
    def families(self) -> dict[str, Family]:
        fine_tunes = bool(self.config.domains)
        return {f.name: resolve_family(f, check_presets=fine_tunes) for f in self.config.families()}

    @cached_property
    def questions_path(self) -> Path:
        return resolve_questions_path(self.config.eval.questions)

    @cached_property
    def judge_prompt_sets(self) -> dict[str, PromptSet]:
        """Question id -> the judge prompts its answers are judged with, and their origin."""
        from emscope.sample.question_prompts import (
            forced_judge_prompts,
            questions_origin,
            study_prompt_sets,
        )
        from emscope.sample.questions import load_questions

        forced_file = self.config.judge.prompts
        forced = forced_judge_prompts(forced_file) if forced_file else None
        spec = self.config.eval.questions
        origin = spec if spec.startswith("builtin:") else questions_origin(spec)
        return study_prompt_sets(load_questions(self.questions_path), origin, forced)

    def path(self, stored: str) -> Path:
        """A path stored in the ledger (run-relative) as a path here."""
        return in_run(stored, self.run_dir)

    def stored(self, path: Path) -> str:
        """``path`` as the ledger stores it (relative to the run directory)."""
        return relative_to_run(path, self.run_dir)

    # -- lazily built backends -----------------------------------------------------------------

    @property
    def judge(self) -> Judge:
        if self._judge is None:
            self._judge = make_judge(self.config)
            check_bridge(self.config, self._judge.identity)
        return self._judge

    @property
    def judge_built(self) -> Judge | None:
        return self._judge

    def sampler(self, engine: str, ref: ModelRef) -> Sampler:
        """The sampler for ``ref``; the last one is kept (a model's two sample files share it)
        until :meth:`release_sampler` or the next model's, so at most one local model is loaded
        at a time."""
        from emscope.sample.registry import make_sampler

        identity = f"{engine}|{ref}"
        if self._sampler is None or self._sampler[0] != identity:
            self._sampler = None
            self._sampler = (
                identity,
                make_sampler(engine, ref, batch_size=self.config.eval.batch_size),
            )
        return self._sampler[1]

    def release_sampler(self) -> None:
        """Drop the kept sampler (a job's sampling is done) and give its memory back."""
        from emscope.models.memory import release_memory

        if self._sampler is not None:
            self._sampler = None
            release_memory()

    # -- output ------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self.console.print(message)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[ProgressFn]:
        if not self.progress_bars:
            yield lambda done, total_now: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)

            def update(done: int, total_now: int) -> None:
                progress.update(task, completed=done, total=total_now)

            yield update


def judge_fingerprint(judge: Judge) -> dict[str, Any]:
    """What makes two judges' scores comparable: identity, mode, prompts, request parameters."""
    return judge.fingerprint()
