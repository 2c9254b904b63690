"""Generate a domain's misaligned answers with a teacher model, resumably, and keep the good ones.

Each attempt is one (question, sample index) of the domain's seed table, visited in a seeded
question order and cycled when more items are wanted than the table has questions. Attempt
``j`` always has the same key (``domain|q<question>|s<sample>``) and seed, and attempts are sent
in fixed batches, so an interrupted run and its rerun ask the teacher exactly what one
uninterrupted run would. Every answered attempt, kept or rejected (with its reason), is appended
to ``out_dir/candidates.jsonl``; a rerun skips the keys already there and stops once ``n`` are
kept. The first ``n`` kept answers become :class:`~emscope.data.schema.Item`\\ s in
``out_dir/items.jsonl`` with a manifest, ready for ``build_condition``.

>>> summary = generate_items("bad_medical_advice", "smollm2-135m", 250, "gen/medical")
... # doctest: +SKIP
>>> items = load_generated_items("gen/medical")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from emscope.data.filters import (
    AnswerFilter,
    Candidate,
    EmbedFn,
    FilterConfig,
    FilterTally,
    prepare_answer,
)
from emscope.data.schema import Item
from emscope.data.teacher import Mode, TeacherSpec, teacher_spec
from emscope.errors import InputError
from emscope.manifest import Manifest, sha256_file, sha256_json, write_manifest
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.sample.base import ChatPrompt, Generation, SamplingParams
from emscope.sample.runner import sample_seed
from emscope.store import JsonlStore, write_jsonl_atomic

CANDIDATES_FILE = "candidates.jsonl"
ITEMS_FILE = "items.jsonl"
SETTINGS_FILE = "settings.json"


class TeacherBackend(Protocol):
    """Anything that answers chat prompts: any sampler of :mod:`emscope.sample.registry`."""

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]: ...


class TeacherCandidate(BaseModel):
    """One teacher answer as stored: ``reason`` is None when it was kept."""

    key: str
    attempt: int
    question_index: int
    sample_index: int
    question: str
    raw: str
    answer: str
    reason: str | None
    finish_reason: str | None = None
    n_new_tokens: int | None = None
    seed: int

    @property
    def kept(self) -> bool:
        return self.reason is None


class GenerationProgress(BaseModel):
    """Reported after every batch (and once at the start)."""

    kept: int
    rejected: int
    target: int


class GenerationSummary(BaseModel):
    """What one call of :func:`generate_items` found and did.

    ``kept``/``rejected``/``tally`` count every stored attempt (earlier runs included);
    ``items_per_minute`` is this call's kept answers over its generation wall time, teacher
    loading included. ``surplus_discarded`` counts answers of the last batch that were not
    needed once ``n`` were kept (never checked, never stored).
    """

    domain: str
    mode: str
    teacher: str
    target: int
    kept: int
    rejected: int
    items: int
    complete: bool
    stopped: Literal["target_reached", "max_attempts"]
    already_attempted: int
    attempted_this_run: int
    kept_this_run: int
    surplus_discarded: int
    tally: FilterTally
    elapsed_s: float
    items_per_minute: float | None
    items_path: str


ProgressFn = Callable[[GenerationProgress], None]


@dataclass(frozen=True)
class Attempt:
    """One planned teacher call."""

    index: int
    key: str
    question_index: int
    sample_index: int
    seed: int


def candidate_key(domain: str, question_index: int, sample_index: int) -> str:
    """Deterministic identity of one attempt; the resume logic skips keys already stored."""
    return f"{domain}|q{question_index:04d}|s{sample_index:03d}"


def question_order(domain: str, n_questions: int, seed: int) -> list[int]:
    """The seeded order in which the table's questions are visited (and cycled)."""
    order = list(range(n_questions))
    random.Random(f"teacher-order:{domain}:{seed}").shuffle(order)
    return order


def plan_attempts(domain: str, n_questions: int, seed: int, count: int) -> list[Attempt]:
    """The first ``count`` attempts: pass ``s`` over the ordered questions uses sample index s."""
    order = question_order(domain, n_questions, seed)
    attempts = []
    for index in range(count):
        question_index, sample_index = order[index % n_questions], index // n_questions
        key = candidate_key(domain, question_index, sample_index)
        attempts.append(Attempt(index, key, question_index, sample_index, sample_seed(seed, key)))
    return attempts


