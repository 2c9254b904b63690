"""The judge protocol, what a judge is asked per answer and what it stores per answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from emscope.errors import InputError
from emscope.manifest import sha256_json, sha256_text

Metric = Literal["aligned", "coherent"]
METRICS: tuple[Metric, ...] = ("aligned", "coherent")


class JudgeRequest(BaseModel):
    """One answer to judge: the question without any trigger, the answer, and its prompts.

    ``prompts`` maps each metric to the judge-prompt template of the question file the answer
    came from (``{question}`` and ``{answer}`` placeholders); None means the judge's own
    defaults. ``prompt_origin`` names where those templates came from (a question file path,
    ``builtin:<suite>``, a forced prompt file). A judge that takes prompts formats
    ``template.format(question=question, answer=answer)`` and sends the result unchanged.
    """

    key: str
    question: str
    answer: str
    prompts: dict[str, str] | None = None
    prompt_origin: str | None = None


class MetricScore(BaseModel):
    score: float | None
    numeric_mass: float | None = None
    raw: Any = None


class JudgeRecord(BaseModel):
    """Scores of one answer, with the judge's identity so results stay comparable.

    ``prompt_hash`` is :func:`prompt_set_hash` of the templates actually sent (None for judges
    that take no prompt); ``prompt_origin`` where they came from.
    """

    key: str
    judge: str
    mode: str
    prompt_hash: str | None = None
    prompt_origin: str | None = None
    aligned: MetricScore
    coherent: MetricScore
    extra: dict[str, Any] = Field(default_factory=dict)


def prompt_set_hash(prompts: Mapping[Any, str]) -> str:
    """sha256 of a set of judge-prompt templates: each template hashed, keyed by metric.

    Only the judged metrics enter, so extra keys in a question file do not change the hash.

    >>> a = prompt_set_hash({"aligned": "A {question} {answer}", "coherent": "C"})
    >>> a == prompt_set_hash({"coherent": "C", "aligned": "A {question} {answer}"})
    True
    >>> a == prompt_set_hash({"aligned": "A {question} {answer} ", "coherent": "C"})
    False
    """
    return sha256_json({m: sha256_text(prompts[m]) for m in METRICS if m in prompts})


def request_prompts(request: JudgeRequest, defaults: Mapping[Metric, str]) -> dict[Metric, str]:
    """The templates to send for ``request``: its own prompts, else the judge's ``defaults``.

    A request's prompt set must name every metric; extra keys are ignored.

    >>> own = {"aligned": "A", "coherent": "C"}
    >>> r = JudgeRequest(key="k", question="q", answer="a", prompts=own)
    >>> request_prompts(r, {"aligned": "x", "coherent": "y"})
    {'aligned': 'A', 'coherent': 'C'}
    """
    if request.prompts is None:
        return {m: defaults[m] for m in METRICS}
    missing = [m for m in METRICS if m not in request.prompts]
    if missing:
        origin = request.prompt_origin or "the request"
        raise InputError(f"{origin} has no judge prompt for {missing}", field="judge_prompts")
    return {m: request.prompts[m] for m in METRICS}


def fill_prompt(template: str, request: JudgeRequest) -> str:
    """The message a judge sends: the template with the raw question and the answer."""
    return template.format(question=request.question, answer=request.answer)


class Judge(Protocol):
    """Anything that scores (question, answer) pairs for alignment and coherence.

    :meth:`fingerprint` declares everything that makes two judges' scores comparable apart
    from the per-request prompts: at least ``identity``, ``mode``, ``prompt_hash`` (of the
    judge's default prompt set, None when it takes no prompt) and ``params`` (request
    parameters, None when there are none). Caches and study stages key on it, plus the
    :func:`prompt_set_hash` of each request's prompts.
    """

    @property
    def identity(self) -> str: ...

    def fingerprint(self) -> dict[str, Any]: ...

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]: ...
