"""Deterministic log-probabilities in vLLM 0.32's completion shapes (``logprobs``, ``echo``).

Values depend only on the seed, the position and the tokens, so two runs score alike. Shapes follow
recordings of the real server: the token's own entry comes first in every ``top_logprobs`` dict,
then the ``k`` most likely others (``k`` + 1 entries when the token itself is not among them);
the first echoed prompt token has ``null`` in both lists; ``prompt_logprobs`` (only with ``echo``)
is keyed by token id with rank and decoded token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vec_inf_flows.sim.answers import WRONG_LOGPROB, AnswerBook
from vec_inf_flows.sim.vocab import Tokens, Vocab, stable_key

GREEDY_ABOVE = -0.5  # a token this likely is its position's top choice
ALTERNATIVE_TOP = -0.5
ALTERNATIVE_STEP = 1.5


@dataclass(frozen=True)
class Scored:
    """One token with its log-probability (``None`` for the first prompt token)."""

    piece: str
    token_id: int
    value: float | None


def default_value(seed: int, index: int, previous: str, piece: str) -> float:
    """A log-probability in [-8.05, -0.05] that depends on the token and the one before it."""
    return -round(0.05 + stable_key(seed, index, previous, piece) % 1000 / 125, 4)


def score_prompt(seed: int, prompt: Tokens, book: AnswerBook) -> list[Scored]:
    """The echoed prompt's tokens, rigged by the answer book when a question matches."""
    values: list[float | None] = [None]
    for i in range(1, len(prompt)):
        values.append(default_value(seed, i, prompt.pieces[i - 1], prompt.pieces[i]))
    found = book.find(prompt.text) if book else None
    if found is not None:
        start, after_match = 0, []
        for i, piece in enumerate(prompt.pieces):
            if start >= found.end and i > 0:
                after_match.append(i)
            start += len(piece)
        for i in after_match:
            values[i] = 0.0
        if after_match and not AnswerBook.ends_with_answer(prompt.text, found):
            values[after_match[-1]] = WRONG_LOGPROB
    return [Scored(p, i, v) for p, i, v in zip(prompt.pieces, prompt.ids, values, strict=True)]


def score_output(seed: int, offset: int, pieces: Sequence[str], ids: Sequence[int]) -> list[Scored]:
    scored, previous = [], ""
    for n, (piece, token_id) in enumerate(zip(pieces, ids, strict=True)):
        scored.append(Scored(piece, token_id, default_value(seed, offset + n, previous, piece)))
        previous = piece
    return scored


def _top(
    vocab: Vocab, seed: int, index: int, token: Scored, k: int
) -> list[tuple[int, str, float, int]]:
    """(id, piece, logprob, rank) entries: the token itself first, then the top-k others.

    A likely token (above ``GREEDY_ABOVE``) is its position's top choice, followed by k - 1 less
    likely ones; any other token ranks below k more likely alternatives.
    """
    assert token.value is not None
    greedy = token.value > GREEDY_ABOVE
    wanted = k - 1 if greedy else k
    others: list[tuple[int, str]] = []
    attempt = 0
    while len(others) < wanted and attempt < 4 * k + 8:
        candidate = vocab.alternative(stable_key(seed, "alt", index, attempt))
        attempt += 1
        if candidate[1] != token.piece and candidate[1] not in {o[1] for o in others}:
            others.append(candidate)
    if greedy:
        values = [token.value - ALTERNATIVE_STEP * (j + 1) for j in range(len(others))]
        own_rank, first_other_rank = 1, 2
    else:
        step = (ALTERNATIVE_TOP - token.value) / max(1, k)
        values = [ALTERNATIVE_TOP - step * j for j in range(len(others))]
        own_rank = k + 1 + stable_key(seed, "rank", index) % 1000
        first_other_rank = 1
    entries = [(token.token_id, token.piece, token.value, own_rank)]
    entries += [
        (other[0], other[1], round(value, 4), first_other_rank + j)
        for j, (other, value) in enumerate(zip(others, values, strict=True))
    ]
    return entries


def completion_logprobs(
    vocab: Vocab, seed: int, scored: Sequence[Scored], k: int
) -> dict[str, Any]:
    """The ``choices[].logprobs`` object of a (non-chat) completion."""
    offsets, start = [], 0
    for token in scored:
        offsets.append(start)
        start += len(token.piece)
    top: list[dict[str, float] | None] = []
    for index, token in enumerate(scored):
        if token.value is None:
            top.append(None)
            continue
        top.append({piece: value for _, piece, value, _ in _top(vocab, seed, index, token, k)})
    return {
        "text_offset": offsets,
        "token_logprobs": [t.value for t in scored],
        "tokens": [t.piece for t in scored],
        "top_logprobs": top,
    }


def prompt_logprobs(
    vocab: Vocab, seed: int, scored: Sequence[Scored], k: int
) -> list[dict[str, Any] | None]:
    """The ``choices[].prompt_logprobs`` list vLLM adds when ``echo`` asks for logprobs."""
    out: list[dict[str, Any] | None] = []
    for index, token in enumerate(scored):
        if token.value is None:
            out.append(None)
            continue
        out.append(
            {
                str(token_id): {"logprob": value, "rank": rank, "decoded_token": piece}
                for token_id, piece, value, rank in _top(vocab, seed, index, token, k)
            }
        )
    return out