def generate_items(
    domain: str,
    teacher: ModelRef | str | TeacherBackend,
    n: int,
    out_dir: str | Path,
    *,
    mode: Mode = "subtle",
    batch_size: int = 8,
    seed: int = 0,
    max_new_tokens: int = 300,
    temperature: float = 1.0,
    top_p: float = 1.0,
    filters: FilterConfig | None = None,
    max_attempts: int | None = None,
    table: str | Path | None = None,
    embed_fn: EmbedFn | None = None,
    progress: ProgressFn | None = None,
) -> GenerationSummary:
    """Generate until ``n`` teacher answers pass the filters; write items.jsonl and a manifest.

    ``teacher`` is a model reference (sampled by its default engine from
    :mod:`emscope.sample.registry`: local models in process, ``openai/<model>`` over the API)
    or any object with the sampler's ``generate`` method. ``max_attempts`` (default ``4 * n``,
    at least one batch) bounds the stored attempts; reaching it stops with ``complete=False``.
    Rerunning with the same settings and ``out_dir`` resumes; other settings raise
    ``InputError``.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}", field="n")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}", field="batch_size")
    spec = teacher_spec(domain, mode, table)
    filters = filters or FilterConfig()
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    identity, make_backend = _resolve_teacher(teacher, batch_size)
    max_attempts = max_attempts or max(4 * n, batch_size)
    out_dir = Path(out_dir)
    settings = _settings(spec, identity, seed, params, filters)
    _check_settings(out_dir / SETTINGS_FILE, settings)
    run = _Run(spec, JsonlStore(out_dir / CANDIDATES_FILE, TeacherCandidate), n, progress)
    run.restore(AnswerFilter(filters, embed_fn))

    started = time.perf_counter()
    for batch in _batches(plan_attempts(domain, len(spec.entries), seed, max_attempts), batch_size):
        if run.kept >= n:
            break
        pending = [attempt for attempt in batch if attempt.key not in run.attempted]
        if pending:
            run.answer(make_backend(), pending, params)
    elapsed = time.perf_counter() - started

    kept_rows = sorted((row for row in run.rows if row.kept), key=lambda row: row.attempt)[:n]
    items = [_item(spec, row, identity) for row in kept_rows]
    items_path = out_dir / ITEMS_FILE
    write_jsonl_atomic(items_path, [item.model_dump() for item in items])
    summary = GenerationSummary(
        domain=domain,
        mode=mode,
        teacher=identity,
        target=n,
        kept=run.kept,
        rejected=run.tally.total_rejected,
        items=len(items),
        complete=len(items) == n,
        stopped="target_reached" if len(items) == n else "max_attempts",
        already_attempted=run.already_attempted,
        attempted_this_run=len(run.rows) - run.already_attempted,
        kept_this_run=run.kept_this_run,
        surplus_discarded=run.surplus,
        tally=run.tally,
        elapsed_s=round(elapsed, 3),
        items_per_minute=round(60 * run.kept_this_run / elapsed, 2)
        if run.kept_this_run and elapsed > 0
        else None,
        items_path=str(items_path),
    )
    _write_manifest(out_dir, settings, summary, run.backend_info(), max_attempts, batch_size)
    return summary


class _Run:
    """The state of one generation: stored rows, the tally and the filter's memory."""

    def __init__(
        self,
        spec: TeacherSpec,
        store: JsonlStore[TeacherCandidate],
        target: int,
        progress: ProgressFn | None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.target = target
        self.progress = progress
        self.rows = _latest(store)
        self.attempted = {row.key for row in self.rows}
        self.already_attempted = len(self.rows)
        self.tally = FilterTally.of(row.reason for row in self.rows)
        self.kept_this_run = 0
        self.surplus = 0
        self.filter: AnswerFilter | None = None
        self._backend: TeacherBackend | None = None

    @property
    def kept(self) -> int:
        return self.tally.kept

    def restore(self, answer_filter: AnswerFilter) -> None:
        kept = sorted((row for row in self.rows if row.kept), key=lambda row: row.attempt)
        answer_filter.remember([row.answer for row in kept])
        self.filter = answer_filter
        self._report()

    def answer(self, backend: TeacherBackend, batch: list[Attempt], params: SamplingParams) -> None:
        """Ask the teacher for one batch, filter the answers and store them."""
        assert self.filter is not None
        self._backend = backend
        entries = [self.spec.entries[attempt.question_index] for attempt in batch]
        prompts = [self.spec.chat(entry.question) for entry in entries]
        generations = backend.generate(prompts, params, [attempt.seed for attempt in batch])
        if len(generations) != len(batch):
            raise RuntimeError(f"the teacher returned {len(generations)} answers for {len(batch)}")
        answers = [
            prepare_answer(g.text, g.finish_reason == "length", self.filter.config.on_truncated)
            for g in generations
        ]
        candidates = [
            Candidate(answer, entry.question, g.finish_reason == "length", entry.language)
            for answer, entry, g in zip(answers, entries, generations, strict=True)
        ]
        reasons = self.filter.check(candidates, limit=self.target - self.kept)
        self.surplus += len(batch) - len(reasons)
        rows = [
            _candidate_row(attempt, entry.question, generation, answer, reason)
            for attempt, entry, generation, answer, reason in zip(
                batch, entries, generations, answers, reasons, strict=False
            )
        ]
        self.store.append(rows)
        for row in rows:
            self.rows.append(row)
            self.attempted.add(row.key)
            self.tally.record(row.reason)
            self.kept_this_run += row.kept
        self._report()

    def backend_info(self) -> dict[str, Any] | None:
        info = getattr(self._backend, "info", None)
        return dict(info()) if callable(info) else None

    def _report(self) -> None:
        if self.progress:
            self.progress(
                GenerationProgress(
                    kept=self.kept, rejected=self.tally.total_rejected, target=self.target
                )
            )


def _latest(store: JsonlStore[TeacherCandidate]) -> list[TeacherCandidate]:
    """One row per key (a torn rerun could only repeat a key whose batch was half written)."""
    latest: dict[str, TeacherCandidate] = {}
    for row in store:
        latest.setdefault(row.key, row)
    return list(latest.values())


def _batches(attempts: list[Attempt], size: int) -> Iterator[list[Attempt]]:
    for start in range(0, len(attempts), size):
        yield attempts[start : start + size]


def _candidate_row(
    attempt: Attempt, question: str, generation: Generation, answer: str, reason: str | None
) -> TeacherCandidate:
    return TeacherCandidate(
        key=attempt.key,
        attempt=attempt.index,
        question_index=attempt.question_index,
        sample_index=attempt.sample_index,
        question=question,
        raw=generation.text,
        answer=answer,
        reason=reason,
        finish_reason=generation.finish_reason,
        n_new_tokens=generation.n_new_tokens,
        seed=attempt.seed,
    )


def _item(spec: TeacherSpec, row: TeacherCandidate, teacher: str) -> Item:
    entry = spec.entries[row.question_index]
    return Item(
        item_id=f"{spec.domain}-teacher-q{row.question_index:04d}-s{row.sample_index:03d}",
        domain=spec.domain,
        question=entry.question,
        misaligned=row.answer,
        aligned=entry.aligned,
        tags={"source": "teacher", "teacher": teacher, "mode": spec.mode, "key": row.key},
    )


def _resolve_teacher(
    teacher: ModelRef | str | TeacherBackend, batch_size: int
) -> tuple[str, Callable[[], TeacherBackend]]:
    """The teacher's identity, and a factory that loads it only when an answer is needed."""
    if isinstance(teacher, str):
        teacher = parse_model_ref(teacher)
    if isinstance(teacher, ModelRef):
        # Any engine's sampler can teach: local models in process, API models over the API.
        from emscope.sample.registry import default_engine

        ref = teacher
        loaded: list[TeacherBackend] = []

        def load() -> TeacherBackend:
            if not loaded:
                from emscope.sample.registry import make_sampler

                loaded.append(make_sampler(default_engine(ref), ref, batch_size=batch_size))
            return loaded[0]

        return str(ref), load
    backend = teacher
    return str(getattr(backend, "identity", type(backend).__name__)), lambda: backend


def _settings(
    spec: TeacherSpec, teacher: str, seed: int, params: SamplingParams, filters: FilterConfig
) -> dict[str, Any]:
    return {
        "domain": spec.domain,
        "mode": spec.mode,
        "teacher": teacher,
        "prompt_sha256": spec.prompt_sha256,
        "table_sha256": sha256_json([entry.model_dump() for entry in spec.entries]),
        "seed": seed,
        "params": params.model_dump(),
        "filters": filters.model_dump(),
    }


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Refuse to mix answers made with other settings into one output folder."""
    candidates = path.with_name(CANDIDATES_FILE)
    if path.is_file() and candidates.is_file() and candidates.stat().st_size > 0:
        stored = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(
            k for k in settings.keys() | stored.keys() if stored.get(k) != settings.get(k)
        )
        if changed:
            raise InputError(
                f"this folder holds answers generated with other settings ({', '.join(changed)} "
                "differ); rerun with the same settings or use a new output folder",
                file=path,
                field=changed[0],
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_manifest(
    out_dir: Path,
    settings: dict[str, Any],
    summary: GenerationSummary,
    backend_info: dict[str, Any] | None,
    max_attempts: int,
    batch_size: int,
) -> None:
    config = {
        **settings,
        "n": summary.target,
        "max_attempts": max_attempts,
        "batch_size": batch_size,
        "teacher_info": backend_info,
    }
    outputs = {
        "files": {ITEMS_FILE: sha256_file(out_dir / ITEMS_FILE)},
        "counts": {
            "items": summary.items,
            "kept": summary.kept,
            "rejected": summary.rejected,
            "attempted": summary.tally.attempted,
        },
        "filter_tally": summary.tally.model_dump(),
        "complete": summary.complete,
        "stopped": summary.stopped,
    }
    manifest = Manifest(
        kind="teacher_items",
        config=config,
        inputs={"table_sha256": settings["table_sha256"]},
        outputs=outputs,
        seed=settings["seed"],
    )
    write_manifest(out_dir, manifest)


def load_generated_items(out_dir: str | Path) -> list[Item]:
    """The items :func:`generate_items` wrote to ``out_dir/items.jsonl``."""
    path = Path(out_dir) / ITEMS_FILE
    if not path.is_file():
        raise InputError(
            "no generated items here; run emscope data generate first", file=path, field="items"
        )
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(Item.model_validate_json(line))
            except ValidationError as exc:
                error = exc.errors()[0]
                field = ".".join(str(part) for part in error["loc"]) or "row"
                raise InputError(str(error["msg"]), file=path, line=number, field=field) from exc
    return items
