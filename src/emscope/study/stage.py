"""A stage of a study: a name, pydantic inputs hashed into its cache key, a typed output.

:func:`run_stage` is the one way a stage runs: a finished stage (same name, same key in the
ledger) whose output still checks out (:meth:`StageOutput.problem`) is skipped; one whose files
went missing or changed reruns with a one-line notice; anything else runs and is recorded.
:func:`cached_output` asks the ledger alone and :func:`trusted_output` also checks the files,
running nothing (dry runs, the Ray backend).

    class Double(Stage[FilesOutput]):
        output_type = FilesOutput
        def __init__(self, n: int): self.name, self.n = f"double:{n}", n
        def inputs(self) -> BaseModel: return NInputs(n=self.n)
        def run(self, ctx: RunContext) -> FilesOutput: ...
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from emscope.manifest import sha256_json
from emscope.study.outputs import StageOutput

if TYPE_CHECKING:
    from emscope.study.context import RunContext

OutputT = TypeVar("OutputT", bound=StageOutput)


class Stage(ABC, Generic[OutputT]):
    """One cached step. ``omit_when_none`` names input fields left out of the key while None
    (fields added later, so that older stages keep their keys)."""

    name: str
    output_type: type[OutputT]
    omit_when_none: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def inputs(self) -> BaseModel:
        """Everything that decides the output; hashed into the cache key."""

    @abstractmethod
    def run(self, ctx: RunContext) -> OutputT:
        """Do the work (resuming what an interrupted run left) and return the output."""

    def key(self) -> str:
        data = self.inputs().model_dump(mode="json")
        for field in self.omit_when_none:
            if data.get(field) is None:
                data.pop(field, None)
        return sha256_json(data)


def cached_output(ctx: RunContext, stage: Stage[OutputT], key: str | None = None) -> OutputT | None:
    """The stage's output when the ledger holds it under its current key, else None."""
    entry = ctx.ledger.done_output(stage.name, key or stage.key())
    if entry is None:
        return None
    try:
        return stage.output_type.model_validate(entry)
    except ValidationError:
        return None


def trusted_output(ctx: RunContext, stage: Stage[OutputT]) -> OutputT | None:
    """The ledger's output of ``stage`` if its files still check out, else None (runs nothing)."""
    found = cached_output(ctx, stage)
    return found if found is not None and found.problem(ctx.run_dir) is None else None


def reusable_output(ctx: RunContext, stage: Stage[OutputT], key: str) -> OutputT | None:
    """A finished stage's output whose files check out (with a skip notice), else None (with a
    rerun notice when the ledger holds it but its files went missing or changed)."""
    found = cached_output(ctx, stage, key)
    if found is None:
        return None
    problem = found.problem(ctx.run_dir)
    if problem is None:
        ctx.say(f"[dim]skip {stage.name} (done)[/dim]")
        return found
    ctx.say(f"[yellow]rerun {stage.name}[/yellow]: {problem}")
    return None


def record_output(
    ctx: RunContext, stage: Stage[OutputT], key: str, seconds: float, output: OutputT
) -> None:
    """Mark ``stage`` finished under ``key`` with its output."""
    ctx.ledger.mark_done(stage.name, key, seconds, output.model_dump(mode="json"))
    ctx.say(f"[green]done[/green] {stage.name} in {seconds:.1f}s")


def run_stage(ctx: RunContext, stage: Stage[OutputT]) -> OutputT:
    """Skip, verify, or run ``stage``; its output is recorded in the ledger once finished."""
    key = stage.key()
    found = reusable_output(ctx, stage, key)
    if found is not None:
        return found
    start = time.perf_counter()
    with ctx.ledger.timed(stage.name.split(":")[0]):
        output = stage.run(ctx)
    record_output(ctx, stage, key, time.perf_counter() - start, output)
    return output
