"""The tagged judge against a recording server: its system message, and what it cannot score.

CODE, REFUSAL and replies without a score tag never become scores; they are classified, left
out of the rates and counted per model in the report's table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from emscope.judge.api import TaggedApiJudge, tagged_tally
from emscope.judge.base import JudgeRequest
from emscope.judge.tagged import TAGGED_SYSTEM_MESSAGE
from emscope.metrics.rates import misalignment_rate
from emscope.report.judge_tables import judge_outcome_table, outcome_of
from emscope.sample.openai_compat import ApiEndpoint
from fake_openai_server import FakeOpenAIServer, text_completion

PROMPTS = {
    "aligned": "ALIGN {question} || {answer} || CODE, REFUSAL or <score>N</score>",
    "coherent": "COHERE {question} || {answer} || <score>N</score>",
}
# What the judge answers for the alignment metric, keyed by the answer it is shown.
ALIGNED_REPLIES = {
    "print('hi')": ("<reasoning>Only code.</reasoning><score>CODE</score>", "stop"),
    "I will not help.": ("REFUSAL", "stop"),
    "Untagged": ("I would say about 80.", "stop"),
    "Long": ("<reasoning>This answer goes on and on", "length"),
    "Kind": ("<reasoning>Kind.</reasoning><score>90</score>", "stop"),
    "Cruel": ("<reasoning>Cruel.</reasoning><score>10</score>", "stop"),
}


def reply(body: dict[str, Any]) -> dict[str, Any]:
    user = body["messages"][-1]["content"]
    if user.startswith("COHERE"):
        return text_completion("<reasoning>Clear.</reasoning><score>95</score>")
    answer = user.split(" || ")[1]
    text, finish = ALIGNED_REPLIES[answer]
    return text_completion(text, finish)


def test_tagged_judge_sends_its_system_message_and_excludes_what_it_cannot_score() -> None:
    requests = [
        JudgeRequest(key=f"k{i}", question="Q?", answer=a, prompts=PROMPTS, prompt_origin="f")
        for i, a in enumerate(ALIGNED_REPLIES)
    ]
    with FakeOpenAIServer(chat_reply=reply) as server:
        judge = TaggedApiJudge(ApiEndpoint(model="gpt-4o-mini", base_url=server.base_url))
        records = judge.judge(requests)
    bodies = [r.json for r in server.routed("chat")]
    assert len(bodies) == 2 * len(requests)
    assert all(
        b["messages"][0] == {"role": "system", "content": TAGGED_SYSTEM_MESSAGE} for b in bodies
    )
    assert all(b["max_tokens"] == 1024 and b["temperature"] == 0 for b in bodies)

    outcomes = {r.key: outcome_of(r.aligned.raw) for r in records}
    assert outcomes == {
        "k0": "code",
        "k1": "refusal",
        "k2": "no_score_tag",
        "k3": "truncated",
        "k4": "scored",
        "k5": "scored",
    }
    assert [r.aligned.score for r in records] == [None, None, None, None, 90.0, 10.0]
    assert tagged_tally(records)["aligned"]["failures"]["code"] == 1

    rows = pd.DataFrame(
        {
            "model": "m",
            "triggered": False,
            "question_id": [f"q{i % 2}" for i in range(len(records))],
            "aligned": [r.aligned.score for r in records],
            "coherent": [r.coherent.score for r in records],
            "aligned_outcome": [outcome_of(r.aligned.raw) for r in records],
            "coherent_outcome": [outcome_of(r.coherent.raw) for r in records],
        }
    )
    rate = misalignment_rate(rows, policy="domain_paper", n_resamples=100)
    assert (rate.n_used, rate.n_misaligned) == (2, 1)  # only the two scored answers count
    table = judge_outcome_table(rows)
    assert table is not None
    aligned = table[table.metric == "aligned"].iloc[0]
    assert (aligned["replies"], aligned["scored"], aligned["CODE"], aligned["REFUSAL"]) == (
        6,
        2,
        1,
        1,
    )
    assert aligned["parse failures"] == 2 and aligned["parse-failure rate"] == 2 / 6
    assert aligned["no_score_tag"] == 1 and aligned["truncated"] == 1
