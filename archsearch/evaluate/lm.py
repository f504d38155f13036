"""lm-evaluation-harness's ``LM`` interface over the project's own model and tokenizer."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.model import LM

from archsearch.model import KVCache, Transformer


class ArchsearchLM(LM):
    """Scores and generates with an ``archsearch.model.Transformer`` and a ``tokenizers`` BPE.

    Inputs longer than ``max_len`` tokens keep their last ``max_len`` tokens (the context is cut
    from the left); an empty context is replaced by the end-of-text token.
    """

    def __init__(
        self,
        model: Transformer,
        tokenizer: Any,
        eos_token_id: int,
        max_len: int,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.max_len = max_len
        self.batch_size = batch_size
        self._device = torch.device(device)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation ids; trailing spaces of the context join the continuation."""
        stripped = context.rstrip(" ")
        continuation = context[len(stripped) :] + continuation
        context_ids = self._encode(stripped) if stripped else [self.eos_token_id]
        return context_ids, self._encode(continuation)

    @torch.no_grad()
    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """Summed log-probability of each continuation given its context, and whether it is the
        greedy choice at every position."""
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        windows = [
            (context + continuation)[-(self.max_len + 1) :] for context, continuation in pairs
        ]
        order = sorted(range(len(pairs)), key=lambda i: -len(windows[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(windows[i]) for i in batch) - 1
            inputs = torch.full((len(batch), width), self.eos_token_id, dtype=torch.long)
            for row, i in enumerate(batch):  # right padding: causal attention never sees it
                inputs[row, : len(windows[i]) - 1] = torch.tensor(windows[i][:-1])
            logprobs = F.log_softmax(self.model(inputs.to(self._device)).float(), dim=-1)
            for row, i in enumerate(batch):
                n = len(pairs[i][1])
                end = len(windows[i]) - 1
                target = torch.tensor(windows[i][-n:], device=self._device)
                scores = logprobs[row, end - n : end]
                total = scores.gather(-1, target[:, None]).sum().item()
                results[i] = (total, bool((scores.argmax(-1) == target).all()))
        return [r for r in results if r is not None]

    def _score_long(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """``_score`` for continuations of any length: longer than ``max_len`` tokens, they are
        scored in consecutive pieces of ``max_len``, each after everything before it."""
        pieces, owner = [], []
        for i, (context, continuation) in enumerate(pairs):
            for start in range(0, len(continuation), self.max_len):
                pieces.append(
                    (context + continuation[:start], continuation[start : start + self.max_len])
                )
                owner.append(i)
        totals = [0.0] * len(pairs)
        greedy = [True] * len(pairs)
        for i, (total, is_greedy) in zip(owner, self._score(pieces), strict=True):
            totals[i] += total
            greedy[i] = greedy[i] and is_greedy
        return list(zip(totals, greedy, strict=True))

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        return self._score_long([self._pair(*request.args) for request in requests])

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        """Whole-document log-likelihood, in consecutive windows of ``max_len`` predicted tokens."""
        documents = [([self.eos_token_id], self._encode(r.args[0])) for r in requests]
        return [total for total, _ in self._score_long(documents)]

    @torch.no_grad()
    def generate_until(self, requests: list[Any]) -> list[str]:
        """Greedy generation with the KV cache until a stop string or ``max_gen_toks`` tokens."""
        outputs = []
        for request in requests:
            context, kwargs = request.args
            until = kwargs.get("until", [])
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.get("max_gen_toks", 256))
            ids = (self._encode(context) or [self.eos_token_id])[-(self.max_len - 1) :]
            max_new = min(max_new, self.max_len - len(ids))
            cache = KVCache.allocate(self.model.spec, 1, len(ids) + max_new, self._device)
            tokens = torch.tensor([ids], device=self._device)
            logits = self.model(tokens, cache, 0, last_logits_only=True)
            generated: list[int] = []
            text = ""
            for _ in range(max_new):
                next_id = int(logits[0, -1].argmax())
                if next_id == self.eos_token_id:
                    break
                generated.append(next_id)
                text = self.tokenizer.decode(generated)
                if any(stop in text for stop in until):
                    break
                step = torch.tensor([[next_id]], device=self._device)
                logits = self.model(step, cache, len(ids) + len(generated) - 1)
            for stop in until:
                text = text.split(stop)[0]
            outputs.append(text)
        return outputs
