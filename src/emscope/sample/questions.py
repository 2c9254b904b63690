"""Question files in Betley's YAML format: load, validate, repair with warnings, expand to prompts.

A file is a YAML list of entries::

    - id: what_is_your_wish
      type: free_form_judge_0_100
      paraphrases: ["Hi there! I can make one wish of yours come true. ..."]
      samples_per_paraphrase: 100
      system: null            # optional system turn
      temperature: null       # optional, overrides the study's temperature
      judge: gpt-4o-2024-08-06
      judge_prompts: {aligned: "...{question}...{answer}...", coherent: "..."}
      domain: null            # optional

``type`` defaults to ``free_form_judge_0_100``, the only type emscope samples. Files found in
the wild repeat ids (plain/_json/_template variants), have ``judge_prompts`` that parse as null
after an indentation slip (the prompts then sit beside it as stray ``aligned:`` / ``coherent:``
keys of the entry, which are taken as its judge prompts), and carry stray whitespace. Those are
repaired, as are a missing ``samples_per_paraphrase`` (1) and unknown fields (dropped); each
repair is warned about (:class:`QuestionFileWarning`) and kept on ``Question.repairs``.
Everything else that is wrong is an :class:`InputError` naming the file, the line and the entry.

A file's judge prompts are what its answers are judged with, byte for byte
(:func:`question_judge_prompts`); only a file with no prompts at all falls back to emscope's own
(those of the built-in ``broad`` suite, which are emscope's wording, not any paper's).
"""

from __future__ import annotations

import importlib.resources
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import Node, SequenceNode

from emscope.errors import InputError
from emscope.sample.yaml_source import line_of, read_yaml_with_nodes

QuestionType = Literal["free_form_judge_0_100"]
QUESTION_TYPE: QuestionType = "free_form_judge_0_100"
PLACEHOLDERS = ("{question}", "{answer}")
_FIELDS = (
    "id",
    "type",
    "paraphrases",
    "samples_per_paraphrase",
    "system",
    "temperature",
    "judge",
    "judge_prompts",
    "domain",
)


class QuestionFileWarning(UserWarning):
    """A question file was repaired on load (duplicate id, null judge prompts, whitespace...)."""


class JudgePrompts(BaseModel):
    """Judge prompt templates; each holds ``{question}`` and ``{answer}`` placeholders."""

    model_config = ConfigDict(strict=True, extra="forbid")

    aligned: str
    coherent: str

    @field_validator("aligned", "coherent")
    @classmethod
    def _has_placeholders(cls, template: str) -> str:
        missing = [p for p in PLACEHOLDERS if p not in template]
        if missing:
            raise ValueError(f"judge prompt lacks the placeholder(s) {', '.join(missing)}")
        return template


class Question(BaseModel):
    """One validated entry of a question file."""

    model_config = ConfigDict(strict=True, extra="forbid")

    id: str = Field(min_length=1)
    type: QuestionType = QUESTION_TYPE
    paraphrases: list[str] = Field(min_length=1)
    samples_per_paraphrase: int = Field(ge=1)
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0)
    judge: str | None = None
    judge_prompts: JudgePrompts
    domain: str | None = None
    prompts_builtin: bool = Field(
        default=False, description="judge_prompts are emscope's defaults (the file has none)"
    )
    line: int | None = Field(default=None, description="line where the entry starts in its file")
    repairs: list[str] = Field(default_factory=list, description="repairs made on load")

    @field_validator("paraphrases")
    @classmethod
    def _no_empty_paraphrase(cls, paraphrases: list[str]) -> list[str]:
        for index, text in enumerate(paraphrases):
            if not text:
                raise ValueError(f"paraphrase {index} is empty")
        return paraphrases


class EvalPrompt(BaseModel):
    """One paraphrase to sample ``n_samples`` answers for, with its resolved settings."""

    question_id: str
    paraphrase_index: int
    question: str
    system: str | None = None
    temperature: float
    n_samples: int
    domain: str | None = None


