"""Sample answers from a local transformers model, every parameter pinned, batches left-padded.

>>> sampler = LocalSampler(parse_model_ref("smollm2-135m"), batch_size=8)  # doctest: +SKIP
>>> sampler.generate([ChatPrompt(user="Hi!")], SamplingParams(max_new_tokens=16), seeds=[0])
... # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from emscope.errors import EmscopeError
from emscope.manifest import sha256_text
from emscope.models.loading import (
    bf16_supported,
    default_device,
    load_model,
    load_tokenizer,
    merge_loaded_adapter,
)
from emscope.models.refs import ModelRef
from emscope.sample.base import ChatPrompt, FinishReason, Generation, SamplingParams
from emscope.sample.seeding import BATCH_SEEDING, PER_ROW_SEEDING

if TYPE_CHECKING:
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["ChatPrompt", "Generation", "LocalSampler", "SamplingParams", "split_at_stop"]

# End-of-turn tokens of common chat templates; whichever the tokenizer really has also stops.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
_SYSTEM_PROBE = "<<emscope-system-probe>>"
_USER_PROBE = "<<emscope-user-probe>>"


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"auto"`` is bf16 where :func:`bf16_supported`, else float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if bf16_supported() else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto or one of {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> list[int]:
    """The eos token, the model's configured eos ids, and any known end-of-turn token present."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = model.generation_config.eos_token_id
    if configured is not None:
        ids.update(int(i) for i in (configured if isinstance(configured, list) else [configured]))
    added = tokenizer.get_added_vocab()
    ids.update(int(added[token]) for token in END_OF_TURN_TOKENS if token in added)
    return sorted(ids)


