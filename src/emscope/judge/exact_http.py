"""The exact 0-100 judge over an OpenAI-compatible server that returns prompt-token logprobs.

Same candidates and the same aggregation as the in-process exact judge
(:mod:`emscope.judge.exact_local`): the judge prompt goes through the model's chat template
(rendered here with the model's Hugging Face tokenizer), and each answer "0".."100" followed by
the end-of-turn token is scored as a continuation; probability outside the 101 candidates is
the non-numeric mass. The server only has to return the log-probability of each prompt token.
Which request fields do that (both on ``POST /v1/completions``):

- **vLLM**: ``prompt`` as token ids (a list of 101 token-id prompts in one request),
  ``prompt_logprobs: 0`` (vLLM's extension: each position's logprob of the prompt token itself,
  in ``choices[i].prompt_logprobs``), ``max_tokens: 1``. vLLM's prefix cache shares the judge
  prompt across the 101 candidates.
- **llama-cpp-python** (``python -m llama_cpp.server``, which loads models with
  ``logits_all=True`` by default; a model loaded without it answers logprob requests with an
  error): ``prompt`` as text (its server takes no token ids), ``echo: true``, ``logprobs: 0``,
  ``max_tokens: 1``; ``choices[0].logprobs.token_logprobs`` then holds the prompt's tokens. One
  request per candidate; the server keeps the previous prompt's KV cache and evaluates only the
  differing suffix. Its echo logprobs line up with the tokens only when the prompt starts with
  the model's BOS token (it drops the first token and pairs the rest with the logits of the
  positions before them), and it leaves out every BOS token's entry; :func:`llama_cpp_suffix`
  checks the count and refuses anything else.

llama.cpp's own ``llama-server`` returns no prompt-token logprobs, so it cannot serve this
judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from emscope.errors import EmscopeError, InputError
from emscope.judge.exact_local import (
    DEFAULT_PROMPTS,
    NUMBERS,
    ExactJudge,
    ExactScore,
    candidate_token_ids,
    exact_score,
    render_prompt,
)
from emscope.models.refs import ModelRef
from emscope.sample.openai_compat import ApiEndpoint, RetryPolicy, call_with_retries, run_sync

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MODE = "exact-http"
ServerKind = Literal["vllm", "llama-cpp"]
SERVER_KINDS: tuple[ServerKind, ...] = ("vllm", "llama-cpp")


class ServerLogprobError(EmscopeError):
    """The server's reply lacks the prompt logprobs this judge needs, or they do not line up."""


def vllm_body(model: str, prompt: Sequence[int], candidates: Sequence[Sequence[int]]) -> dict:
    """One vLLM request scoring every candidate after ``prompt`` (token ids throughout)."""
    return {
        "model": model,
        "prompt": [[*prompt, *c] for c in candidates],
        "max_tokens": 1,
        "temperature": 0,
        "prompt_logprobs": 0,
    }


def vllm_logprobs(
    reply: Mapping[str, Any], prompt: Sequence[int], candidates: Sequence[Sequence[int]]
) -> list[float]:
    """log P(candidate | prompt) of each candidate from a vLLM reply to :func:`vllm_body`."""
    choices = sorted(reply.get("choices") or [], key=lambda c: int(c.get("index", 0)))
    if len(choices) != len(candidates):
        raise ServerLogprobError(f"{len(choices)} choices for {len(candidates)} candidates")
    out = []
    for choice, candidate in zip(choices, candidates, strict=True):
        entries = choice.get("prompt_logprobs")
        if entries is None:
            raise ServerLogprobError("no prompt_logprobs in the reply: is the server vLLM?")
        if len(entries) != len(prompt) + len(candidate):
            raise ServerLogprobError("prompt_logprobs do not cover the prompt's tokens")
        total = 0.0
        for position, token in enumerate(candidate, start=len(prompt)):
            entry = (entries[position] or {}).get(str(token))
            if entry is None:
                raise ServerLogprobError(f"no logprob for prompt token {token} at {position}")
            total += float(entry["logprob"] if isinstance(entry, Mapping) else entry)
        out.append(total)
    return out


def llama_cpp_body(model: str, text: str) -> dict[str, Any]:
    """One llama-cpp-python request echoing the logprobs of ``text``'s tokens."""
    return {
        "model": model,
        "prompt": text,
        "max_tokens": 1,
        "temperature": 0,
        "echo": True,
        "logprobs": 0,
    }


