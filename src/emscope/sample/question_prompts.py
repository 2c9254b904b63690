"""Which judge prompts judge a question's answers, and how their source is named.

Every judge that takes a prompt formats, per answer, the ``judge_prompts`` of the question
file the answer came from, byte for byte. This module maps question ids to those templates
with their origin (the file's path or ``builtin:<suite>``), and reads a forced prompt file
(``judge: {prompts: FILE}`` in a study, ``--prompts FILE`` on the command line).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Container, Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from emscope.errors import InputError
from emscope.judge.base import JudgeRequest, prompt_set_hash
from emscope.manifest import sha256_json
from emscope.sample.questions import JudgePrompts, Question, load_questions
from emscope.sample.records import SampleRecord

BUILTIN_DEFAULT_ORIGIN = "builtin:broad"


def questions_origin(spec: str | Path) -> str:
    """How a question file is named in judgement records: ``builtin:<suite>`` or its path.

    >>> from emscope.sample.questions import builtin_suite
    >>> questions_origin(builtin_suite("broad"))
    'builtin:broad'
    """
    path = Path(spec)
    suites = Path(str(importlib.resources.files("emscope.sample") / "suites"))
    if path.parent.resolve() == suites.resolve() and path.suffix == ".yaml":
        return f"builtin:{path.stem}"
    return str(spec)


PromptSet = tuple[dict[str, str], str]


def question_judge_prompts(questions: list[Question], origin: str) -> dict[str, PromptSet]:
    """Question id -> (judge prompt templates, origin) for judging that question's answers.

    ``origin`` names the file (see :func:`questions_origin`); an entry that took emscope's
    defaults because the file has no prompts is named ``builtin:broad`` instead.
    """
    return {
        q.id: (
            q.judge_prompts.model_dump(),
            BUILTIN_DEFAULT_ORIGIN if q.prompts_builtin else origin,
        )
        for q in questions
    }


def forced_judge_prompts(path: str | Path) -> PromptSet:
    """One prompt set for every question, from ``judge: {prompts: FILE}`` or ``--prompts FILE``.

    ``FILE`` is either a YAML mapping ``{aligned: ..., coherent: ...}`` or a question file, whose
    first entry's judge prompts are used (after the usual repairs). The origin is the path.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the judge prompt file: {exc}", file=path) from exc
    if isinstance(data, dict):
        try:
            prompts = JudgePrompts.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or None
            raise InputError(error["msg"], file=path, field=where) from exc
        return prompts.model_dump(), str(path)
    if isinstance(data, list):
        first = load_questions(path)[0]
        if first.prompts_builtin:
            raise InputError("the question file has no judge prompts", file=path)
        return first.judge_prompts.model_dump(), str(path)
    raise InputError(
        "a judge prompt file is a mapping {aligned: ..., coherent: ...} or a question file",
        file=path,
    )


def study_prompt_sets(
    questions: list[Question], origin: str, forced: PromptSet | None = None
) -> dict[str, PromptSet]:
    """Question id -> prompt set for a run: the file's own, or ``forced`` for every question."""
    if forced is None:
        return question_judge_prompts(questions, origin)
    return {q.id: forced for q in questions}


def prompt_sets_digest(prompt_sets: Mapping[str, PromptSet]) -> str:
    """One hash over a run's prompt sets (text hash and origin per question id).

    It enters the judge stage's cache key, so changing a prompt (or where it comes from)
    judges again.
    """
    return sha256_json(
        {qid: [prompt_set_hash(p), origin] for qid, (p, origin) in prompt_sets.items()}
    )


def prompt_provenance(prompt_sets: Mapping[str, PromptSet]) -> list[dict[str, str | int]]:
    """The distinct prompt sets of a run: origin, hash and how many questions use each."""
    counts: dict[tuple[str, str], int] = {}
    for prompts, origin in prompt_sets.values():
        key = (origin, prompt_set_hash(prompts))
        counts[key] = counts.get(key, 0) + 1
    return [
        {"origin": origin, "prompt_hash": digest, "questions": n}
        for (origin, digest), n in sorted(counts.items())
    ]


def judge_requests_for(
    samples: Iterable[SampleRecord],
    prompt_sets: Mapping[str, PromptSet] | None,
    *,
    skip: Container[str] = (),
) -> list[JudgeRequest]:
    """Judge requests for the answered samples not in ``skip``, each with its question's prompts.

    ``prompt_sets`` None leaves the judge's defaults; a sample whose question id has no prompt
    set is an error, never judged with other prompts.
    """
    requests = []
    for s in samples:
        if s.answer is None or s.error is not None or s.key in skip:
            continue
        prompts: dict[str, str] | None = None
        origin: str | None = None
        if prompt_sets is not None:
            if s.question_id not in prompt_sets:
                raise InputError(
                    f"no judge prompts for question id {s.question_id!r} (sample {s.key}); "
                    "were the answers sampled from another question file?",
                    field="question_id",
                )
            prompts, origin = prompt_sets[s.question_id]
        requests.append(
            JudgeRequest(
                key=s.key,
                question=s.question,
                answer=s.answer,
                prompts=prompts,
                prompt_origin=origin,
            )
        )
    return requests
