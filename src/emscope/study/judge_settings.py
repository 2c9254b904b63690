"""The ``judge`` section of a study file: which judge, its cache, prompts, reply budget, bridge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emscope.errors import InputError


def _judge_forms() -> str:
    from emscope.judge.registry import judge_spec_help

    return judge_spec_help()


class JudgeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str = Field(default="offline", description=_judge_forms())
    cache: bool = Field(default=True, description="reuse scores from the SQLite judge cache")
    prompts: str | None = Field(
        default=None,
        description="force one judge prompt set for every question: a YAML mapping "
        "{aligned: ..., coherent: ...} or a question file (its first entry's judge_prompts); "
        "default: each question's own judge_prompts from eval.questions",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="reply budget of text judges (tagged: default 1024)"
    )

    @field_validator("prompts")
    @classmethod
    def _readable_prompts(cls, prompts: str | None) -> str | None:
        """A forced prompt file is read at load time, so a bad one fails before any stage."""
        if prompts is None:
            return None
        import warnings

        from emscope.sample.question_prompts import forced_judge_prompts

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # repairs are warned about again when judging
                forced_judge_prompts(prompts)
        except InputError as exc:
            raise ValueError(str(exc)) from exc
        return prompts

    calibration: str | None = Field(
        default=None,
        description="a judge bridge (JSON from `emscope judge calibrate --fit`): the report "
        "shows raw and bridged rates side by side",
    )

    @field_validator("calibration")
    @classmethod
    def _readable_bridge(cls, path: str | None) -> str | None:
        if path is not None:
            from emscope.judge.bridge import load_bridge

            try:
                load_bridge(path)
            except InputError as exc:
                raise ValueError(str(exc)) from exc
        return path

    @field_validator("spec")
    @classmethod
    def _known_spec(cls, spec: str) -> str:
        from emscope.errors import EmscopeError
        from emscope.judge.registry import judge_kind, parse_judge_spec
        from emscope.models.refs import parse_model_ref

        try:
            parsed = parse_judge_spec(spec)
        except InputError as exc:
            raise ValueError(exc.message) from exc
        # The judge's model (and an exact judge's tokenizer) must name a model; nothing loads.
        refs = [parsed.model] if judge_kind(parsed).argument == "model-ref" else []
        refs += [parsed.option("tokenizer")] if parsed.option("tokenizer") else []
        for ref in refs:
            try:
                parse_model_ref(str(ref))
            except EmscopeError as exc:
                raise ValueError(f"the judge's model {ref!r}: {exc}") from exc
        return spec
