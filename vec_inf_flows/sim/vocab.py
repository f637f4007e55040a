"""How the simulator turns prompts into tokens: its toy tokenizer, or a model's real one.

The toy tokenizer (``tokens.py``) is the default and keeps every count the simulator has always
reported. ``--sim-tokenizer DIR`` loads the model's ``tokenizer.json`` instead, so a client that
tokenizes with the same files (lm-eval's ``tokenizer=`` the weights dir) sends token ids the
simulator can read back, and echoed logprobs line up token for token, as with real vLLM.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vec_inf_flows.sim import tokens

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class Tokens:
    """A prompt as the engine sees it: one string per token and its id."""

    pieces: tuple[str, ...]
    ids: tuple[int, ...]

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)


class Vocab(Protocol):
    def from_text(self, text: str, *, special: bool = True) -> Tokens:
        """``special``: add the tokenizer's special tokens (BOS ...), as a prompt gets."""
        ...

    def from_ids(self, ids: Sequence[int]) -> Tokens: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def alternative(self, key: int) -> tuple[int, str]:
        """A token (id, string) chosen by ``key``: filler for top-logprob lists."""
        ...


class ToyVocab:
    """The simulator's own word-piece tokenizer; ids are hashes, decoded from what it has seen."""

    def __init__(self) -> None:
        self._seen: dict[int, str] = {}

    def from_text(self, text: str, *, special: bool = True) -> Tokens:
        pieces = tokens.pieces(text)
        ids = [tokens.token_id(p) for p in pieces]
        self._seen.update(zip(ids, pieces, strict=True))
        return Tokens(tuple(pieces), tuple(ids))

    def from_ids(self, ids: Sequence[int]) -> Tokens:
        """Unknown ids read as their numbers, one token each (the simulator's old behaviour)."""
        pieces = [str(i) if n == 0 else f" {i}" for n, i in enumerate(ids)]
        return Tokens(tuple(pieces), tuple(ids))

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._seen.get(int(i), "") for i in ids)

    def alternative(self, key: int) -> tuple[int, str]:
        word = " " + tokens.WORDS[key % len(tokens.WORDS)]
        return tokens.token_id(word), word


class ModelVocab:
    """A Hugging Face ``tokenizer.json`` read with the ``tokenizers`` library (no torch)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._size = int(tokenizer.get_vocab_size(with_added_tokens=True))

    def _piece(self, token_id: int) -> str:
        return str(self._tok.decode([token_id], skip_special_tokens=False))

    def from_text(self, text: str, *, special: bool = True) -> Tokens:
        return self.from_ids(self._tok.encode(text, add_special_tokens=special).ids)

    def from_ids(self, ids: Sequence[int]) -> Tokens:
        bad = [i for i in ids if not 0 <= int(i) < self._size]
        if bad:
            raise ValueError(f"Token id {bad[0]} is out of vocabulary")
        return Tokens(tuple(self._piece(int(i)) for i in ids), tuple(int(i) for i in ids))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=False))

    def alternative(self, key: int) -> tuple[int, str]:
        token_id = key % self._size
        return token_id, self._piece(token_id)


def tokenizer_file(path: str) -> Path:
    """The ``tokenizer.json`` a ``--sim-tokenizer`` value names (the file or its folder)."""
    given = Path(path).expanduser()
    return given / TOKENIZER_FILE if given.is_dir() else given


def load_model_vocab(path: str) -> ModelVocab:
    """Raises ``ValueError`` with one line when the file or the library is missing."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ValueError(
            "the 'tokenizers' package is not installed (pip install 'vec-inf-flows[lm-eval]')"
        ) from None
    file = tokenizer_file(path)
    if not file.is_file():
        raise ValueError(f"no {TOKENIZER_FILE} at {file}")
    try:
        return ModelVocab(Tokenizer.from_file(str(file)))
    except Exception as exc:  # the Rust loader raises its own exception type
        raise ValueError(f"cannot read {file}: {exc}") from None


def make_vocab(tokenizer: str | None) -> Vocab:
    return load_model_vocab(tokenizer) if tokenizer else ToyVocab()


def stable_key(*parts: object) -> int:
    """A hash that is the same in every process (``hash()`` of str is salted per process)."""
    return zlib.crc32("\x00".join(str(p) for p in parts).encode())