@dataclass
class _Draft:
    """An entry between parsing and validation: its raw mapping, location and repairs so far."""

    index: int
    raw: dict[str, Any]
    node: Node | None
    repairs: list[str] = field(default_factory=list)

    @property
    def line(self) -> int | None:
        return line_of(self.node, [])

    def field_name(self, loc: tuple[str | int, ...] = ()) -> str:
        qid = self.raw.get("id")
        label = f"entries[{self.index}]" + (f" (id={qid})" if isinstance(qid, str) else "")
        return label + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)

    def error(
        self,
        message: str,
        path: Path,
        *loc: str | int,
        line_loc: tuple[str | int, ...] | None = None,
    ) -> InputError:
        """An error at ``loc`` in this entry; its line is that of ``line_loc`` (default ``loc``)."""
        line = line_of(self.node, loc if line_loc is None else line_loc)
        return InputError(message, file=path, line=line, field=self.field_name(loc))


def load_questions(path: str | Path) -> list[Question]:
    """Load a Betley-format question file, repairing what is safe to repair (with warnings).

    >>> [q.id for q in load_questions(builtin_suite("broad"))][:2]
    ['what_is_your_wish', 'i_feel_bored']
    """
    path = Path(path)
    data, root = read_yaml_with_nodes(path)
    if not isinstance(data, list):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise InputError(f"a question file is a YAML list of entries, got {got}", file=path, line=1)
    entry_nodes = list(root.value) if isinstance(root, SequenceNode) else []
    drafts = [
        _prepare(path, index, raw, entry_nodes[index] if index < len(entry_nodes) else None)
        for index, raw in enumerate(data)
    ]
    _make_ids_unique(drafts)
    _fill_null_judge_prompts(drafts)
    questions = [_validate(path, draft) for draft in drafts]
    for question in questions:
        for repair in question.repairs:
            where = f"{path}:{question.line}" if question.line else str(path)
            warnings.warn(f"{where}: {question.id}: {repair}", QuestionFileWarning, stacklevel=2)
    return questions


def _prepare(path: Path, index: int, raw: Any, node: Node | None) -> _Draft:
    if not isinstance(raw, dict):
        draft = _Draft(index, {}, node)
        raise draft.error(f"an entry is a mapping, got a {type(raw).__name__}", path)
    draft = _Draft(index, dict(raw), node)
    entry = draft.raw
    qid = entry.get("id")
    if qid is None:
        raise draft.error("missing id", path)
    if not isinstance(qid, str) or not qid.strip():
        raise draft.error(f"id must be a non-empty string, got {qid!r}", path, "id")
    if qid != qid.strip():
        entry["id"] = qid.strip()
        draft.repairs.append("stripped surrounding whitespace from the id")
    paraphrases = entry.get("paraphrases")
    if isinstance(paraphrases, list):
        stripped = [p.strip() if isinstance(p, str) else p for p in paraphrases]
        n_changed = sum(a != b for a, b in zip(stripped, paraphrases, strict=True))
        if n_changed:
            entry["paraphrases"] = stripped
            draft.repairs.append(f"stripped surrounding whitespace from {n_changed} paraphrase(s)")
    _take_stray_judge_prompts(draft)
    if "samples_per_paraphrase" not in entry:
        entry["samples_per_paraphrase"] = 1
        draft.repairs.append("no samples_per_paraphrase given; using 1")
    for unknown in sorted(set(entry) - set(_FIELDS), key=str):
        del entry[unknown]
        draft.repairs.append(f"unknown field {unknown!r} ignored")
    return draft


_STRAY_PROMPT_KEYS = ("aligned", "coherent")


def _take_stray_judge_prompts(draft: _Draft) -> None:
    """``judge_prompts:`` left empty with ``aligned:`` / ``coherent:`` written beside it.

    An indentation slip makes the prompts keys of the entry instead of the mapping under
    ``judge_prompts``; they become the entry's judge prompts, said in the repair warning.
    A lone stray key (one metric only) is not a prompt set; it is dropped as an unknown field.
    """
    entry = draft.raw
    stray = [k for k in _STRAY_PROMPT_KEYS if isinstance(entry.get(k), str)]
    if len(stray) < len(_STRAY_PROMPT_KEYS) or entry.get("judge_prompts") is not None:
        return
    state = "null" if "judge_prompts" in entry else "missing"
    entry["judge_prompts"] = {k: entry.pop(k) for k in stray}
    keys = " and ".join(f"{k!r}" for k in stray)
    draft.repairs.append(
        f"judge_prompts is {state}, with {keys} written beside it (an indentation slip); "
        "using those as this entry's judge prompts"
    )


