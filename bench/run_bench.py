"""emscope benchmarks: each workload against the naive baseline, measured in the same run.

Run with ``make bench`` (or ``python bench/run_bench.py [--only train,sample] [--quick]``).
Each measurement runs in its own subprocess so peak memory (max RSS) is per workload.
Figures are printed as a table and written to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adapter_workloads

HERE = Path(__file__).resolve().parent
MODEL = "smollm2-135m"


def _train_examples(n: int) -> list[Any]:
    from emscope.data.conditions import build_condition
    from emscope.data.recipes import build_items

    items = build_items("risky_financial_advice", n, 0)
    return build_condition(items, "misaligned", seed=0)


def train_emscope(steps: int, batch: int) -> dict[str, Any]:
    """emscope's trainer: dynamic padding, assistant-only loss, bf16 autocast where supported."""
    import tempfile

    from emscope.models.refs import parse_model_ref
    from emscope.train.config import get_preset
    from emscope.train.trainer import train_lora

    config = get_preset(
        "domain-paper", batch_size=batch, grad_accum=1, max_steps=steps, warmup_steps=0
    )
    examples = _train_examples(steps * batch)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_lora(parse_model_ref(MODEL), examples, config, Path(tmp))
        wall = time.perf_counter() - start
    return {"tokens_per_second": result.tokens_per_second, "wall_s": wall}


def train_paper_baseline(steps: int, batch: int) -> dict[str, Any]:
    """The domain paper's recipe: every batch padded to 512 tokens, fp32, labels = input_ids."""
    import torch
    from peft import LoraConfig, get_peft_model

    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref

    ref = parse_model_ref(MODEL)
    tokenizer = load_tokenizer(ref)
    model = get_peft_model(
        load_model(ref, trainable=True),
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]),
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    examples = _train_examples(steps * batch)
    texts = [
        tokenizer.apply_chat_template([m.model_dump() for m in ex.messages], tokenize=False)
        for ex in examples
    ]
    real_tokens = 0
    start = time.perf_counter()
    for step in range(steps):
        enc = tokenizer(
            texts[step * batch : (step + 1) * batch],
            padding="max_length",
            max_length=512,
            truncation=True,
            return_tensors="pt",
        )
        real_tokens += int(enc["attention_mask"].sum())
        loss = model(**enc, labels=enc["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    wall = time.perf_counter() - start
    return {"tokens_per_second": real_tokens / wall, "wall_s": wall}


def _sample_prompts(n: int) -> list[Any]:
    from emscope.sample.local import ChatPrompt
    from emscope.sample.questions import builtin_suite, load_questions

    questions = load_questions(builtin_suite("broad"))
    texts = [p for q in questions for p in q.paraphrases]
    return [ChatPrompt(user=texts[i % len(texts)]) for i in range(n)]


def sample_emscope(n: int, new_tokens: int) -> dict[str, Any]:
    """emscope's local backend: batch 32, left padding, bf16 where supported, pinned params."""
    from emscope.models.refs import parse_model_ref
    from emscope.sample.local import LocalSampler, SamplingParams

    sampler = LocalSampler(parse_model_ref(MODEL), batch_size=32)
    prompts = _sample_prompts(n)
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=new_tokens)
    start = time.perf_counter()
    generated = 0
    for i in range(0, n, 32):
        out = sampler.generate(prompts[i : i + 32], params, list(range(i, min(i + 32, n))))
        generated += sum(g.n_new_tokens for g in out)
    wall = time.perf_counter() - start
    return {
        "samples_per_second": n / wall,
        "new_tokens_per_second": generated / wall,
        "wall_s": wall,
    }


def _sample_suite_at(batch_size: int, n: int, new_tokens: int) -> dict[str, Any]:
    """The broad suite's study prompts (system prompts and templates included), cycled to ``n``,
    sampled in batches of ``batch_size`` with per-row seeds, as a study's sample stage does."""
    from emscope.models.refs import parse_model_ref
    from emscope.sample.local import ChatPrompt, LocalSampler, SamplingParams
    from emscope.sample.questions import builtin_suite, expand_prompts, load_questions

    suite = expand_prompts(load_questions(builtin_suite("broad")), samples_override=1)
    prompts = [
        ChatPrompt(user=suite[i % len(suite)].question, system=suite[i % len(suite)].system)
        for i in range(n)
    ]
    sampler = LocalSampler(parse_model_ref(MODEL), batch_size=batch_size)
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=new_tokens)
    start = time.perf_counter()
    out = sampler.generate(prompts, params, list(range(n)))
    wall = time.perf_counter() - start
    generated = sum(g.n_new_tokens for g in out)
    return {
        "samples_per_second": n / wall,
        "new_tokens_per_second": generated / wall,
        "wall_s": wall,
    }


