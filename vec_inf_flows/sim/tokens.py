"""A deterministic toy tokenizer and text/embedding generator.

Usage numbers, metrics and ``/tokenize`` all count with the same tokenizer, so counters stay
consistent with what was served. Output depends only on the seed and the input, so tests can
assert on exact text and benchmarks are repeatable.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass
from typing import Any

VOCAB_SIZE = 49152
_PIECE = re.compile(r" ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d]+|\s+")
_SPECIAL = re.compile(r"(<\|[a-z_]+\|>)")
_WORD_TEXT = (
    "the of and to in is that for it as with was on be by at this are from or an have not "
    "which but they all were when we there can more one about what so their if would out time "
    "model server token request cluster node memory queue batch answer simple small first "
    "quickly very good data light water river mountain city people world system value"
)
WORDS = tuple(_WORD_TEXT.split())
_PUNCTUATION = (".", ",", ".", "!", "?", ";")


def pieces(text: str) -> list[str]:
    """Split text into token strings; chat special tokens count as one token each."""
    out: list[str] = []
    for part in _SPECIAL.split(text):
        if _SPECIAL.fullmatch(part):
            out.append(part)
        elif part:
            out.extend(_PIECE.findall(part))
    return out


def token_id(piece: str) -> int:
    return zlib.crc32(piece.encode()) % VOCAB_SIZE


def count_tokens(text: str) -> int:
    return len(pieces(text))


def render_chat(messages: list[dict[str, Any]]) -> str:
    """A ChatML-style template (SmolLM2's), so chat prompts cost template tokens too."""
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"<|im_start|>{message.get('role', 'user')}\n{content or ''}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


@dataclass(frozen=True)
class Generation:
    """What a request will produce: the token strings to emit and why it ends."""

    tokens: tuple[str, ...]
    finish_reason: str  # "stop" | "length"
    stop_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def generate(
    seed: int,
    prompt: str,
    max_tokens: int,
    *,
    ignore_eos: bool = False,
    stop: tuple[str, ...] = (),
    leading_space: bool = True,
) -> Generation:
    """Pseudo-random words seeded by (seed, prompt); ends at EOS, a stop string or max_tokens."""
    rng = random.Random(f"{seed}\x00{prompt}")
    natural = rng.randint(16, 96)
    length = max_tokens if ignore_eos else min(max_tokens, natural)
    tokens: list[str] = []
    for index in range(length):
        if index and rng.random() < 0.12:
            tokens.append(rng.choice(_PUNCTUATION))
        else:
            word = rng.choice(WORDS)
            tokens.append(word if index == 0 and not leading_space else " " + word)
    finish = "length" if length == max_tokens else "stop"
    if finish == "stop" and tokens:
        tokens[-1] = ""  # the EOS token: counted, never shown
    return apply_stop(Generation(tuple(tokens), finish), stop)


def apply_stop(generation: Generation, stop: tuple[str, ...]) -> Generation:
    """Cut at the first stop string, keeping the token that completed it (vLLM counts it)."""
    if not stop:
        return generation
    text = ""
    for index, token in enumerate(generation.tokens):
        text += token
        hits = [(text.find(s), s) for s in stop if s and s in text]
        if hits:
            cut, matched = min(hits)
            kept = list(generation.tokens[: index + 1])
            shown = "".join(kept[:-1])
            kept[-1] = text[len(shown) : cut] if cut >= len(shown) else ""
            return Generation(tuple(kept), "stop", matched)
    return generation


def embed(seed: int, text: str, dim: int) -> list[float]:
    """Sum of per-token random vectors, unit-normalised: shared words give higher cosine."""
    total = [0.0] * dim
    for piece in pieces(text) or [""]:
        rng = random.Random(f"{seed}\x01{piece.strip().lower()}")
        for i in range(dim):
            total[i] += rng.gauss(0.0, 1.0)
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    return [v / norm for v in total]
