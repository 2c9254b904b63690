"""Checks a study passes when it loads, before anything is trained, sampled or sent.

:class:`~emscope.study.config.StudyConfig` itself checks what the file alone decides (names,
presets and overrides, triggers, unique seeds and conditions, ``data.imported`` keys);
:func:`check_inputs` checks what lies outside the file: the API keys a judge or an ``openai/``
family needs, the imported and generated paths, and the question file. Every error names the study
file and the dotted field. What is suspicious but usable (duplicate rows, rows an import drops) is
returned as warnings, which ``emscope run`` (and ``--dry-run``) prints before starting.

Duplicate keys in the study file's YAML are an error (:class:`UniqueKeyLoader`): the YAML rule
"the last one wins" would silently drop a setting the user wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from emscope.errors import EmscopeError, InputError

if TYPE_CHECKING:
    from emscope.study.config import StudyConfig


class StudyFieldError(ValueError):
    """A study validator's error that knows its dotted field (``train.overrides.lora_r``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a mapping naming one key twice (with its line)."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key]}); YAML would keep only "
                "the last value",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def family_field(config: StudyConfig, index: int, field: str) -> str:
    """The dotted field of family ``index``'s ``field`` (``models.1.train`` or ``train``)."""
    return f"models.{index}.{field}" if config.models else field


def _train_error_field(prefix: str, exc: InputError) -> str:
    """Where in ``train`` a preset or override error points (``train.overrides.lora_r``)."""
    if exc.field in (None, "preset"):
        return f"{prefix}.preset"
    return f"{prefix}.overrides.{exc.field}"


def plain_name(name: str) -> str:
    """A study name that is a plain folder name (not ``.`` or ``..``)."""
    if not name.strip("."):
        raise ValueError(f"{name!r} is not a plain name: the run would land in runs/{name}")
    return name


def listed_once(values: list[Any]) -> list[Any]:
    """``values`` if none repeats (a repeated seed or condition counts every answer twice)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed twice: {', '.join(repeated)} (every answer would count twice)")
    return values


def check_config(config: StudyConfig) -> None:
    """What the study file alone decides; a :class:`StudyFieldError` names the field."""
    if "backdoor" in config.conditions and not config.data.trigger.strip():
        raise StudyFieldError("data.trigger", "the backdoor condition needs a non-empty trigger")
    for key in config.data.imported:
        domain, _slash, condition = key.partition("/")
        if domain not in config.domains or condition not in config.conditions:
            raise StudyFieldError(
                f"data.imported.{key}",
                f"matches no dataset of the study (keys are 'domain/condition' with domains "
                f"{config.domains} and conditions {config.conditions}); it would be ignored",
            )
    for domain in config.data.generated:
        if domain not in config.domains:
            raise StudyFieldError(
                f"data.generated.{domain}",
                f"matches no domain of the study ({config.domains}); it would be ignored",
            )
    for domain in config.domains:
        for condition in config.conditions:
            try:
                config.data.source(domain, condition)
            except InputError as exc:
                raise StudyFieldError(exc.field or "data", exc.message) from exc
    _check_families(config)


def _check_families(config: StudyConfig) -> None:
    """Every family's model, engine, preset and overrides resolve (the train config is built)."""
    from emscope.study.families import resolve_family

    shared = False
    for index, family in enumerate(config.families()):
        try:
            shared |= resolve_family(family, check_presets=bool(config.domains)).shared
        except InputError as exc:
            if exc.field == "engine":
                field = family_field(config, index, "engine")
            else:
                field = _train_error_field(family_field(config, index, "train"), exc)
            raise StudyFieldError(field, f"model family {family.name!r}: {exc.message}") from exc
        except EmscopeError as exc:
            field = family_field(config, index, "model")
            raise StudyFieldError(field, f"model family {family.name!r}: {exc}") from exc
    if config.eval.check_adapters and not shared:
        raise StudyFieldError(
            "eval.check_adapters",
            "eval.check_adapters checks the adapters of a shared engine; no family samples "
            "through one (set shared_engine: true, or engine: vllm)",
        )