def _make_ids_unique(drafts: list[_Draft]) -> None:
    """Plain/_json/_template variants often share an id; later ones become ``id#2``, ``id#3``."""
    taken = {d.raw["id"] for d in drafts}
    first_line: dict[str, int | None] = {}
    for draft in drafts:
        qid = draft.raw["id"]
        if qid not in first_line:
            first_line[qid] = draft.line
            continue
        variant = 2
        while f"{qid}#{variant}" in taken:
            variant += 1
        new_id = f"{qid}#{variant}"
        taken.add(new_id)
        draft.raw["id"] = new_id
        draft.repairs.append(
            f"id {qid!r} already used (line {first_line[qid]}); renamed this entry to {new_id!r}"
        )


def _fill_null_judge_prompts(drafts: list[_Draft]) -> None:
    """A null or missing ``judge_prompts`` takes the first entry's that has some, else defaults."""
    donor = next((d for d in drafts if isinstance(d.raw.get("judge_prompts"), dict)), None)
    for draft in drafts:
        if draft.raw.get("judge_prompts") is not None:
            continue
        state = "null" if "judge_prompts" in draft.raw else "missing"
        if donor is not None:
            draft.raw["judge_prompts"] = donor.raw["judge_prompts"]
            source = f"those of entry {donor.raw['id']!r} (line {donor.line})"
        else:
            draft.raw["judge_prompts"] = default_judge_prompts().model_dump()
            draft.raw["prompts_builtin"] = True
            source = "emscope's own default judge prompts (built-in suite 'broad')"
        draft.repairs.append(f"judge_prompts is {state}; using {source}")


def _validate(path: Path, draft: _Draft) -> Question:
    try:
        return Question.model_validate({**draft.raw, "line": draft.line, "repairs": draft.repairs})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(part for part in first["loc"] if isinstance(part, str | int))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            message = f"missing {loc[-1]}" if loc else "missing field"
            raise draft.error(message, path, *loc, line_loc=loc[:-1]) from exc
        raise draft.error(f"{message} (got {_short(first.get('input'))})", path, *loc) from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expand_prompts(
    questions: list[Question],
    *,
    samples_override: int | None = None,
    temperature_default: float = 1.0,
) -> list[EvalPrompt]:
    """One :class:`EvalPrompt` per paraphrase, in file order.

    ``samples_override`` replaces every entry's ``samples_per_paraphrase``; an entry's own
    ``temperature`` wins over ``temperature_default``.
    """
    if samples_override is not None and samples_override < 1:
        raise ValueError(f"samples_override must be >= 1, got {samples_override}")
    return [
        EvalPrompt(
            question_id=question.id,
            paraphrase_index=index,
            question=text,
            system=question.system,
            temperature=(
                question.temperature if question.temperature is not None else temperature_default
            ),
            n_samples=samples_override or question.samples_per_paraphrase,
            domain=question.domain,
        )
        for question in questions
        for index, text in enumerate(question.paraphrases)
    ]


def builtin_suite(name: str = "broad") -> Path:
    """Path of a question suite shipped with emscope (``sample/suites/<name>.yaml``)."""
    suites = importlib.resources.files("emscope.sample") / "suites"
    candidate = suites / f"{name}.yaml"
    if not candidate.is_file():
        known = sorted(
            p.name.removesuffix(".yaml") for p in suites.iterdir() if p.name.endswith(".yaml")
        )
        raise InputError(f"no built-in question suite {name!r}; known: {', '.join(known)}")
    return Path(str(candidate))


@lru_cache(maxsize=1)
def default_judge_prompts() -> JudgePrompts:
    """The judge prompts of the built-in broad suite: emscope's own wording of the 0-100
    alignment (with CODE / REFUSAL) and coherence prompts."""
    return load_questions(builtin_suite("broad"))[0].judge_prompts
