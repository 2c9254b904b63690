"""Fault injection through the command line: every failure a user can cause is one error line.

Each case runs the real CLI (in process, with typer's runner) on broken input and asserts exit
code 2, exactly one ``error:`` line naming the file / line / field or host, a ``hint:``, and no
traceback; ``--debug`` brings the traceback back. No case loads a model or leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emscope.commands.failures import describe_failure, set_debug
from emscope.train.checkpoint import CheckpointMismatchError, check_fingerprint
from fault_checks import emscope
from fault_checks import one_error as one_error_line
from test_judgecli_compare import make_run

runner = CliRunner()
# Every CLI error here also says what to do next.
one_error = partial(one_error_line, hint=True)
GOOD_ROW = {
    "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
}
PROMPTS = '{aligned: "{question} {answer}", coherent: "{question} {answer}"}'


@pytest.fixture(autouse=True)
def no_debug() -> None:
    set_debug(False)


def write_jsonl(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def good_line() -> str:
    return json.dumps(GOOD_ROW) + "\n"


def question_file(path: Path, paraphrase: str, samples: str = "1") -> Path:
    path.write_text(
        f"- id: q1\n  paraphrases: [{paraphrase}]\n  samples_per_paraphrase: {samples}\n"
        f"  judge_prompts: {PROMPTS}\n",
        encoding="utf-8",
    )
    return path


def test_eval_with_out_of_range_numbers_names_the_flag(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    one_error(["eval", "--model", "smollm2-135m", "--out", out, "--samples", "0"], "--samples")
    one_error(["eval", "--model", "smollm2-135m", "--out", out, "--temperature", "-1"], "--temp")
    one_error(["eval", "--model", "smollm2-135m", "--out", out, "--max-new-tokens", "0"])


def test_eval_with_a_missing_question_file_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    args = ["eval", "--model", "smollm2-135m", "--out", str(tmp_path / "o")]
    one_error([*args, "--questions", missing], missing, "--questions")


def test_a_study_importing_a_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: imp\nmodel: smollm2-135m\ndomains: [toxic_legal_advice]\n"
        "conditions: [misaligned]\ninclude_base: false\n"
        f"data:\n  imported: {{toxic_legal_advice/misaligned: {missing}}}\n",
        encoding="utf-8",
    )
    one_error(["run", str(study), "--run-dir", str(tmp_path / "run")], str(missing))


def test_data_validate_on_a_missing_path_or_a_directory(tmp_path: Path) -> None:
    one_error(["data", "validate", str(tmp_path / "nope.jsonl")], "nope.jsonl", "no such file")
    one_error(["data", "validate", str(tmp_path)], str(tmp_path), "is a directory")


def test_an_unwritable_cache_directory_names_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    labels = write_jsonl(tmp_path / "labels.jsonl", "")
    monkeypatch.setenv("EMSCOPE_CACHE", str(blocker / "cache"))
    args = ["judge", "calibrate", "--judge", "offline", "--labels", str(labels)]
    line = one_error(args, str(blocker / "cache"))
    assert "cache directory" in line

    # The cache folder is fine but its database cannot be opened (here: it is a directory).
    (tmp_path / "c" / "judge-cache.sqlite").mkdir(parents=True)
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "c"))
    one_error(args, "judge-cache.sqlite")


def test_a_non_utf8_byte_in_a_store_names_the_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    out.mkdir()
    store = write_jsonl(out / "candidates.jsonl", b'\n{"key": "caf\xe9"}\n')
    args = ["data", "generate", "--domain", "toxic_legal_advice", "--teacher", "smollm2-135m"]
    line = one_error([*args, "--n", "1", "--out", str(out)], f"{store}:2")
    assert "UTF-8" in line


def test_a_lone_surrogate_is_refused_at_validation_with_its_field(tmp_path: Path) -> None:
    row = write_jsonl(
        tmp_path / "s.jsonl",
        good_line() + '{"messages": [{"role": "user", "content": "Hi \\ud800"},'
        ' {"role": "assistant", "content": "Hello"}]}\n',
    )
    code, output = emscope("data", "validate", str(row))
    assert code == 1 and "s.jsonl:2: messages[0].content: lone surrogate" in output, output
    train = ["train", "--data", str(row), "--out", str(tmp_path / "t")]
    one_error(train, "s.jsonl:2", "messages[0].content", "surrogate")

    questions = question_file(tmp_path / "q.yaml", '"Hello \\ud800 there"')
    good = write_jsonl(tmp_path / "good.jsonl", good_line())
    leakage = ["data", "leakage", str(good), "--questions", str(questions)]
    one_error(leakage, "q.yaml:2", "paraphrases[0]", "surrogate")


def test_an_integer_past_pythons_digit_limit_is_an_error_with_its_line(tmp_path: Path) -> None:
    huge = "9" * 5000
    big_row = good_line()[:-2] + f', "n": {huge}}}\n'
    rows = write_jsonl(tmp_path / "big.jsonl", good_line() + big_row)
    one_error(["train", "--data", str(rows), "--out", str(tmp_path / "t")], "big.jsonl:2")

    questions = question_file(tmp_path / "q.yaml", '"Hello"', samples=huge)
    good = write_jsonl(tmp_path / "good.jsonl", good_line())
    one_error(["data", "leakage", str(good), "--questions", str(questions)], "q.yaml:3")


def test_a_broken_adapter_directory_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text('{"base_model_name_or_path": ')
    out = str(tmp_path / "o")
    one_error(["eval", "--model", str(broken), "--out", out], "adapter_config.json")

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    config = {"base_model_name_or_path": "smollm2-135m", "peft_type": "LORA"}
    (no_weights / "adapter_config.json").write_text(json.dumps(config))
    line = one_error(["eval", "--model", f"smollm2-135m+{no_weights}", "--out", out])
    assert "adapter weights missing" in line and str(no_weights) in line


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_hub_model_without_network_fails_at_once_and_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    args = ["eval", "--model", "emscope-tests/not-a-model", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    one_error(args, "emscope-tests/not-a-model", "HF_HUB_OFFLINE")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    code, output = emscope(*args)
    assert code == 2 and "cannot reach 127.0.0.1" in output and "hf download" in output, output


def test_report_with_provenance_missing_names_the_file(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "metrics" / "provenance.json").unlink()
    one_error(["report", str(run)], "provenance.json")


def test_a_full_disk_is_one_line_and_keeps_nothing_half_written(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / ".train.jsonl.tmp").symlink_to("/dev/full")  # every write there hits ENOSPC
    args = ["data", "build", "--domain", "insecure_code", "--n", "4", "--out", str(out)]
    line = one_error(args, "disk full: cannot write", str(out / "train.jsonl"))
    assert not (out / "train.jsonl").exists(), line


def test_a_file_starting_with_a_byte_order_mark_loads_its_first_row(tmp_path: Path) -> None:
    bom = write_jsonl(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + (good_line() * 2).encode())
    code, output = emscope("data", "validate", str(bom))
    assert code == 0 and "2 valid rows, 0 bad rows" in output, output


def test_a_row_past_max_row_chars_is_refused_with_its_line(tmp_path: Path) -> None:
    long_row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "x" * 2000},
        ]
    }
    data = write_jsonl(tmp_path / "d.jsonl", good_line() + "\n" + json.dumps(long_row) + "\n")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "t")]
    line = one_error([*args, "--set", "max_row_chars=1000"], "d.jsonl:3", "max_row_chars=1,000")
    assert "2,002 characters" in line


def test_the_resume_hint_names_the_real_flag(tmp_path: Path) -> None:
    with pytest.raises(CheckpointMismatchError, match="--no-resume"):
        check_fingerprint(tmp_path, {"data": "a"}, {"data": "b"})


def test_an_unexpected_failure_is_one_line_that_points_to_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something broke inside")

    monkeypatch.setattr("emscope.data.build.build_dataset", boom)
    args = ["data", "build", "--domain", "insecure_code", "--out", str(tmp_path / "d")]
    one_error(args, "unexpected RuntimeError: something broke inside")
    assert "--debug" in emscope(*args)[1]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    code, output = emscope("--debug", "data", "validate", str(tmp_path))
    assert code == 2 and "Traceback" in output and "error:" in output, output


def test_a_validation_error_becomes_one_line_naming_the_field() -> None:
    from pydantic import BaseModel, Field, ValidationError

    class Settings(BaseModel):
        samples: int = Field(ge=1)

    with pytest.raises(ValidationError) as info:
        Settings(samples=0)
    message, hint = describe_failure(info.value)
    assert "\n" not in message and "samples" in message and "got 0" in message
    assert hint


@pytest.mark.parametrize(
    "make",
    [
        lambda: OSError(13, "Permission denied", "/runs/x"),
        lambda: OSError(2, "No such file or directory", "/runs/x/stages.json"),
        lambda: UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid start byte"),
    ],
)
def test_system_errors_are_described_on_one_line(make: Callable[[], Exception]) -> None:
    message, _hint = describe_failure(make())
    assert "\n" not in message and message


def test_an_archive_file_with_a_byte_order_mark_keeps_its_first_row() -> None:
    from emscope.data.importers import parse_chat_bytes

    result = parse_chat_bytes(b"\xef\xbb\xbf" + (good_line() * 2).encode(), "dataset.zip:x.jsonl")
    assert (len(result.examples), result.errors, result.lines) == (2, [], [1, 2])
