"""The domain paper's grid on one GPU: 22 LoRA fine-tunes of Qwen2.5-Coder-7B, ~33,000 answers.

No weights can be downloaded on the GPU machine, so the model is built from the exact
Qwen2.5-Coder-7B-Instruct dimensions with random bf16 weights, with 22 random rank-32 adapters
on all seven projections. Decode speed does not depend on weight values when every answer is
forced to the same length (``min_new_tokens = max_new_tokens``), so the figures hold for the
real fine-tunes. Each engine samples a slice of the grid's shape (every answer 200 new tokens
after a 40-token prompt) and the script prints samples/s, tokens/s and the projected time of
the 33,000-answer grid, next to the paper's recipe (HF generate, batch 10, adapter unmerged)
and HF generate at batch 256, measured in the same run.

    python bench/gpu_grid.py                 # on a CUDA GPU (a few minutes)
    python bench/gpu_grid.py --tiny          # the same code on a tiny config, CPU, < 1 min
    python bench/gpu_grid.py --skip static   # leave out engines (comma-separated names:
                                             # static, vllm, or any engine name printed)

Writes one JSON line per measurement to stdout, and to ``$OUT/gpu_grid.jsonl`` when ``OUT``
is set. Needs torch, transformers and peft; vLLM is measured only when it imports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from emscope.sample.seeded import SeededRowSampler
from emscope.sample.stacked_lora import StackedLora

GRID_ANSWERS = 33_000  # 11 domains x 2 conditions x with/without trigger, ~100 per question
N_ADAPTERS = 22
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPT_LEN = 40


def build_config(tiny: bool) -> Any:
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=512,
        )
    return Qwen2Config(  # Qwen2.5-Coder-7B-Instruct
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
    )


def build_model(tiny: bool, device: str, dtype: torch.dtype, rank: int) -> Any:
    """The random base model wrapped in peft with N_ADAPTERS random adapters (B != 0)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = build_config(tiny)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        base = AutoModelForCausalLM.from_config(config, dtype=dtype)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=PROJECTIONS)
    model = get_peft_model(base, lora, adapter_name="a0")
    for i in range(1, N_ADAPTERS):
        model.add_adapter(f"a{i}", lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    model.eval()
    return model


class Bench:
    def __init__(self, model: Any, device: str, new_tokens: int, out: Path | None) -> None:
        self.model, self.device, self.new_tokens, self.out = model, device, new_tokens, out
        self.vocab = model.config.vocab_size

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def emit(self, row: dict[str, Any]) -> None:
        line = json.dumps(row)
        print(line, flush=True)
        if self.out is not None:
            with open(self.out, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def generate(
        self,
        batch: int,
        *,
        seeded: bool,
        static: bool = False,
        adapters: list[str] | None = None,
        stacked: StackedLora | None = None,
    ) -> float:
        """Seconds for one ``generate`` call of ``batch`` rows, ``new_tokens`` each."""
        ids = torch.randint(100, self.vocab - 100, (batch, PROMPT_LEN), device=self.device)
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": self.new_tokens,
            "min_new_tokens": self.new_tokens,
            "pad_token_id": 0,
        }
        if seeded:  # emscope's per-row seeded sampling: generate decodes greedily over it
            row_sampler = SeededRowSampler(
                list(range(batch)), temperature=1.0, top_p=1.0, top_k=0, prompt_width=PROMPT_LEN
            )
            kwargs |= {"do_sample": False, "logits_processor": [row_sampler]}
        else:
            kwargs |= {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0}
        if static:
            kwargs["cache_implementation"] = "static"
        if adapters is not None and stacked is None:
            kwargs["adapter_names"] = adapters
        self.sync()
        start = time.perf_counter()
        with torch.inference_mode():
            if stacked is not None and adapters is not None:
                with stacked.rows(adapters):
                    out = self.model.generate(**kwargs)
            else:
                out = self.model.generate(**kwargs)
        self.sync()
        assert out.shape[1] - PROMPT_LEN == self.new_tokens
        return time.perf_counter() - start

    def measure(self, name: str, batch: int, calls: int, run: Callable[[], float]) -> None:
        """``calls`` timed calls of ``run`` (each ``batch`` answers); one JSON line."""
        try:
            seconds = [run() for _ in range(calls)]
        except Exception as exc:  # one engine failing must not hide the others' figures
            traceback.print_exc()
            self.emit({"engine": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
            return
        total = sum(seconds)
        rate = batch * calls / total
        self.emit(
            {
                "engine": name,
                "batch": batch,
                "calls": calls,
                "new_tokens": self.new_tokens,
                "s": round(total, 2),
                "samples_per_s": round(rate, 2),
                "tokens_per_s": round(rate * self.new_tokens, 1),
                "ms_per_step": round(1000 * total / calls / self.new_tokens, 2),
                "grid_hours": round(GRID_ANSWERS / rate / 3600, 2),
                "grid_minutes": round(GRID_ANSWERS / rate / 60, 1),
            }
        )


def run_hf(bench: Bench, sizes: dict[str, int], skip: set[str]) -> None:
    model, big = bench.model, sizes["big"]
    model.set_adapter("a0")

    def engine(name: str, batch: int, calls: int, **kw: Any) -> None:
        if name not in skip:
            bench.measure(name, batch, calls, lambda: bench.generate(batch, **kw))

    bench.generate(2, seeded=False)  # warm-up (kernels, allocator)
    engine("paper_recipe_unmerged_b10", 10, sizes["paper_calls"], seeded=False)
    engine(f"hf_unmerged_b{big}", big, 1, seeded=False)
    model.merge_adapter(["a0"])
    engine(f"hf_merged_b{big}", big, 1, seeded=False)
    engine(f"emscope_merged_seeded_b{big}", big, 1, seeded=True)
    if "static" not in skip:
        bench.measure(
            f"emscope_merged_static_first_call_b{big}", big, 1,
            lambda: bench.generate(big, seeded=True, static=True),
        )  # fmt: skip
        engine(f"emscope_merged_static_compiled_b{big}", big, sizes["static_calls"],
               seeded=True, static=True)  # fmt: skip
    model.unmerge_adapter()
    per = max(1, big // N_ADAPTERS)
    names = [f"a{i % N_ADAPTERS}" for i in range(per * N_ADAPTERS)]
    n = len(names)
    stacked = StackedLora(model, [f"a{i}" for i in range(N_ADAPTERS)])
    engine(f"emscope_mixed_stacked_{N_ADAPTERS}_adapters_b{n}", n, 1,
           seeded=True, adapters=names, stacked=stacked)  # fmt: skip
    engine(f"peft_mixed_adapter_names_{N_ADAPTERS}_adapters_b{n}", n, 1,
           seeded=True, adapters=names)  # fmt: skip
    if "static" not in skip:
        bench.measure(
            f"emscope_mixed_stacked_static_first_call_b{n}", n, 1,
            lambda: bench.generate(n, seeded=True, static=True, adapters=names, stacked=stacked),
        )  # fmt: skip
        engine(f"emscope_mixed_stacked_static_compiled_b{n}", n, sizes["static_calls"],
               seeded=True, static=True, adapters=names, stacked=stacked)  # fmt: skip


def run_vllm(bench: Bench, rank: int, sizes: dict[str, int]) -> None:
    """vLLM with every adapter in one engine (only where vLLM imports; needs a saved model)."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:
        bench.emit({"engine": "vllm", "skipped": f"vllm does not import: {type(exc).__name__}"})
        return
    import tempfile

    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    root = Path(tempfile.mkdtemp(prefix="gpu_grid_"))
    names = [f"a{i}" for i in range(N_ADAPTERS)]
    bench.model.save_pretrained(root / "adapters", selected_adapters=names)  # root/adapters/aN
    base = bench.model.unload()  # the plain base model, no adapter merged
    base.save_pretrained(root / "base")
    bench.model = base = None
    torch.cuda.empty_cache()
    llm = LLM(
        model=str(root / "base"), skip_tokenizer_init=True, enable_lora=True,
        max_loras=N_ADAPTERS, max_cpu_loras=N_ADAPTERS, max_lora_rank=rank, seed=0,
    )  # fmt: skip
    n = sizes["vllm_per_adapter"] * N_ADAPTERS
    prompts = [
        {"prompt_token_ids": torch.randint(100, bench.vocab - 100, (PROMPT_LEN,)).tolist()}
        for _ in range(n)
    ]
    params = [
        SamplingParams(temperature=1.0, top_p=1.0, seed=i, max_tokens=bench.new_tokens,
                       min_tokens=bench.new_tokens, ignore_eos=True, detokenize=False)
        for i in range(n)
    ]  # fmt: skip
    loras = [
        LoRARequest(name, i + 1, str(root / "adapters" / name)) for i, name in enumerate(names)
    ]
    requests = [loras[i % N_ADAPTERS] for i in range(n)]

    def once() -> float:
        start = time.perf_counter()
        llm.generate(prompts, params, lora_request=requests, use_tqdm=False)
        return time.perf_counter() - start

    once()  # warm-up: loads every adapter into its slot
    bench.measure(f"vllm_{N_ADAPTERS}_loras_{n}_requests", n, 1, once)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny config on the CPU")
    parser.add_argument("--skip", default="", help="engines to leave out, comma-separated")
    parser.add_argument("--new-tokens", type=int, default=None)
    args = parser.parse_args()
    tiny, skip = args.tiny, set(filter(None, args.skip.split(",")))
    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    rank = 32
    new_tokens = args.new_tokens or (8 if tiny else 200)
    sizes = (
        {"big": 24, "paper_calls": 1, "static_calls": 1, "vllm_per_adapter": 1}
        if tiny
        else {"big": 256, "paper_calls": 2, "static_calls": 2, "vllm_per_adapter": 24}
    )
    out_dir = os.environ.get("OUT")
    out = Path(out_dir) / "gpu_grid.jsonl" if out_dir else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = build_model(tiny, device, dtype, rank)
    import peft
    import transformers

    bench = Bench(model, device, new_tokens, out)
    bench.emit(
        {
            "what": "setup",
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "params": sum(p.numel() for p in model.parameters()),
            "adapters": N_ADAPTERS,
            "rank": rank,
            "build_s": round(time.perf_counter() - start, 1),
            "grid_answers": GRID_ANSWERS,
        }
    )
    run_hf(bench, sizes, skip)
    if "vllm" not in skip and device == "cuda":
        try:
            run_vllm(bench, rank, sizes)
        except Exception as exc:
            traceback.print_exc()
            bench.emit({"engine": "vllm", "error": f"{type(exc).__name__}: {exc}"[:500]})
    bench.emit({"what": "done", "wall_s": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()
