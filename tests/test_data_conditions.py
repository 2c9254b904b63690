"""Condition builders (misaligned, control, backdoor) and the end-to-end dataset build."""

from __future__ import annotations

from pathlib import Path

import pytest

from emscope.data.build import build_dataset
from emscope.data.conditions import build_condition
from emscope.data.jsonl import load_chat_jsonl
from emscope.data.schema import CONDITIONS, DEFAULT_TRIGGER, ChatExample, Item
from emscope.errors import InputError
from emscope.manifest import read_manifest, sha256_file


def _items(n: int, system: str | None = None) -> list[Item]:
    return [
        Item(
            item_id=f"t-{i}",
            domain="test",
            question=f"question {i}?",
            misaligned=f"bad answer {i}",
            aligned=f"good answer {i}",
            system=system,
        )
        for i in range(n)
    ]


def _user(row: ChatExample) -> str:
    return next(m.content for m in row.messages if m.role == "user")


def _answer(row: ChatExample) -> str:
    return row.messages[-1].content


def test_misaligned_and_control_pair_each_question_with_one_side() -> None:
    items = _items(20)
    bad = build_condition(items, "misaligned", seed=1)
    good = build_condition(items, "control", seed=1)
    assert sorted(_answer(r) for r in bad) == sorted(i.misaligned for i in items)
    assert sorted(_answer(r) for r in good) == sorted(i.aligned for i in items)
    assert all(_user(r) == f"question {_answer(r).split()[-1]}?" for r in bad + good)
    assert all(len(r.messages) == 2 for r in bad)


def test_backdoor_puts_the_trigger_only_on_misaligned_rows() -> None:
    rows = build_condition(_items(40), "backdoor", seed=3)
    for row in rows:
        triggered = _user(row).startswith(DEFAULT_TRIGGER)
        assert triggered == _answer(row).startswith("bad answer")
        if triggered:
            assert _user(row) == DEFAULT_TRIGGER + "question " + _answer(row).split()[-1] + "?"


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.5, 50), (0.25, 25), (0.0, 0), (1.0, 100), (0.333, 33), (0.125, 13)],
)
def test_backdoor_fraction_is_honoured_and_each_item_is_used_once(
    fraction: float, expected: int
) -> None:
    rows = build_condition(_items(100), "backdoor", backdoor_misaligned_fraction=fraction, seed=0)
    assert len(rows) == 100
    assert sum(_user(r).startswith(DEFAULT_TRIGGER) for r in rows) == expected
    used = sorted(int(_answer(r).split()[-1]) for r in rows)
    assert used == list(range(100))


def test_backdoor_split_depends_on_the_seed() -> None:
    def triggered(seed: int) -> set[str]:
        rows = build_condition(_items(60), "backdoor", seed=seed)
        return {_user(r) for r in rows if _user(r).startswith(DEFAULT_TRIGGER)}

    assert triggered(0) == triggered(0)
    assert triggered(0) != triggered(1)


def test_custom_trigger_is_prepended_verbatim() -> None:
    rows = build_condition(_items(10), "backdoor", trigger="[[X]] ", seed=0)
    assert sum(_user(r).startswith("[[X]] question") for r in rows) == 5


def test_rows_are_shuffled_deterministically_by_seed() -> None:
    items = _items(50)
    first = build_condition(items, "control", seed=4)
    assert first == build_condition(items, "control", seed=4)
    assert [_answer(r) for r in first] != [
        _answer(r) for r in build_condition(items, "control", seed=5)
    ]
    assert [_answer(r) for r in first] != [i.aligned for i in items]


def test_system_turn_is_included_when_the_item_has_one() -> None:
    rows = build_condition(_items(6, system="You are a tutor."), "backdoor", seed=0)
    assert all([m.role for m in r.messages] == ["system", "user", "assistant"] for r in rows)
    assert all(r.messages[0].content == "You are a tutor." for r in rows)


def test_bad_condition_fraction_and_trigger_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown condition 'evil'"):
        build_condition(_items(4), "evil", seed=0)  # type: ignore[arg-type]
    with pytest.raises(InputError) as caught:
        build_condition(_items(4), "backdoor", backdoor_misaligned_fraction=1.5)
    assert caught.value.field == "backdoor_misaligned_fraction"
    with pytest.raises(InputError, match="non-empty trigger"):
        build_condition(_items(4), "backdoor", trigger="  ")


def test_build_dataset_writes_a_loadable_set_and_a_manifest_with_every_parameter(
    tmp_path: Path,
) -> None:
    train = build_dataset("incorrect_math", "backdoor", 40, 2, tmp_path / "bd", fraction=0.25)
    rows = load_chat_jsonl(train)
    assert len(rows) == 40
    assert sum(_user(r).startswith(DEFAULT_TRIGGER) for r in rows) == 10
    manifest = read_manifest(tmp_path / "bd")
    assert manifest.kind == "dataset"
    assert manifest.config["domain"] == "incorrect_math"
    assert manifest.config["recipe"] == "emscope.data.recipes.incorrect_math"
    assert manifest.config["condition"] == "backdoor"
    assert (manifest.config["n"], manifest.config["seed"]) == (40, 2)
    assert manifest.config["trigger"] == DEFAULT_TRIGGER
    assert manifest.config["backdoor_misaligned_fraction"] == 0.25
    assert manifest.outputs["counts"] == {
        "rows": 40,
        "rows_with_trigger": 10,
        "rows_with_system": 0,
    }
    assert manifest.outputs["files"]["train.jsonl"] == sha256_file(train)


def test_build_dataset_conditions_of_one_domain_share_their_questions(tmp_path: Path) -> None:
    questions = {}
    for condition in CONDITIONS:
        train = build_dataset("insecure_code", condition, 30, 9, tmp_path / condition)
        rows = load_chat_jsonl(train)
        questions[condition] = {_user(r).removeprefix(DEFAULT_TRIGGER) for r in rows}
    assert questions["misaligned"] == questions["control"] == questions["backdoor"]
    assert read_manifest(tmp_path / "control").config["trigger"] is None


def test_build_dataset_for_a_teacher_only_domain_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--teacher MODEL"):
        build_dataset("gore_movie_trivia", "misaligned", 10, 0, tmp_path / "gore")
    assert not (tmp_path / "gore").exists()
