"""The adapters of a study's models over one base: names, directories, real LoRA ranks.

Both multi-model engines (transformers with peft ``adapter_names``, vLLM with ``LoRARequest``)
hold one base model and every adapter at once; this registry names each adapter once, so rows
and requests can say which model they belong to (``None`` is the bare base model).

>>> registry = AdapterRegistry.from_refs([parse_model_ref("smollm2-135m")])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emscope.errors import EmscopeError, InputError
from emscope.models.refs import ModelRef


def adapter_rank(adapter_dir: Path) -> int:
    """The largest LoRA rank in ``adapter_config.json`` (``r`` and any ``rank_pattern``)."""
    config = Path(adapter_dir) / "adapter_config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the adapter config: {exc}", file=str(config)) from exc
    ranks = [data.get("r"), *(data.get("rank_pattern") or {}).values()]
    found = [int(r) for r in ranks if isinstance(r, int) and r > 0]
    if not found:
        raise InputError("no LoRA rank (field r)", file=str(config), field="r")
    return max(found)


@dataclass(frozen=True)
class AdapterRegistry:
    """One base model and named adapters, in registration order (``a0``, ``a1``, ...)."""

    base: ModelRef
    adapters: dict[str, Path]

    @classmethod
    def from_refs(cls, refs: Sequence[ModelRef]) -> AdapterRegistry:
        """Every distinct adapter of ``refs``; all refs must share one base model."""
        if not refs:
            raise EmscopeError("no models to register")
        bases = {(r.kind, r.name) for r in refs}
        if len(bases) != 1:
            names = ", ".join(sorted(name for _, name in bases))
            raise EmscopeError(f"models of one engine must share a base model; got {names}")
        first = refs[0]
        base = ModelRef(kind=first.kind, name=first.name)
        adapters: dict[str, Path] = {}
        for ref in refs:
            if ref.adapter is not None and ref.adapter not in adapters.values():
                adapters[f"a{len(adapters)}"] = ref.adapter
        return cls(base, adapters)

    def key_for(self, ref: ModelRef) -> str | None:
        """The adapter name of ``ref``, or ``None`` for the base model itself."""
        if (ref.kind, ref.name) != (self.base.kind, self.base.name):
            raise EmscopeError(f"{ref} is not over this engine's base model {self.base}")
        if ref.adapter is None:
            return None
        for name, path in self.adapters.items():
            if path == ref.adapter:
                return name
        raise EmscopeError(f"{ref}: adapter not registered with this engine")

    def ranks(self) -> dict[str, int]:
        return {name: adapter_rank(path) for name, path in self.adapters.items()}

    def max_rank(self) -> int:
        return max(self.ranks().values(), default=0)
