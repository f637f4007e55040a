"""The ``#SBATCH`` header of a job script, read the way sbatch reads it, for running it locally.

The local backend runs the very script Slurm would get, so where its output goes, where it runs
and what it asks for come from the same directive lines. Only what a local run needs is kept;
other options are skipped, and what cannot run on one machine is refused at submission.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from vec_inf_flows.errors import ConfigError

_DIRECTIVE = "#SBATCH"
_HETJOB_WORDS = frozenset({"hetjob", "packjob"})
# Options we read, by every spelling sbatch accepts.
_ALIASES = {
    "-o": "output",
    "--output": "output",
    "-e": "error",
    "--error": "error",
    "-D": "chdir",
    "--chdir": "chdir",
    "-N": "nodes",
    "--nodes": "nodes",
    "-c": "cpus-per-task",
    "--cpus-per-task": "cpus-per-task",
    "-J": "job-name",
    "--job-name": "job-name",
    "--open-mode": "open-mode",
}
_SHORT_WITH_VALUE = frozenset(key for key in _ALIASES if len(key) == 2)
_NODES = re.compile(r"^(?P<low>\d+)(?:-(?P<high>\d+))?$")
_PATTERN = re.compile(r"%(?P<width>\d*)(?P<key>[%AJjNux])")


@dataclass(frozen=True)
class Directives:
    """What a script's header asks of the place it runs."""

    output: str | None = None
    error: str | None = None
    chdir: str | None = None
    job_name: str | None = None
    cpus_per_task: int | None = None
    min_nodes: int = 1
    append: bool = False
    components: int = 1  # 2+ for a heterogeneous (batch) job
    unknown: tuple[str, ...] = field(default=())


def _header_lines(script: str) -> list[str]:
    """sbatch stops reading directives at the first line that is neither blank nor a comment."""
    lines: list[str] = []
    for raw in script.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            break
        if line.startswith(_DIRECTIVE) and line[len(_DIRECTIVE) : len(_DIRECTIVE) + 1] in " \t":
            lines.append(line[len(_DIRECTIVE) :])
    return lines


def _options(tokens: list[str]) -> list[tuple[str, str | None]]:
    """``(option, value)`` pairs from one directive line's words."""
    pairs: list[tuple[str, str | None]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.startswith("--"):
            name, equals, value = token.partition("=")
            if equals:
                pairs.append((name, value))
                continue
        elif token.startswith("-") and len(token) > 2 and token[:2] in _SHORT_WITH_VALUE:
            pairs.append((token[:2], token[2:]))
            continue
        else:
            name = token
        takes_next = index < len(tokens) and not tokens[index].startswith("-")
        pairs.append((name, tokens[index] if takes_next else None))
        index += 1 if takes_next else 0
    return pairs


def _count(option: str, value: str | None) -> int:
    if value is None or not value.isdigit():
        raise ConfigError(f"The job script's #SBATCH --{option}={value} is not a number.")
    return int(value)


def _min_nodes(value: str | None) -> int:
    match = _NODES.fullmatch(value or "")
    if match is None:
        raise ConfigError(f"The job script's #SBATCH --nodes={value} is not a node count.")
    return int(match.group("low"))


def parse_directives(script: str) -> Directives:
    """Read the header; a malformed directive is a ``ConfigError`` naming it."""
    found: dict[str, str | None] = {}
    components = 1
    unknown: list[str] = []
    for line in _header_lines(script):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as error:
            raise ConfigError(f"Cannot read the job script line '#SBATCH{line}': {error}") from None
        if tokens and tokens[0].lower() in _HETJOB_WORDS:
            components += 1
            continue
        for option, value in _options(tokens):
            key = _ALIASES.get(option)
            if key is None:
                unknown.append(option)
            elif components == 1:  # the first component decides where the job runs
                found[key] = value
    return Directives(
        output=found.get("output"),
        error=found.get("error"),
        chdir=found.get("chdir"),
        job_name=found.get("job-name"),
        cpus_per_task=(
            _count("cpus-per-task", found["cpus-per-task"]) if "cpus-per-task" in found else None
        ),
        min_nodes=_min_nodes(found["nodes"]) if "nodes" in found else 1,
        append=(found.get("open-mode") or "").lower() == "append",
        components=components,
        unknown=tuple(unknown),
    )


def check_runs_locally(directives: Directives) -> None:
    """One machine runs one single-node job: refuse batches and multi-node jobs up front."""
    if directives.components > 1:
        raise ConfigError(
            "The local backend cannot run a heterogeneous (batch) job; batch-launch needs Slurm."
        )
    if directives.min_nodes > 1:
        raise ConfigError(
            f"The local backend runs single-node jobs only; this job asks for "
            f"{directives.min_nodes} nodes (use Slurm for multi-node)."
        )


def expand_filename(pattern: str, *, job_id: str, job_name: str, node: str, user: str) -> str:
    """Slurm's filename patterns we can honour on one machine (``%j``, ``%x``, ``%%`` ...).

    Unknown patterns stay as written, as they would name a literal file rather than fail.
    """
    values = {"j": job_id, "J": job_id, "A": job_id, "x": job_name, "N": node, "u": user}

    def substitute(match: re.Match[str]) -> str:
        key = match.group("key")
        if key == "%":
            return "%" + match.group("width")
        value = values[key]
        width = match.group("width")
        return value.zfill(int(width)) if width and value.isdigit() else value

    return _PATTERN.sub(substitute, pattern)