def llama_cpp_suffix(reply: Mapping[str, Any], ids: Sequence[int], n_suffix: int) -> float:
    """Sum of the logprobs of the last ``n_suffix`` of the prompt tokens ``ids``.

    The reply lists the prompt's tokens except BOS tokens (the first one included), then the
    generated token unless generation stopped at once (``finish_reason == "stop"``). Anything
    else means the server tokenised differently or misaligned its logprobs: an error.
    """
    choice = (reply.get("choices") or [{}])[0]
    logprobs = choice.get("logprobs") or {}
    values = logprobs.get("token_logprobs")
    if values is None:
        raise ServerLogprobError("no echoed token_logprobs: was the model loaded with logits_all?")
    generated = 0 if choice.get("finish_reason") == "stop" else 1
    bos = ids[0]
    expected = len(ids) - sum(1 for t in ids if t == bos) + generated
    if len(values) != expected or bos in ids[len(ids) - n_suffix :]:
        raise ServerLogprobError(
            f"the server echoed {len(values)} token logprobs where {expected} were expected: "
            "its tokenisation differs from the tokenizer's, or the prompt does not start with "
            "the model's BOS token (llama-cpp-python aligns echoed logprobs only then)"
        )
    end = len(values) - generated
    picked = values[end - n_suffix : end]
    if any(v is None for v in picked):
        raise ServerLogprobError("the server left a candidate token's logprob empty")
    return float(sum(picked))


class ExactHttpJudge(ExactJudge):
    """The exact judge over a vLLM or llama-cpp-python server (see the module docstring).

    ``tokenizer`` is the served model's Hugging Face tokenizer (an ``emscope models``
    reference): it renders the chat template and defines the candidates, exactly as the
    in-process judge does.
    """

    mode = MODE

    def __init__(
        self,
        endpoint: ApiEndpoint,
        tokenizer: ModelRef,
        server: ServerKind,
        *,
        prompts: Mapping[str, str] = DEFAULT_PROMPTS,
        retry: RetryPolicy | None = None,
        loaded_tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        if server not in SERVER_KINDS:
            raise InputError(f"must be one of {SERVER_KINDS}, not {server!r}", field="server")
        self.endpoint = endpoint
        self.tokenizer_ref = tokenizer
        self.server: ServerKind = server
        self._use_prompts(prompts)
        self.retry = retry or RetryPolicy()
        self._tokenizer = loaded_tokenizer
        self._candidates: list[list[int]] | None = None

    @property
    def identity(self) -> str:
        return f"{MODE}:{self.endpoint.model}@{self.endpoint.host}"

    def fingerprint_params(self) -> dict[str, Any]:
        return {"server": self.server, "tokenizer": str(self.tokenizer_ref)}

    def chat_tokenizer(self) -> PreTrainedTokenizerBase:
        return self.load()[0]

    def record_extra(self) -> dict[str, Any]:
        return self.fingerprint_params()

    def load(self) -> tuple[PreTrainedTokenizerBase, list[list[int]]]:
        if self._tokenizer is None:
            from emscope.models.loading import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_ref)
        if self._candidates is None:
            self._candidates = candidate_token_ids(self._tokenizer)
        return self._tokenizer, self._candidates

    async def _post(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        standard = {k: body[k] for k in ("model", "prompt", "max_tokens", "temperature")}
        extra = {k: v for k, v in body.items() if k not in standard}
        if "echo" in extra:
            standard["echo"] = extra.pop("echo")
        if "logprobs" in extra:
            standard["logprobs"] = extra.pop("logprobs")

        async def send() -> dict[str, Any]:
            reply = await client.completions.create(**standard, extra_body=extra or None)
            return dict(reply.model_dump(mode="json"))

        return await call_with_retries(send, self.retry)

    async def _candidate_logprobs(
        self, client: Any, text: str, numbers: Sequence[int]
    ) -> list[float]:
        tokenizer, all_candidates = self.load()
        candidates = [all_candidates[k] for k in numbers]
        ids = render_prompt(tokenizer, text)
        if self.server == "vllm":
            reply = await self._post(client, vllm_body(self.endpoint.model, ids, candidates))
            return vllm_logprobs(reply, ids, candidates)
        rendered = str(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
            )
        )
        totals = []
        for candidate in candidates:
            full = rendered + str(tokenizer.decode(candidate))
            reply = await self._post(client, llama_cpp_body(self.endpoint.model, full))
            totals.append(llama_cpp_suffix(reply, [*ids, *candidate], len(candidate)))
        return totals

    async def _with_client(self, texts: Sequence[str], numbers: Sequence[int]) -> list[list[float]]:
        client = self.endpoint.async_client()
        try:
            return [await self._candidate_logprobs(client, t, numbers) for t in texts]
        finally:
            await client.close()

    def candidate_logprobs(self, text: str, numbers: Sequence[int] = NUMBERS) -> list[float]:
        """log P(answer | judge prompt) of each answer in ``numbers`` (a score needs all 101)."""
        return run_sync(self._with_client([text], numbers))[0]

    def score_texts(self, texts: Sequence[str]) -> list[ExactScore]:
        """The exact score of each filled judge prompt, one prompt at a time."""
        return [exact_score(row) for row in run_sync(self._with_client(texts, NUMBERS))]
