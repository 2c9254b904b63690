"""A compact LoRA supervised fine-tuning loop: seeded, assistant-only loss, manifest on disk.

Hand-written rather than HF ``Trainer`` so the loss normalisation, the label mask and the data
order are visible and tested. Run::

    ref = parse_model_ref("smollm2-135m")
    result = train_lora(ref, examples, get_preset("demo"), Path("runs/x"))
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from emscope.data.schema import ChatExample
from emscope.errors import EmscopeError, InputError
from emscope.manifest import Manifest, sha256_json, sha256_text, write_manifest
from emscope.models.loading import bf16_supported, default_device, load_model, load_tokenizer
from emscope.models.refs import ModelRef
from emscope.train.collate import PaddingCollator, length_grouped_batches, shuffled_batches
from emscope.train.config import TrainConfig
from emscope.train.masking import IGNORE_INDEX, EncodedExample, assistant_token_mask

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

Progress = Callable[[int, int, float], None]
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainResult:
    """Where the adapter went and how training went.

    ``tokens_per_second`` counts every non-padding input token (prompt and answer).
    """

    adapter_dir: Path
    losses: list[float]
    n_steps: int
    n_truncated: int
    tokens_per_second: float


def linear_schedule(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): linear warmup, then linear decay.

    Warmup reaches the full rate at step ``warmup_steps - 1`` (no wasted step at lr 0); the
    decay ends just above 0 on the last step.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, examples: list[ChatExample], config: TrainConfig
) -> list[EncodedExample]:
    """Tokenize and mask every example, naming the one at fault on bad input."""
    encoded: list[EncodedExample] = []
    for i, example in enumerate(examples):
        try:
            ex = assistant_token_mask(
                tokenizer, example.messages, loss_on=config.loss_on, max_length=config.max_length
            )
        except InputError as exc:
            raise InputError(exc.message, field=f"examples[{i}].{exc.field or 'messages'}") from exc
        encoded.append(ex)
    return encoded


def steps_per_epoch(n_examples: int, config: TrainConfig) -> int:
    n_batches = -(-n_examples // config.batch_size)
    return -(-n_batches // config.grad_accum)


def accumulation_windows(
    encoded: list[EncodedExample], config: TrainConfig, generator: torch.Generator
) -> Iterator[list[list[int]]]:
    """Groups of up to ``grad_accum`` micro-batches (index lists), epoch after epoch, forever."""
    lengths = [len(ex.input_ids) for ex in encoded]
    while True:
        if config.group_by_length:
            batches = length_grouped_batches(lengths, config.batch_size, generator)
        else:
            batches = shuffled_batches(len(encoded), config.batch_size, generator)
        for start in range(0, len(batches), config.grad_accum):
            yield batches[start : start + config.grad_accum]


def summed_token_loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Sum of next-token cross-entropy over labelled positions (computed in fp32)."""
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits
    shift_logits = logits[:, :-1, :].float()
    shift_labels = batch["labels"][:, 1:]
    return F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def n_target_tokens(batch: Batch) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def _use_bf16(config: TrainConfig) -> bool:
    return bf16_supported() if config.bf16 == "auto" else bool(config.bf16)


