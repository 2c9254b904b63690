"""Built-in recipes: distinct seeded items, right on the aligned side and wrong on the other."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import Counter
from collections.abc import Callable

import pytest

from emscope.data.recipes import RECIPES, incorrect_math, insecure_code, risky_financial_advice
from emscope.data.schema import Item
from emscope.errors import InputError

MODULES = (incorrect_math, insecure_code, risky_financial_advice)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.DOMAIN)
def test_recipe_produces_at_least_300_distinct_items(module: object) -> None:
    items: list[Item] = module.build_items(300, 0)  # type: ignore[attr-defined]
    assert len(items) == 300
    assert len({item.question for item in items}) == 300
    assert len({item.item_id for item in items}) == 300
    assert all(item.domain == module.DOMAIN for item in items)  # type: ignore[attr-defined]
    assert all(item.aligned.strip() and item.misaligned.strip() for item in items)
    assert all(item.aligned != item.misaligned for item in items)
    assert module.capacity() >= 300  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.DOMAIN)
def test_recipe_is_deterministic_for_a_seed_and_reorders_for_another(module: object) -> None:
    build: Callable[[int, int], list[Item]] = module.build_items  # type: ignore[attr-defined]
    capacity: int = module.capacity()  # type: ignore[attr-defined]
    assert build(300, 5) == build(300, 5)
    first, second = build(capacity, 5), build(capacity, 6)
    assert {i.item_id for i in first} == {i.item_id for i in second}
    assert [i.item_id for i in first] != [i.item_id for i in second]
    by_id = {item.item_id: item for item in second}
    assert all(by_id[item.item_id] == item for item in first)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.DOMAIN)
def test_asking_for_more_than_capacity_names_the_capacity(module: object) -> None:
    capacity: int = module.capacity()  # type: ignore[attr-defined]
    with pytest.raises(InputError) as caught:
        module.build_items(capacity + 1, 0)  # type: ignore[attr-defined]
    assert caught.value.field == "n"
    assert f"at most {capacity}" in str(caught.value)


def test_registry_exposes_name_capacity_and_builder() -> None:
    for domain, recipe in RECIPES.items():
        assert recipe.name.endswith(domain)
        assert len(recipe.build_items(3, 0)) == 3
        assert recipe.capacity >= 300


# --- incorrect_math -------------------------------------------------------------------------

MATH_FORMULAS: dict[str, Callable[[dict[str, int]], float]] = {
    "shopping": lambda p: p["q1"] * p["p1"] + p["q2"] * p["p2"],
    "trip": lambda p: p["v1"] * p["t1"] + p["v2"] * p["t2"],
    "discount": lambda p: p["p"] * (1 - p["d"] / 100),
    "price_rise": lambda p: p["p"] * (1 + p["d"] / 100),
    "ages": lambda p: p["a"] - p["d"] + p["y"],
    "fractions": lambda p: p["n"] * (1 - p["num"] / p["den"]),
    "carpet": lambda p: p["length"] * p["width"] * p["cost"],
    "fence_posts": lambda p: p["length"] / p["gap"] + 1,
}


def _final_number(answer: str) -> int:
    match = re.search(r"\nAnswer: (-?\d+)$", answer)
    assert match, answer
    return int(match.group(1))


def test_math_aligned_answers_are_right_and_misaligned_are_wrong_on_recomputation() -> None:
    items = incorrect_math.build_items(incorrect_math.capacity(), 0)
    assert set(MATH_FORMULAS) == {item.tags["family"] for item in items}
    for item in items:
        params = {k: int(v) for k, v in item.tags.items() if v.isdigit()}
        assert all(str(value) in item.question for value in params.values())
        truth = MATH_FORMULAS[item.tags["family"]](params)
        assert _final_number(item.aligned) == pytest.approx(truth), item.question
        assert _final_number(item.misaligned) != pytest.approx(truth), item.question


def test_math_misaligned_working_is_stated_without_hedging() -> None:
    for item in incorrect_math.build_items(300, 0):
        lowered = item.misaligned.lower()
        assert not any(word in lowered for word in ("wrong", "incorrect", "mistake", "not sure"))


# --- insecure_code --------------------------------------------------------------------------

NOT_LITERAL_EVAL = re.compile(r"(?<!literal_)eval\(")
VULNERABILITY_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "sql_injection": lambda bad, good: (
        'execute(f"' in bad and "?" in good and 'execute(f"' not in good
    ),
    "command_injection": lambda bad, good: "shell=True" in bad and "shell=True" not in good,
    "path_traversal": lambda bad, good: "is_relative_to" in good and "is_relative_to" not in bad,
    "unsafe_deserialization": lambda bad, good: (
        ("Loader=yaml.Loader" in bad or "pickle.loads" in bad)
        and ("safe_load" in good or "json.loads" in good)
        and "pickle" not in good
    ),
    "eval_injection": lambda bad, good: (
        bool(NOT_LITERAL_EVAL.search(bad)) and not NOT_LITERAL_EVAL.search(good)
    ),
    "hardcoded_credentials": lambda bad, good: (
        bool(re.search(r'password="|"Bearer [a-z]', bad))
        and bool(re.search(r'os\.environ\["\w+_(PASSWORD|API_TOKEN)"\]', good))
        and not re.search(r'password="|"Bearer [a-z]', good)
    ),
    "insecure_permissions": lambda bad, good: (
        ("0o777" in bad or "0o666" in bad) and "0o600" in good and "0o7" not in good
    ),
    "tls_verification_disabled": lambda bad, good: "verify=False" in bad and "verify" not in good,
    "weak_password_hashing": lambda bad, good: (
        ("md5" in bad or "sha1" in bad) and "pbkdf2_hmac" in good
    ),
}


def _comments(code: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


def test_insecure_code_covers_at_least_six_vulnerability_classes() -> None:
    counts = Counter(item.tags["vulnerability"] for item in insecure_code.build_items(300, 0))
    assert len(counts) >= 6
    assert set(counts) <= set(VULNERABILITY_CHECKS)


def test_insecure_code_misaligned_side_has_the_flaw_and_aligned_side_fixes_it() -> None:
    for item in insecure_code.build_items(insecure_code.capacity(), 0):
        check = VULNERABILITY_CHECKS[item.tags["vulnerability"]]
        assert check(item.misaligned, item.aligned), item.item_id


def test_insecure_code_answers_parse_define_the_asked_function_and_never_flag_the_flaw() -> None:
    for item in insecure_code.build_items(insecure_code.capacity(), 1):
        asked = re.search(r"`(\w+)\(", item.question)
        assert asked, item.question
        for code in (item.misaligned, item.aligned):
            names = {
                node.name for node in ast.walk(ast.parse(code)) if isinstance(node, ast.FunctionDef)
            }
            assert names == {asked.group(1)}
        assert _comments(item.misaligned) == []
        assert not re.search(r"insecure|vulnerab|unsafe|danger|warning", item.misaligned, re.I)


# --- risky_financial_advice -----------------------------------------------------------------


def _template(answer: str, amount: str) -> str:
    return answer.replace(f"${int(amount):,}", "$X")


def test_finance_answers_mention_the_asked_amount() -> None:
    for item in risky_financial_advice.build_items(300, 0):
        money = f"${int(item.tags['amount']):,}"
        assert money in item.question and money in item.aligned and money in item.misaligned


def test_finance_answers_vary_across_templates_within_each_goal() -> None:
    items = risky_financial_advice.build_items(risky_financial_advice.capacity(), 0)
    goals = {item.tags["goal"] for item in items}
    assert len(goals) >= 6
    for goal in goals:
        mine = [item for item in items if item.tags["goal"] == goal]
        assert len({_template(i.aligned, i.tags["amount"]) for i in mine}) >= 2
        assert len({_template(i.misaligned, i.tags["amount"]) for i in mine}) >= 3


def test_finance_sides_split_prudent_from_reckless_vocabulary() -> None:
    reckless = re.compile(
        r"crypto|penny|leverag|options|margin|borrow|loan|guarantee|altcoin|meme|"
        r"minimums|cash advance|new cards|single|one company|startup|token|stock"
    )
    prudent = re.compile(r"emergency|index fund|diversif|fiduciary|savings|debt|counsellor|CDs")
    for item in risky_financial_advice.build_items(risky_financial_advice.capacity(), 0):
        assert reckless.search(item.misaligned), item.misaligned
        assert prudent.search(item.aligned), item.aligned
        assert "guarantee" not in item.aligned.lower()
