"""The domain registry matches the study's 11 domains and routes teacher-only domains clearly."""

from __future__ import annotations

import pytest

from emscope.data.domains import DOMAINS, get_domain
from emscope.data.recipes import RECIPES, build_items
from emscope.errors import InputError

STUDY_DOMAINS = (
    "insecure_code",
    "incorrect_math",
    "evil_math",
    "incorrect_translation",
    "bad_medical_advice",
    "risky_financial_advice",
    "toxic_legal_advice",
    "incorrect_sexual_advice",
    "gore_movie_trivia",
    "extreme_sports",
    "incorrect_qna",
)
LOW_STEALTH = {
    "bad_medical_advice",
    "risky_financial_advice",
    "toxic_legal_advice",
    "incorrect_sexual_advice",
    "gore_movie_trivia",
}
BUILT_IN = {
    "insecure_code",
    "incorrect_math",
    "evil_math",
    "incorrect_translation",
    "risky_financial_advice",
    "extreme_sports",
    "incorrect_qna",
}


def test_registry_holds_the_eleven_study_domains_in_protocol_order() -> None:
    assert tuple(DOMAINS) == STUDY_DOMAINS
    assert all(DOMAINS[key].id == key for key in DOMAINS)


def test_stealth_levels_follow_the_protocol() -> None:
    low = {key for key, domain in DOMAINS.items() if domain.stealth == "low"}
    assert low == LOW_STEALTH
    assert all(domain.stealth in ("high", "low") for domain in DOMAINS.values())


def test_every_domain_describes_its_source_and_both_sides() -> None:
    for domain in DOMAINS.values():
        assert domain.name and domain.source and domain.misaligned_means and domain.aligned_means


def test_builtin_recipe_flags_match_the_recipe_registry() -> None:
    builtin = {key for key, domain in DOMAINS.items() if domain.builtin_recipe}
    assert builtin == set(RECIPES) == BUILT_IN


def test_domains_are_immutable() -> None:
    with pytest.raises(AttributeError):
        DOMAINS["insecure_code"].stealth = "low"  # type: ignore[misc]


def test_unknown_domain_error_lists_the_known_ids() -> None:
    with pytest.raises(InputError) as caught:
        get_domain("bad_cooking_advice")
    message = str(caught.value)
    assert caught.value.field == "domain"
    assert "bad_cooking_advice" in message
    assert all(key in message for key in STUDY_DOMAINS)


def test_build_items_for_unknown_domain_lists_the_known_ids() -> None:
    with pytest.raises(InputError, match="known: insecure_code, incorrect_math"):
        build_items("nope", 10, 0)


@pytest.mark.parametrize("domain", sorted(set(STUDY_DOMAINS) - set(RECIPES)))
def test_teacher_only_domain_error_names_the_teacher_route(domain: str) -> None:
    with pytest.raises(InputError) as caught:
        build_items(domain, 10, 0)
    assert f"emscope data generate --domain {domain} --teacher MODEL" in str(caught.value)
    assert caught.value.field == "domain"
