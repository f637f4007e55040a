"""Deterministic answer mode (``--sim-answers FILE``): a model whose every answer a test knows.

The file is JSONL, one ``{"prompt": ..., "answer": ...}`` per line. A request whose prompt
contains an entry's ``prompt`` text (the one whose last occurrence ends latest wins, so few-shot
examples before the real question do not count) is answered from that entry:

- generation: the completion text is ``answer`` (then stop strings and ``max_tokens`` apply);
- scoring (``echo`` + ``logprobs``, how lm-eval scores multiple choice): every prompt token after
  the matched text gets log-probability 0.0 when the prompt ends with ``answer`` standing alone
  (after the match, a line break or punctuation), otherwise its last token gets
  ``WRONG_LOGPROB``. A choice's summed log-likelihood is then
  exactly 0 for the answer and -30 for the others, so the scorer picks the file's answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WRONG_LOGPROB = -30.0


@dataclass(frozen=True)
class Found:
    """The entry a prompt matched and where the matched text ends in it."""

    answer: str
    end: int


def load(path: str) -> tuple[tuple[str, str], ...]:
    """Read the file; raises ``ValueError`` naming the line for anything malformed."""
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {number}: invalid JSON ({exc.msg})") from None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("prompt"), str)
            or not isinstance(item.get("answer"), str)
            or not item["prompt"]
        ):
            raise ValueError(
                f'{path} line {number}: expected {{"prompt": "<text>", "answer": "<text>"}}'
            )
        entries.append((item["prompt"], item["answer"]))
    if not entries:
        raise ValueError(f"{path} has no answers")
    return tuple(entries)


class AnswerBook:
    def __init__(self, entries: tuple[tuple[str, str], ...]) -> None:
        self.entries = entries

    def __bool__(self) -> bool:
        return bool(self.entries)

    def find(self, text: str) -> Found | None:
        best: tuple[int, int, str] | None = None
        for prompt, answer in self.entries:
            at = text.rfind(prompt)
            if at < 0:
                continue
            candidate = (at + len(prompt), len(prompt), answer)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        return None if best is None else Found(best[2], best[0])

    @staticmethod
    def ends_with_answer(text: str, found: Found) -> bool:
        """Does the text after the match end with the answer, standing alone? It must follow the
        match itself, a line break or punctuation ("Answer: Paris", "assistant\n Paris"), so a
        choice "Not Paris" is not the answer "Paris"."""
        rest, answer = text[found.end :].rstrip(), found.answer.strip()
        if not answer or not rest.endswith(answer):
            return False
        before = rest[: -len(answer)]
        stripped = before.rstrip()
        gap = before[len(stripped) :]
        return not stripped or "\n" in gap or not stripped[-1].isalnum()