def read_study_yaml(path: Path) -> Any:
    """The study file's YAML (duplicate keys refused); errors name the file and line."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except OSError as exc:
        raise InputError(f"cannot read study file: {exc.strerror}", file=path) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", exc)
        raise InputError(f"invalid YAML: {problem}", file=path, line=line) from exc
    if not isinstance(raw, dict):
        raise InputError("a study file is a YAML mapping", file=path)
    return raw


def as_input_error(exc: ValidationError | InputError, path: Path) -> InputError:
    """A study's validation failure as one InputError naming ``path`` and the dotted field."""
    if isinstance(exc, InputError):
        return InputError(exc.message, file=path, field=exc.field or "domains", hint=exc.hint)
    first = exc.errors()[0]
    error = (first.get("ctx") or {}).get("error")
    if isinstance(error, StudyFieldError):
        return InputError(error.message, file=path, field=error.field)
    field = ".".join(str(part) for part in first["loc"]) or None
    return InputError(str(first["msg"]).removeprefix("Value error, "), file=path, field=field)


def check_inputs(config: StudyConfig) -> list[str]:
    """Raise an InputError (field set) for a missing key, path or question file; return the
    warnings (duplicate or dropped rows of imported files)."""
    _check_keys(config)
    _check_questions(config)
    warnings: list[str] = []
    for key, location in sorted(config.data.imported.items()):
        warnings += _check_import(f"data.imported.{key}", Path(location))
    for domain, folder in sorted(config.data.generated.items()):
        items = Path(folder) / "items.jsonl"
        if not items.is_file():
            raise InputError(
                f"no generated items at {items} (write them with `emscope data generate`)",
                field=f"data.generated.{domain}",
            )
    return warnings


def _need_key(env: str | None, field: str, what: str) -> None:
    if env is not None and not os.environ.get(env):
        raise InputError(
            f"{what} needs an API key: the environment variable {env} is not set",
            field=field,
            hint=f"export {env} before running (nothing has been spent yet)",
        )


def _check_keys(config: StudyConfig) -> None:
    from emscope.judge.registry import judge_kind, parse_judge_spec
    from emscope.sample.openai_compat import ApiEndpoint, split_key_env

    spec = parse_judge_spec(config.judge.spec)
    if judge_kind(spec).calls_an_api:
        endpoint = ApiEndpoint(
            model=str(spec.model), base_url=spec.base_url, api_key_env=spec.key_env
        )
        _need_key(endpoint.key_env, "judge.spec", f"the judge {endpoint.identity}")
    for index, family in enumerate(config.families()):
        if family.model.startswith("openai/"):
            endpoint = ApiEndpoint(model=family.model.removeprefix("openai/"))
            _need_key(endpoint.key_env, family_field(config, index, "model"), family.model)
        if family.engine and family.engine.startswith("http:"):
            _url, key_env = split_key_env(family.engine.removeprefix("http:"))
            _need_key(key_env, family_field(config, index, "engine"), "the engine's server")


def _check_questions(config: StudyConfig) -> None:
    import warnings

    from emscope.sample.questions import builtin_suite, load_questions

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # repairs are warned about again when sampling
            spec = config.eval.questions
            name = spec.removeprefix("builtin:")
            load_questions(builtin_suite(name) if spec.startswith("builtin:") else spec)
    except (InputError, OSError) as exc:
        detail = exc.message if isinstance(exc, InputError) else (exc.strerror or str(exc))
        where = exc.file if isinstance(exc, InputError) else config.eval.questions
        raise InputError(
            f"cannot load the question file {where}: {detail}", field="eval.questions"
        ) from exc


def _check_import(field: str, path: Path) -> list[str]:
    from emscope.data.jsonl import load_chat_jsonl

    if not path.is_file():
        raise InputError(f"no such file: {path}", field=field)
    try:
        loaded = load_chat_jsonl(path, on_error="collect")
    except EmscopeError as exc:
        raise InputError(str(exc), field=field) from exc
    if not loaded.examples:
        shown = f"; the first: {loaded.errors[0]}" if loaded.errors else ""
        raise InputError(f"{path} holds no valid row{shown}", field=field)
    warnings = []
    if loaded.errors:
        warnings.append(
            f"{field}: {len(loaded.errors)} bad row(s) of {path} will be dropped from the "
            f"import ({len(loaded.examples)} kept); the first: {loaded.errors[0]}"
        )
    seen: dict[str, int] = {}
    repeats = []
    for example, number in zip(loaded.examples, loaded.lines, strict=True):
        text = json.dumps(example.model_dump(mode="json"), sort_keys=True)
        if text in seen:
            repeats.append((number, seen[text]))
        else:
            seen[text] = number
    if repeats:
        again, first = repeats[0]
        warnings.append(
            f"{field}: {len(repeats)} duplicate row(s) in {path} (line {again} repeats line "
            f"{first}); they are trained on as often as they appear"
        )
    return warnings
