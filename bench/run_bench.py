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
from pathlib import Path
from typing import Any

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


WORKLOADS = {
    "train_emscope": train_emscope,
    "train_paper": train_paper_baseline,
    "sample_emscope": sample_emscope,
    "sample_paper": sample_paper_baseline,
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child")
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--only", default="train,sample")
    parser.add_argument("--quick", action="store_true", help="fewer steps and samples")
    args = parser.parse_args()
    if args.child:
        _child(args.child, json.loads(args.kwargs))
        return
    from rich.console import Console
    from rich.table import Table

    quick = args.quick
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    table = Table("workload", "emscope", "baseline", "ratio", "peak RSS MB (emscope / baseline)")
    if "train" in args.only:
        kw = {"steps": 2 if quick else 4, "batch": 8}
        ours, base = _measure("train_emscope", **kw), _measure("train_paper", **kw)
        results["train"] = {"emscope": ours, "paper_recipe": base, "settings": kw}
        table.add_row(
            "LoRA training, tokens/s (batch 8)",
            f"{ours['tokens_per_second']:.0f}",
            f"{base['tokens_per_second']:.0f} (pad to 512)",
            f"{ours['tokens_per_second'] / base['tokens_per_second']:.2f}x",
            f"{ours['peak_rss_mb']:.0f} / {base['peak_rss_mb']:.0f}",
        )
    if "sample" in args.only:
        kw = {"n": 32 if quick else 64, "new_tokens": 64 if quick else 128}
        ours, base = _measure("sample_emscope", **kw), _measure("sample_paper", **kw)
        results["sample"] = {"emscope": ours, "paper_recipe": base, "settings": kw}
        table.add_row(
            f"sampling, samples/s ({kw['new_tokens']} new tokens)",
            f"{ours['samples_per_second']:.2f}",
            f"{base['samples_per_second']:.2f} (batch 10, fp32)",
            f"{ours['samples_per_second'] / base['samples_per_second']:.2f}x",
            f"{ours['peak_rss_mb']:.0f} / {base['peak_rss_mb']:.0f}",
        )
    Console().print(table)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