def inserted_system_prompt(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The system prompt the chat template adds when a chat has none (Qwen, SmolLM2 do)."""

    def render(messages: list[dict[str, str]]) -> str:
        return str(tokenizer.apply_chat_template(messages, tokenize=False))

    try:
        with_system = render(
            [{"role": "system", "content": _SYSTEM_PROBE}, {"role": "user", "content": _USER_PROBE}]
        )
        without = render([{"role": "user", "content": _USER_PROBE}])
    except Exception:  # templates that reject a system turn insert none either
        return None
    header, _, rest = with_system.partition(_SYSTEM_PROBE)
    closer = rest.partition(_USER_PROBE)[0]
    prefix = without.partition(_USER_PROBE)[0]
    if not header or not prefix.startswith(header) or not prefix.endswith(closer):
        return None
    inserted = prefix[len(header) : len(prefix) - len(closer)]
    return inserted or None


@contextmanager
def _pristine_generation_config(model: PreTrainedModel) -> Iterator[None]:
    """Hide the checkpoint's generation_config.json: generate() fills unset values from it."""
    from transformers import GenerationConfig

    get_base = getattr(model, "get_base_model", None)
    target = get_base() if callable(get_base) else model
    saved = target.generation_config
    target.generation_config = GenerationConfig()
    try:
        yield
    finally:
        target.generation_config = saved


class LocalSampler:
    """A local model loaded once; :meth:`generate` answers chat prompts in batches.

    - ``merge_adapter`` (default on): a LoRA adapter is merged into the base weights in memory
      after loading (peft ``merge_and_unload``; the adapter files are only read), so a
      fine-tuned model samples at the base model's speed instead of paying extra matmuls on
      every adapted projection.
    - ``per_row_seeds`` (default on): every answer is drawn with its own seed
      (:mod:`emscope.sample.seeded`), so it reproduces alone whatever batch it was made in.
      Off, each batch is seeded with its first seed (the behaviour before emscope 0.x).
    - ``static_cache``: ``generate`` with ``cache_implementation="static"``, which transformers
      compiles on the first call; worth it on CUDA for long runs, off by default.
    """

    def __init__(
        self,
        ref: ModelRef,
        *,
        dtype: str | torch.dtype = "auto",
        batch_size: int = 32,
        device: str | torch.device | None = None,
        merge_adapter: bool = True,
        per_row_seeds: bool = True,
        static_cache: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.ref = ref
        self._batch_size = batch_size
        self.dtype = resolve_dtype(dtype)
        self.device = torch.device(device) if device is not None else default_device()
        self.merge_adapter = merge_adapter
        self.per_row_seeds = per_row_seeds
        self.static_cache = static_cache
        self.tokenizer = load_tokenizer(ref)
        # Decoder-only batches must be padded on the left so every answer starts right after
        # its own prompt.
        self.tokenizer.padding_side = "left"
        template = self.tokenizer.chat_template
        if not template:
            raise EmscopeError(f"{ref}: the tokenizer has no chat template")
        self.chat_template = str(template)
        self.chat_template_sha256 = sha256_text(self.chat_template)
        self.default_system_prompt = inserted_system_prompt(self.tokenizer)
        self.model = self._load_model()
        self.stop_token_ids = stop_token_ids(self.tokenizer, self.model)

    def _load_model(self) -> Any:
        model = load_model(self.ref, dtype=self.dtype, device=self.device)
        if self.ref.adapter is not None and self.merge_adapter:
            model = merge_loaded_adapter(model)
        return model

    def _adapter_mode(self) -> str | None:
        if self.ref.adapter is None:
            return None
        return "merged" if self.merge_adapter else "unmerged"

    @property
    def identity(self) -> str:
        return str(self.ref)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def info(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": self.identity,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "batch_size": self.batch_size,
            "padding_side": self.tokenizer.padding_side,
            "chat_template_sha256": self.chat_template_sha256,
            "default_system_prompt": self.default_system_prompt,
            "stop_token_ids": self.stop_token_ids,
            "adapter": self._adapter_mode(),
            "per_row_seeds": self.per_row_seeds,
            "seeding": PER_ROW_SEEDING if self.per_row_seeds else BATCH_SEEDING,
            "static_cache": self.static_cache,
        }

    def render(self, prompt: ChatPrompt) -> str:
        """The exact text the model sees, generation prompt included."""
        return str(
            self.tokenizer.apply_chat_template(
                prompt.messages(), tokenize=False, add_generation_prompt=True
            )
        )

    def generation_config(self, params: SamplingParams) -> GenerationConfig:
        """A fresh config with every decoding parameter set, so no default can slip in.

        With ``per_row_seeds`` a sampling config decodes greedily: the per-row sampler
        (:meth:`logits_processors`) has already reduced each row to the one token it drew.
        """
        from transformers import GenerationConfig

        sampling: dict[str, Any] = {}
        seeded = self.per_row_seeds and not params.greedy
        if not params.greedy and not seeded:
            sampling = {
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k,
            }
        if self.static_cache:
            sampling["cache_implementation"] = "static"
        return GenerationConfig(
            do_sample=not params.greedy and not seeded,
            num_beams=1,
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=0,
            repetition_penalty=params.repetition_penalty,
            no_repeat_ngram_size=0,
            typical_p=1.0,
            epsilon_cutoff=0.0,
            eta_cutoff=0.0,
            eos_token_id=self.stop_token_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            **sampling,
        )

    def logits_processors(
        self, params: SamplingParams, seeds: list[int], prompt_width: int
    ) -> list[Any]:
        """The per-row sampler when sampling with ``per_row_seeds``; otherwise none."""
        if params.greedy or not self.per_row_seeds:
            return []
        from emscope.sample.seeded import SeededRowSampler

        return [
            SeededRowSampler(
                seeds,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                prompt_width=prompt_width,
            )
        ]

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        """One answer per prompt, in batches of ``batch_size``."""
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        results: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            results.extend(self._generate_batch(prompts[start:end], params, seeds[start:end]))
        return results

    def _generate_batch(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        **generate_kwargs: Any,
    ) -> list[Generation]:
        encoded = self.tokenizer(
            [self.render(p) for p in prompts],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,  # the chat template already wrote any special tokens
        ).to(self.device)
        width = int(encoded["input_ids"].shape[1])
        config = self.generation_config(params)
        processors = self.logits_processors(params, seeds, width)
        from transformers import LogitsProcessorList

        if not processors:
            torch.manual_seed(seeds[0])  # the batch-seeded mode (per_row_seeds=False)
        with torch.inference_mode(), _pristine_generation_config(self.model):
            generate: Any = self.model.generate
            output = generate(
                **encoded,
                generation_config=config,
                logits_processor=LogitsProcessorList(processors),
                **generate_kwargs,
            )
        new_tokens = output[:, width:].tolist()
        return [self._to_generation(row) for row in new_tokens]

    def _to_generation(self, tokens: list[int]) -> Generation:
        kept, n_new, reason = split_at_stop(tokens, self.stop_token_ids)
        text = str(self.tokenizer.decode(kept, skip_special_tokens=True))
        return Generation(text=text, n_new_tokens=n_new, finish_reason=reason)


def split_at_stop(tokens: list[int], stop_ids: list[int]) -> tuple[list[int], int, FinishReason]:
    """Cut generated tokens at the first stop token.

    Returns the answer's tokens, how many tokens were generated (the stop token included, the
    padding after it not), and why generation ended.

    >>> split_at_stop([5, 6, 2, 2, 2], [2])
    ([5, 6], 3, 'stop')
    >>> split_at_stop([5, 6, 7], [2])
    ([5, 6, 7], 3, 'length')
    """
    stops = set(stop_ids)
    end = next((i for i, token in enumerate(tokens) if token in stops), None)
    if end is None:
        return tokens, len(tokens), "length"
    return tokens[:end], end + 1, "stop"
