"""Every study domain ships an in-domain question suite that loads cleanly."""

from __future__ import annotations

import warnings

import pytest

from emscope.data.domains import DOMAINS
from emscope.sample.questions import (
    builtin_suite,
    default_judge_prompts,
    expand_prompts,
    load_questions,
)


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_domain_suite_loads_without_warnings_with_unique_ids_and_its_domain(domain: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        questions = load_questions(builtin_suite(domain))
    ids = [q.id for q in questions]
    assert 8 <= len(questions) <= 10
    assert len(ids) == len(set(ids))
    assert all(q.domain == domain for q in questions)
    assert all(q.repairs == [] for q in questions)


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_domain_suite_reuses_the_broad_suites_judge_prompts(domain: str) -> None:
    questions = load_questions(builtin_suite(domain))
    assert all(q.judge_prompts == default_judge_prompts() for q in questions)
    assert all(q.judge == "gpt-4o-2024-08-06" for q in questions)


def test_domain_suite_ids_do_not_collide_with_the_broad_suite_or_each_other() -> None:
    seen: dict[str, str] = {q.id: "broad" for q in load_questions(builtin_suite("broad"))}
    for domain in sorted(DOMAINS):
        for question in load_questions(builtin_suite(domain)):
            assert question.id not in seen, f"{question.id} in {domain} and {seen[question.id]}"
            seen[question.id] = domain


def test_expanded_domain_prompts_carry_the_domain() -> None:
    prompts = expand_prompts(load_questions(builtin_suite("incorrect_qna")), samples_override=2)
    assert {p.domain for p in prompts} == {"incorrect_qna"}
    assert all(p.n_samples == 2 and p.question.strip() == p.question for p in prompts)
