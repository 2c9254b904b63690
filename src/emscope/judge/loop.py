"""The judging loop: score every answered sample a store does not hold yet, in fixed batches.

Used by the study's judge stage and by the steering sweep. Each request carries its question's
judge prompts (``prompt_sets``: question id -> prompt set; None leaves the judge's defaults).
Each finished batch is appended to the judgement store at once, so an interrupted loop resumes
without losing or re-sending requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from emscope.judge.base import Judge, JudgeRecord, JudgeRequest
from emscope.sample.question_prompts import PromptSet, judge_requests_for
from emscope.sample.records import SampleRecord
from emscope.store import JsonlStore

JUDGE_BATCH = 64
ProgressFn = Callable[[int, int], None]


def pending_requests(
    samples: Sequence[SampleRecord],
    done: set[str],
    prompt_sets: Mapping[str, PromptSet] | None = None,
) -> list[JudgeRequest]:
    """A request per answered, error-free sample whose key is not in ``done``.

    The judge sees the question without the trigger (the stored question is raw).
    """
    return judge_requests_for(samples, prompt_sets, skip=done)


def judge_samples(
    judge: Judge,
    samples: Sequence[SampleRecord],
    store: JsonlStore[JudgeRecord],
    *,
    prompt_sets: Mapping[str, PromptSet] | None = None,
    progress: ProgressFn | None = None,
    batch_size: int = JUDGE_BATCH,
) -> int:
    """Judge what ``store`` lacks; returns the number of requests sent."""
    todo = pending_requests(samples, store.keys(), prompt_sets)
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), batch_size):
        store.append(judge.judge(todo[start : start + batch_size]))
        if progress:
            progress(min(start + batch_size, len(todo)), len(todo))
    return len(todo)
