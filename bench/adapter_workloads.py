"""Sampling fine-tuned models on the CPU: merged vs unmerged adapters, mixed-adapter batches.

Every workload samples SmolLM2-135M-Instruct with random rank-32 LoRA adapters on all seven
projections (seeded, so every process builds the same adapters), the same prompts and the
same settings; ``run_bench.py --only adapters`` runs each in its own process and reports it
against the paper's recipe (HF ``generate``, batch 10, fp32, adapter unmerged). On a shared
machine the load changes within minutes, so run_bench.py runs the six workloads in interleaved
rounds and keeps each one's fastest round.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MODEL = "smollm2-135m"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _adapters(root: Path, n: int) -> list[Path]:
    """``n`` random rank-32 adapters (B ~ N(0, 0.02^2), so answers stay text-like)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from emscope.models.loading import load_model
    from emscope.models.refs import parse_model_ref

    paths = []
    for i in range(n):
        torch.manual_seed(1000 + i)
        model = get_peft_model(
            load_model(parse_model_ref(MODEL), device=torch.device("cpu")),
            LoraConfig(r=32, lora_alpha=64, target_modules=TARGETS),
        )
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
        model.save_pretrained(root / f"adapter{i}")
        paths.append(root / f"adapter{i}")
    return paths


def _prompts(n: int) -> list[Any]:
    from emscope.sample.base import ChatPrompt
    from emscope.sample.questions import builtin_suite, load_questions

    texts = [p for q in load_questions(builtin_suite("broad")) for p in q.paraphrases]
    return [ChatPrompt(user=texts[i % len(texts)]) for i in range(n)]


REPEATS = 1  # timed runs per process (run_bench.py also repeats whole processes, interleaved)


def _best_of(run: Callable[[], T]) -> tuple[float, T]:
    """The shortest of ``REPEATS`` timed calls of ``run`` and that call's result."""
    best: tuple[float, T] | None = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        wall = time.perf_counter() - start
        if best is None or wall < best[0]:
            best = (wall, result)
    assert best is not None
    return best


def _rates(n: int, tokens: int, wall: float, load_s: float) -> dict[str, Any]:
    return {
        "samples_per_second": n / wall,
        "new_tokens_per_second": tokens / wall,
        "wall_s": wall,
        "load_s": load_s,
    }