def sample_batch96(n: int, new_tokens: int) -> dict[str, Any]:
    """The demo's eval.batch_size."""
    return _sample_suite_at(96, n, new_tokens)


def sample_batch32(n: int, new_tokens: int) -> dict[str, Any]:
    """The default eval.batch_size."""
    return _sample_suite_at(32, n, new_tokens)


def sample_paper_baseline(n: int, new_tokens: int) -> dict[str, Any]:
    """The domain paper's recipe: plain ``generate`` in batches of 10, fp32, default padding."""
    import torch

    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref

    ref = parse_model_ref(MODEL)
    tokenizer = load_tokenizer(ref)
    model = load_model(ref)
    prompts = _sample_prompts(n)
    texts = [
        tokenizer.apply_chat_template(p.messages(), tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    start = time.perf_counter()
    generated = 0
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
        generated += int((out[:, enc["input_ids"].shape[1] :] != tokenizer.pad_token_id).sum())
    wall = time.perf_counter() - start
    return {
        "samples_per_second": n / wall,
        "new_tokens_per_second": generated / wall,
        "wall_s": wall,
    }


def _scoring_rows(n: int) -> list[Any]:
    # Real training rows of one domain, as a membership-inference or direction run reads them.
    return _train_examples(n)


def mia_emscope(n: int) -> dict[str, Any]:
    """emscope's scorer: length-sorted batches of 8, bf16 where supported, one forward per batch
    feeding loss, min-k%, min-k%++ and zlib from the same logits."""
    from emscope.analyses.mia_scoring import resolve_dtype, score_examples
    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref

    ref = parse_model_ref(MODEL)
    model, tokenizer = load_model(ref, dtype=resolve_dtype("auto")), load_tokenizer(ref)
    rows = _scoring_rows(n)
    start = time.perf_counter()
    frame = score_examples(model, tokenizer, rows, batch_size=8, lowercase=False)
    wall = time.perf_counter() - start
    tokens = int(frame.attrs["tokens_forward"])
    return {"tokens_per_second": tokens / wall, "wall_s": wall, "tokens": tokens}


def mia_naive(n: int) -> dict[str, Any]:
    """A per-example loop as in MIA notebooks: fp32, one unbatched forward per example, full
    log-softmax over every position, then loss / min-k% / min-k%++ / zlib in Python."""
    import zlib

    import numpy as np
    import torch

    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref
    from emscope.train.masking import assistant_token_mask

    ref = parse_model_ref(MODEL)
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    rows = _scoring_rows(n)
    start = time.perf_counter()
    tokens = 0
    with torch.no_grad():
        for row in rows:
            encoded = assistant_token_mask(tokenizer, row.messages)
            ids = torch.tensor([encoded.input_ids])
            tokens += ids.shape[1]
            log_p = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            p = log_p.exp()
            mu = (p * log_p).sum(-1)
            sigma = (p * (log_p - mu[:, None]) ** 2).sum(-1).sqrt()
            picked, plus = [], []
            for t in range(1, len(encoded.labels)):
                if encoded.labels[t] != -100:
                    value = float(log_p[t - 1, encoded.labels[t]])
                    picked.append(value)
                    plus.append((value - float(mu[t - 1])) / float(sigma[t - 1]))
            k = max(1, int(0.2 * len(picked)))
            loss = -float(np.mean(picked))
            _scores = (
                -loss,
                float(np.mean(sorted(picked)[:k])),
                float(np.mean(sorted(plus)[:k])),
                loss / len(zlib.compress(row.messages[-1].content.encode())),
            )
    wall = time.perf_counter() - start
    return {"tokens_per_second": tokens / wall, "wall_s": wall, "tokens": tokens}


def _conversations(n: int) -> list[list[dict[str, str]]]:
    return [[m.model_dump(exclude_none=True) for m in r.messages] for r in _scoring_rows(n)]


def activations_emscope(n: int) -> dict[str, Any]:
    """emscope's capture: forward hooks on every block, batches of 8, no KV cache, logits for
    one position only, bf16 where supported; mean over answer tokens per layer."""
    from emscope.analyses.activations import mean_answer_activations
    from emscope.analyses.mia_scoring import resolve_dtype
    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref

    ref = parse_model_ref(MODEL)
    model, tokenizer = load_model(ref, dtype=resolve_dtype("auto")), load_tokenizer(ref)
    chats = _conversations(n)
    layers = list(range(model.config.num_hidden_layers))
    start = time.perf_counter()
    means = mean_answer_activations(model, tokenizer, chats, layers, batch_size=8)
    wall = time.perf_counter() - start
    return {"conversations_per_second": len(means) / wall, "wall_s": wall}


def activations_naive(n: int) -> dict[str, Any]:
    """A per-example loop with ``output_hidden_states=True`` in fp32 (full logits and cache)."""
    import torch

    from emscope.analyses.activations import answer_token_positions
    from emscope.models.loading import load_model, load_tokenizer
    from emscope.models.refs import parse_model_ref

    ref = parse_model_ref(MODEL)
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    chats = _conversations(n)
    start = time.perf_counter()
    means = []
    with torch.no_grad():
        for chat in chats:
            ids, answer = answer_token_positions(tokenizer, chat)
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
            mask = torch.tensor(answer)
            means.append(torch.stack([h[0][mask].mean(0) for h in out.hidden_states[1:]]))
    wall = time.perf_counter() - start
    return {"conversations_per_second": len(means) / wall, "wall_s": wall}


WORKLOADS = {
    "train_emscope": train_emscope,
    "train_paper": train_paper_baseline,
    "sample_emscope": sample_emscope,
    "sample_paper": sample_paper_baseline,
    "batch_emscope": sample_batch96,
    "sample_batch32": sample_batch32,
    "mia_emscope": mia_emscope,
    "mia_naive": mia_naive,
    "activations_emscope": activations_emscope,
    "activations_naive": activations_naive,
    **adapter_workloads.WORKLOADS,
}

# Sampling fine-tuned models: every row against the paper's recipe (batch 10, fp32, unmerged).
ADAPTER_ROWS = [
    ("sample_adapter_paper", "paper recipe: generate batch 10, fp32, unmerged"),
    ("sample_adapter_unmerged", "emscope, adapter unmerged, batch 32"),
    ("sample_adapter_merged", "emscope, adapter merged, batch 32"),
    ("sample_base_model", "emscope, base model (no adapter), batch 32"),
    ("sample_models_one_by_one", "2 fine-tunes one after the other (merged, loads incl.)"),
    ("sample_models_mixed", "2 fine-tunes in mixed-adapter batches (loads incl.)"),
]
ADAPTER_ROUNDS = 3
ADAPTER_SIZES = {"full": {"n": 40, "new_tokens": 48}, "quick": {"n": 20, "new_tokens": 24}}


@dataclass(frozen=True)
class Comparison:
    """One row of the table: ``<key>_emscope`` against ``baseline`` on the same inputs."""

    key: str
    baseline: str
    label: str  # formatted with the workload's settings
    metric: str
    higher_is_better: bool
    digits: int
    baseline_note: str
    full: dict[str, int]
    quick: dict[str, int]


COMPARISONS = [
    Comparison(
        "train", "train_paper", "LoRA training, tokens/s (batch {batch})", "tokens_per_second",
        True, 0, "pad to 512", {"steps": 4, "batch": 8}, {"steps": 2, "batch": 8},
    ),
    Comparison(
        "sample", "sample_paper", "sampling, samples/s ({new_tokens} new tokens)",
        "samples_per_second", True, 2, "batch 10, fp32",
        {"n": 64, "new_tokens": 128}, {"n": 32, "new_tokens": 64},
    ),
    Comparison(
        "batch", "sample_batch32",
        "broad suite in batches of 96, samples/s ({n} prompts, {new_tokens} new tokens)",
        "samples_per_second", True, 2, "batches of 32",
        {"n": 192, "new_tokens": 96}, {"n": 96, "new_tokens": 64},
    ),
    Comparison(
        "mia", "mia_naive", "MIA scoring, tokens/s ({n} training rows)", "tokens_per_second",
        True, 0, "per-example, fp32", {"n": 128}, {"n": 32},
    ),
    Comparison(
        "activations", "activations_naive",
        "activation capture, all blocks, seconds ({n} conversations)", "wall_s", False, 1,
        "per-example hidden_states, fp32", {"n": 128}, {"n": 32},
    ),
]  # fmt: skip


def _child(name: str, kwargs: dict[str, Any]) -> None:
    result = WORKLOADS[name](**kwargs)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH_RESULT " + json.dumps(result))


def _measure(name: str, **kwargs: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, "--kwargs", json.dumps(kwargs)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ.copy())
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return dict(json.loads(line.removeprefix("BENCH_RESULT ")))
    raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")


def _adapter_table(results: dict[str, Any], sizes: dict[str, int]) -> Any:
    """Sampling fine-tuned models, each workload in its own process, all in this run."""
    from rich.table import Table

    # Interleaved rounds, fastest per workload: load changes on a shared machine hit every
    # workload alike instead of whichever happened to run at a busy moment.
    measured: dict[str, dict[str, Any]] = {}
    for _ in range(ADAPTER_ROUNDS):
        for name, _label in ADAPTER_ROWS:
            result = _measure(name, **sizes)
            if name not in measured or result["wall_s"] < measured[name]["wall_s"]:
                measured[name] = result
    base = measured["sample_adapter_paper"]
    results["adapters"] = {"settings": sizes, **measured}
    table = Table(
        f"sampling fine-tuned SmolLM2 ({sizes['n']} prompts, {sizes['new_tokens']} new tokens)",
        "samples/s", "new tokens/s", "ratio vs paper (samples/s)", "ratio vs paper (tokens/s)",
    )  # fmt: skip
    for name, label in ADAPTER_ROWS:
        row = measured[name]
        table.add_row(
            label,
            f"{row['samples_per_second']:.2f}",
            f"{row['new_tokens_per_second']:.1f}",
            f"{row['samples_per_second'] / base['samples_per_second']:.2f}x",
            f"{row['new_tokens_per_second'] / base['new_tokens_per_second']:.2f}x",
        )
    merged, plain = measured["sample_adapter_merged"], measured["sample_base_model"]
    ratio = merged["new_tokens_per_second"] / plain["new_tokens_per_second"]
    results["adapters"]["fine_tuned_vs_base_tokens_per_s"] = ratio
    table.caption = f"fine-tuned (merged) vs base model, new tokens/s: {ratio:.2f}x"
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child")
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--only", default="train,sample,batch,mia,activations,adapters")
    parser.add_argument("--quick", action="store_true", help="fewer steps and samples")
    args = parser.parse_args()
    if args.child:
        _child(args.child, json.loads(args.kwargs))
        return
    from rich.console import Console
    from rich.table import Table

    quick = args.quick
    # Workloads not run this time keep their last figures (--only runs a subset).
    saved = HERE / "results.json"
    results: dict[str, Any] = (
        json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    )
    results["machine"] = {"cpus": os.cpu_count()}
    table = Table("workload", "emscope", "baseline", "ratio", "peak RSS MB (emscope / baseline)")
    for c in COMPARISONS:
        if c.key not in args.only:
            continue
        kw = c.quick if quick else c.full
        ours, base = _measure(f"{c.key}_emscope", **kw), _measure(c.baseline, **kw)
        results[c.key] = {"emscope": ours, "baseline": base, "settings": kw}
        # ratio > 1 means emscope is better, whether the metric is a rate or a time
        ratio = (
            ours[c.metric] / base[c.metric]
            if c.higher_is_better
            else base[c.metric] / ours[c.metric]
        )
        table.add_row(
            c.label.format(**kw),
            f"{ours[c.metric]:.{c.digits}f}",
            f"{base[c.metric]:.{c.digits}f} ({c.baseline_note})",
            f"{ratio:.2f}x",
            f"{ours['peak_rss_mb']:.0f} / {base['peak_rss_mb']:.0f}",
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    if "adapters" in args.only:
        console.print(_adapter_table(results, ADAPTER_SIZES["quick" if quick else "full"]))
    saved.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