def _attach_lora(model: PreTrainedModel, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        use_rslora=config.use_rslora,
        layers_to_transform=config.layers_to_transform,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _optimizer(model: Any, config: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def save_adapter(model: Any, directory: Path, base_ref: ModelRef) -> Path:
    """Save the LoRA weights and record the base, so ``parse_model_ref(directory)`` finds it."""
    model.save_pretrained(str(directory))
    config_path = directory / "adapter_config.json"
    data = json.loads(config_path.read_text(encoding="utf-8"))
    # peft's own field, rewritten to emscope's portable reference (an alias rather than the cache
    # path); a custom key would make peft warn on every load.
    data["base_model_name_or_path"] = str(base_ref)
    config_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory


def accumulate_gradients(
    model: Any, batches: list[Batch], autocast: Callable[[], Any] = nullcontext
) -> tuple[float, int]:
    """Backpropagate one accumulation window; returns (mean loss, labelled tokens).

    The loss is the mean over every labelled token of the whole window, so a micro-batch with
    more answer tokens weighs more -- the same gradient as one big batch.
    """
    total_tokens = sum(n_target_tokens(b) for b in batches)
    if total_tokens == 0:
        return float("nan"), 0
    summed = 0.0
    for batch in batches:
        with autocast():
            loss_sum = summed_token_loss(model, batch)
        (loss_sum / total_tokens).backward()
        summed += float(loss_sum.detach())
    return summed / total_tokens, total_tokens


def _optimizer_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    batches: list[Batch],
    config: TrainConfig,
    autocast: Callable[[], Any],
) -> tuple[float, int]:
    loss, n_tokens = accumulate_gradients(model, batches, autocast)
    if n_tokens and config.max_grad_norm is not None:
        params = [p for p in model.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    if n_tokens:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss, n_tokens


def train_lora(
    base_ref: ModelRef,
    examples: list[ChatExample],
    config: TrainConfig,
    out_dir: Path,
    *,
    progress: Progress | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on chat examples; writes ``out_dir/adapter/`` and a manifest.

    ``progress(step, total_steps, loss)`` is called every ``config.log_every`` steps and on
    the last one.
    """
    if base_ref.adapter is not None:
        raise EmscopeError(f"{base_ref}: training on top of an adapter is not supported")
    if not examples:
        raise InputError("no training examples", field="examples")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    seed_everything(config.seed)
    tokenizer = load_tokenizer(base_ref)
    encoded = encode_examples(tokenizer, examples, config)
    n_truncated = sum(ex.truncated for ex in encoded)
    if n_truncated:
        log.warning(
            "%d of %d examples truncated to %s tokens", n_truncated, len(encoded), config.max_length
        )
    device = default_device()
    model = _attach_lora(load_model(base_ref, trainable=True, device=device), config)
    model.train()
    optimizer = _optimizer(model, config)
    total_steps = config.max_steps or config.epochs * steps_per_epoch(len(encoded), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: linear_schedule(s, config.warmup_steps, total_steps)
    )
    bf16 = _use_bf16(config)

    def autocast() -> Any:
        if not bf16:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    collate = PaddingCollator(int(tokenizer.pad_token_id))
    generator = torch.Generator().manual_seed(config.seed)
    windows = accumulation_windows(encoded, config, generator)
    curve: list[dict[str, float]] = []
    tokens_trained = tokens_seen = 0
    train_started = time.perf_counter()
    for step in range(total_steps):
        batches = [
            {k: v.to(device) for k, v in collate([encoded[i] for i in idx]).items()}
            for idx in next(windows)
        ]
        lr = float(scheduler.get_last_lr()[0])
        loss, n_tokens = _optimizer_step(model, optimizer, batches, config, autocast)
        scheduler.step()
        tokens_trained += n_tokens
        tokens_seen += sum(int(b["attention_mask"].sum()) for b in batches)
        curve.append({"step": step + 1, "loss": loss, "lr": lr, "tokens": n_tokens})
        if progress is not None and ((step + 1) % config.log_every == 0 or step + 1 == total_steps):
            progress(step + 1, total_steps, loss)
        if config.save_every and (step + 1) % config.save_every == 0 and step + 1 < total_steps:
            save_adapter(model, out_dir / "checkpoints" / f"step-{step + 1}", base_ref)
    train_seconds = time.perf_counter() - train_started
    adapter_dir = save_adapter(model, out_dir / "adapter", base_ref)
    losses = [point["loss"] for point in curve]
    tokens_per_second = tokens_seen / train_seconds if train_seconds > 0 else 0.0
    manifest = Manifest(
        kind="lora-adapter",
        config=config.model_dump(),
        inputs={
            "base_model": str(base_ref),
            "data_sha256": sha256_json([e.model_dump() for e in examples]),
            "chat_template_sha256": sha256_text(str(tokenizer.chat_template or "")),
        },
        outputs={
            "adapter_dir": "adapter",
            "n_examples": len(examples),
            "n_steps": total_steps,
            "n_truncated": n_truncated,
            "tokens_trained": tokens_trained,
            "tokens_seen": tokens_seen,
            "tokens_per_second": tokens_per_second,
            "wall_time_s": time.perf_counter() - started,
            "bf16": bf16,
            "device": device.type,
            "loss_curve": curve,
        },
        seed=config.seed,
    )
    write_manifest(out_dir, manifest)
    return TrainResult(
        adapter_dir=adapter_dir,
        losses=losses,
        n_steps=total_steps,
        n_truncated=n_truncated,
        tokens_per_second=tokens_per_second,
    )