def sample_adapter_paper(n: int, new_tokens: int, models: int = 1) -> dict[str, Any]:
    """The paper's recipe per model: peft model unmerged, plain generate, batch 10, fp32."""
    import torch

    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref

    prompts = _prompts(n)
    total_tokens, wall, load_s = 0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for adapter in _adapters(Path(tmp), models):
            start = time.perf_counter()
            ref = parse_model_ref(MODEL).with_adapter(adapter)
            tokenizer, model = load_tokenizer(ref), load_model(ref)
            tokenizer.padding_side = "left"
            load_s += time.perf_counter() - start
            texts = [
                tokenizer.apply_chat_template(
                    p.messages(), tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
            passes = []
            for _ in range(REPEATS):
                start, tokens = time.perf_counter(), 0
                for i in range(0, n, 10):
                    enc = tokenizer(texts[i : i + 10], padding=True, return_tensors="pt")
                    with torch.no_grad():
                        out = model.generate(
                            **enc,
                            do_sample=True,
                            temperature=1.0,
                            max_new_tokens=new_tokens,
                            pad_token_id=tokenizer.pad_token_id,
                        )
                    new = out[:, enc["input_ids"].shape[1] :]
                    tokens += int((new != tokenizer.pad_token_id).sum())
                passes.append((time.perf_counter() - start, tokens))
            best = min(passes)
            wall, total_tokens = wall + best[0], total_tokens + best[1]
    return _rates(n * models, total_tokens, wall, load_s)


def _local(n: int, new_tokens: int, batch: int, *, adapter: bool, merge: bool) -> dict[str, Any]:
    from emscope.models.refs import parse_model_ref
    from emscope.sample.base import SamplingParams
    from emscope.sample.local import LocalSampler

    prompts = _prompts(n)
    params = SamplingParams(temperature=1.0, max_new_tokens=new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        ref = parse_model_ref(MODEL)
        if adapter:
            ref = ref.with_adapter(_adapters(Path(tmp), 1)[0])
        start = time.perf_counter()
        sampler = LocalSampler(ref, dtype="float32", batch_size=batch, merge_adapter=merge)
        load_s = time.perf_counter() - start
        wall, out = _best_of(lambda: sampler.generate(prompts, params, list(range(n))))
    return _rates(n, sum(g.n_new_tokens for g in out), wall, load_s)


def sample_adapter_unmerged(n: int, new_tokens: int, batch: int = 32) -> dict[str, Any]:
    """emscope's local engine, adapter left unmerged (extra matmuls on every projection)."""
    return _local(n, new_tokens, batch, adapter=True, merge=False)


def sample_adapter_merged(n: int, new_tokens: int, batch: int = 32) -> dict[str, Any]:
    """emscope's local engine, adapter merged into the weights (the default)."""
    return _local(n, new_tokens, batch, adapter=True, merge=True)


def sample_base_model(n: int, new_tokens: int, batch: int = 32) -> dict[str, Any]:
    """emscope's local engine on the base model: the speed a fine-tune should match."""
    return _local(n, new_tokens, batch, adapter=False, merge=False)


def sample_models_one_by_one(
    n: int, new_tokens: int, models: int = 2, batch: int = 32
) -> dict[str, Any]:
    """Each fine-tune loaded (merged) and sampled after the other, load time included."""
    from emscope.models.refs import parse_model_ref
    from emscope.sample.base import SamplingParams
    from emscope.sample.local import LocalSampler

    prompts, params = _prompts(n), SamplingParams(temperature=1.0, max_new_tokens=new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        adapters = _adapters(Path(tmp), models)

        def run() -> int:
            tokens = 0
            for adapter in adapters:
                ref = parse_model_ref(MODEL).with_adapter(adapter)
                sampler = LocalSampler(ref, dtype="float32", batch_size=batch)
                out = sampler.generate(prompts, params, list(range(n)))
                tokens += sum(g.n_new_tokens for g in out)
            return tokens

        wall, tokens = _best_of(run)
    return _rates(n * models, tokens, wall, 0.0)


def sample_models_mixed(
    n: int, new_tokens: int, models: int = 2, batch: int = 32
) -> dict[str, Any]:
    """All fine-tunes in one base model, rows of every batch from different adapters, load
    time included (as in :func:`sample_models_one_by_one`)."""
    from emscope.models.refs import parse_model_ref
    from emscope.sample.adapters import AdapterRegistry
    from emscope.sample.base import SamplingParams
    from emscope.sample.multi_adapter import MultiAdapterSampler

    prompts, params = _prompts(n), SamplingParams(temperature=1.0, max_new_tokens=new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        refs = [parse_model_ref(MODEL).with_adapter(a) for a in _adapters(Path(tmp), models)]

        def run() -> list[Any]:
            registry = AdapterRegistry.from_refs(refs)
            engine = MultiAdapterSampler(registry, dtype="float32", batch_size=batch)
            names = list(registry.adapters)
            rows = [(p, i, name) for i, p in enumerate(prompts) for name in names]  # interleaved
            return engine.generate_mixed(
                [r[0] for r in rows], params, [r[1] for r in rows], [r[2] for r in rows]
            )

        wall, out = _best_of(run)
    return _rates(n * models, sum(g.n_new_tokens for g in out), wall, 0.0)


WORKLOADS = {
    "sample_adapter_paper": sample_adapter_paper,
    "sample_adapter_unmerged": sample_adapter_unmerged,
    "sample_adapter_merged": sample_adapter_merged,
    "sample_base_model": sample_base_model,
    "sample_models_one_by_one": sample_models_one_by_one,
    "sample_models_mixed": sample_models_mixed,
}
