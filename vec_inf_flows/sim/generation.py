"""What each prompt of a request produces: its text, why it ends, and its log-probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vec_inf_flows.sim import bodies, logprobs, tokens
from vec_inf_flows.sim.answers import AnswerBook
from vec_inf_flows.sim.requests import GenerationRequest
from vec_inf_flows.sim.vocab import Tokens, Vocab


@dataclass(frozen=True)
class Planned:
    """One prompt of a request and the tokens the engine will emit for it."""

    prompt: Tokens
    output: tokens.Generation


class Planner:
    """Bound to a server's seed, tokenizer and answer book (empty unless ``--sim-answers``)."""

    def __init__(self, seed: int, vocab: Vocab, book: AnswerBook) -> None:
        self.seed = seed
        self.vocab = vocab
        self.book = book

    def plan(self, prompt: Tokens, req: GenerationRequest) -> Planned:
        found = self.book.find(prompt.text) if self.book else None
        if found is not None:
            return Planned(prompt, self._answer(found.answer, req))
        generated = tokens.generate(
            self.seed,
            prompt.text,
            req.max_tokens,
            ignore_eos=req.ignore_eos,
            stop=req.stop,
            leading_space=not req.chat,
        )
        return Planned(prompt, generated)

    def _answer(self, answer: str, req: GenerationRequest) -> tokens.Generation:
        """The book's answer, then EOS; cut by ``max_tokens`` and stop strings like any output."""
        pieces = list(self.vocab.from_text(answer, special=False).pieces)
        if len(pieces) < req.max_tokens:
            generated = tokens.Generation((*pieces, ""), "stop")  # "" is the EOS token
        else:
            generated = tokens.Generation(tuple(pieces[: req.max_tokens]), "length")
        return tokens.apply_stop(generated, req.stop)

    def output_logprobs(self, planned: Planned, k: int) -> list[dict[str, Any]]:
        """Per output token, the ``logprobs`` fragment a streamed frame carries."""
        scored = self._score_output(planned)
        body = logprobs.completion_logprobs(self.vocab, self.seed, scored, k)
        return [
            {
                "text_offset": [body["text_offset"][i]],
                "token_logprobs": [body["token_logprobs"][i]],
                "tokens": [body["tokens"][i]],
                "top_logprobs": [body["top_logprobs"][i]],
            }
            for i in range(len(scored))
        ]

    def _score_output(self, planned: Planned) -> list[logprobs.Scored]:
        pieces = planned.output.tokens
        return logprobs.score_output(
            self.seed, len(planned.prompt), pieces, [tokens.token_id(p) for p in pieces]
        )

    def choice(self, index: int, planned: Planned, req: GenerationRequest) -> dict[str, Any]:
        """A completion choice: echo prepends the prompt (and its tokens' logprobs)."""
        output = planned.output
        text = (planned.prompt.text if req.echo else "") + output.text
        if req.logprobs is None:
            return bodies.completion_choice(index, text, output.finish_reason, output.stop_reason)
        prompt_scored = (
            logprobs.score_prompt(self.seed, planned.prompt, self.book) if req.echo else []
        )
        scored = prompt_scored + self._score_output(planned)
        return bodies.completion_choice(
            index,
            text,
            output.finish_reason,
            output.stop_reason,
            logprobs.completion_logprobs(self.vocab, self.seed, scored, req.logprobs),
            logprobs.prompt_logprobs(self.vocab, self.seed, prompt_scored, req.logprobs)
            if req.echo
            else None,
        )
