"""Plain box-drawn tables, drawn like rich's default table, for the commands that print one.

``status`` and ``list`` must answer in a few tens of milliseconds; importing rich costs about
25 ms before it draws anything. These tables need nothing of it but the look: a heavy header,
padded columns, cells wrapped when the terminal is narrow, colour only on a terminal
(``NO_COLOR`` respected, ``FORCE_COLOR`` honoured). Live views and spinners still use rich.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

# A cell: its text, or (text, style) with a style from _STYLES.
Cell = str | tuple[str, str]

_STYLES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "purple": "35",
    "cyan": "36",
    "white": "37",
    "bright_blue": "94",
}
_MIN_WIDTH = 6


@dataclass
class BoxTable:
    headers: Sequence[str]
    no_wrap: Sequence[bool] = ()  # per column: cut with an ellipsis instead of wrapping
    rows: list[tuple[Cell, ...]] = field(default_factory=list)

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        """Printed through a rich console (live views, flow reports): the same text."""
        from rich.text import Text

        color = console.is_terminal and console.color_system is not None
        yield Text.from_ansi(self.render(options.max_width, color))

    def render(self, width: int = 120, color: bool = False) -> str:
        widths = _fit(
            [_natural(self.headers, self.rows, i) for i in range(len(self.headers))], width
        )
        heavy = ["━" * (w + 2) for w in widths]
        light = ["─" * (w + 2) for w in widths]
        lines = ["┏" + "┳".join(heavy) + "┓"]
        header = [(text, "bold") for text in self.headers]
        lines += self._lines(header, widths, "┃", color)
        lines.append("┡" + "╇".join(heavy) + "┩")
        for row in self.rows:
            lines += self._lines(row, widths, "│", color)
        lines.append("└" + "┴".join(light) + "┘")
        return "\n".join(lines)

    def _lines(self, row: Sequence[Cell], widths: list[int], bar: str, color: bool) -> list[str]:
        columns = []
        for index, width in enumerate(widths):
            text, style = _split(row[index] if index < len(row) else "")
            cut = index < len(self.no_wrap) and self.no_wrap[index]
            columns.append((_wrap(text, width, cut), style))
        height = max(len(lines) for lines, _ in columns)
        out = []
        for number in range(height):
            parts = []
            for (lines, style), width in zip(columns, widths, strict=True):
                text = lines[number] if number < len(lines) else ""
                padded = text.ljust(width)
                parts.append(" " + (_paint(padded, style) if color and style else padded) + " ")
            out.append(bar + bar.join(parts) + bar)
        return out


def _split(cell: Cell) -> tuple[str, str]:
    return (cell, "") if isinstance(cell, str) else cell


def _natural(headers: Sequence[str], rows: Sequence[Sequence[Cell]], index: int) -> int:
    texts = [headers[index], *(_split(row[index])[0] for row in rows if index < len(row))]
    return max(len(line) for text in texts for line in (text.splitlines() or [""]))


def _fit(widths: list[int], total: int) -> list[int]:
    """Shrink the widest columns until the table fits ``total`` characters."""
    fitted = list(widths)
    while sum(fitted) + 3 * len(fitted) + 1 > total:
        widest = max(range(len(fitted)), key=fitted.__getitem__)
        if fitted[widest] <= _MIN_WIDTH:
            break
        fitted[widest] -= 1
    return fitted


def _wrap(text: str, width: int, cut: bool) -> list[str]:
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        if len(line) <= width:
            lines.append(line)
        elif cut:
            lines.append(line[: width - 1] + "…")
        else:
            lines += textwrap.wrap(line, width, break_on_hyphens=False) or [""]
    return lines


def _paint(text: str, style: str) -> str:
    code = _STYLES.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def terminal_width(stream: TextIO) -> int:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


def wants_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


def show(table: BoxTable, stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stdout
    print(table.render(terminal_width(out), wants_color(out)), file=out, flush=True)
