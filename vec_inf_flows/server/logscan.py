"""Classify a server job's log lines: ready, fatal, or noise.

The anchor marked a server FAILED whenever a line contained words such as "unable to" or
"error:", so libfabric warnings, NCCL INFO lines and a ``jq`` hiccup killed healthy jobs. Here a
line counts only if it matches a known pattern in ``PATTERNS``: everything else is ignored.

Rules, in order of reading each file top to bottom:

* harmless lines (checked first) never count, whatever words they contain;
* a fatal line is remembered with a priority: a root cause (``CUDA out of memory``, the KV-cache
  ``ValueError``) beats a consequence (``EngineDeadError``) beats a generic wrapper
  (``Engine core initialization failed``); the first line of the best priority wins;
* ``Traceback`` alone is not fatal: the exception line that ends it is (generic priority);
* a ready line clears the fatal lines seen before it *in the same file*: the server came up after
  them (a caught error, or a retried start), so they are history;
* fatal lines after the ready line still count (the engine died at runtime: ``EngineDeadError``);
* once a shutdown has begun (vLLM's ``[shutdown]`` lines, uvicorn's ``Shutting down``, Slurm's
  ``CANCELLED AT``), later fatal lines are teardown noise and are ignored;
* a ``vec-inf: ...`` line is our own job side giving up (a node of a multi-node server died, the
  API key file is missing): a root cause, and ``job_failure`` besides, which status trusts over
  a /health 200 (the head of a multi-node server may answer for seconds after a node died).

``.out`` and ``.err`` are scanned separately (their relative order is unknown) and merged.
Only the head and the tail of a large log are read, so a poll costs the same after a week.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

HEAD_BYTES = 512 * 1024
TAIL_BYTES = 2 * 1024 * 1024
MAX_REASON_CHARS = 400

READY_LINE = "INFO:     Application startup complete."


class Kind(Enum):
    READY = "ready"
    FATAL = "fatal"
    HARMLESS = "harmless"
    TIME_LIMIT = "time_limit"  # Slurm killed the job at its time limit (not an engine failure)
    CANCELLED = "cancelled"  # Slurm cancelled the job (scancel, preemption)
    SHUTDOWN = "shutdown"  # an orderly shutdown began: later fatal lines are teardown noise
    JOB_FAILED = "job_failed"  # our job-side script or supervisor gave up (``vec-inf: ...``)


# Fatal priorities: the most informative line wins.
ROOT_CAUSE = 3
CONSEQUENCE = 2
GENERIC = 1


@dataclass(frozen=True)
class LinePattern:
    kind: Kind
    regex: re.Pattern[str]
    priority: int = 0  # fatal lines only
    note: str = ""


def _p(kind: Kind, pattern: str, priority: int = 0, note: str = "") -> LinePattern:
    return LinePattern(kind, re.compile(pattern), priority, note)


# THE table. Matched against a line after its vLLM logger prefix is removed; first match wins,
# so the order matters: Slurm's own lines, then the ready line, harmless, shutdown, fatal.
PATTERNS: tuple[LinePattern, ...] = (
    _p(
        Kind.TIME_LIMIT,
        r"slurmstepd\S*: error: \*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT "
        r"\S+ DUE TO TIME LIMIT",
    ),
    _p(Kind.CANCELLED, r"slurmstepd\S*: error: \*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT"),
    _p(
        Kind.FATAL,
        r"slurmstepd\S*: error: Detected \d+ oom[-_]kill event",
        ROOT_CAUSE,
        "the node's out-of-memory killer ended a process of the job",
    ),
    _p(Kind.READY, r"^INFO:     Application startup complete\.$"),
    _p(Kind.JOB_FAILED, r"^vec-inf: ", ROOT_CAUSE, "the job script or multi-node supervisor"),
    # Harmless: noisy lines that contain alarming words.
    _p(Kind.HARMLESS, r"\bNCCL (?:INFO|WARN)\b", note="NCCL_DEBUG=INFO chatter (anchor #308)"),
    _p(Kind.HARMLESS, r"<warn>", note="libfabric warnings (anchor #308)"),
    _p(Kind.HARMLESS, r"^jq: error", note="jq on a stale NFS handle (anchor #195)"),
    _p(Kind.HARMLESS, r"^slurmstepd\S*: error:", note="other slurmstepd notices"),
    _p(Kind.HARMLESS, r"\b(?:Future|User|Deprecation|Runtime|Resource)Warning\b"),
    _p(Kind.HARMLESS, r"^Warning: |\] Warning: ", note="torch C++ warnings (NUMA binding)"),
    _p(Kind.HARMLESS, r"Triton is (?:installed|not installed)|requires Triton"),
    _p(Kind.HARMLESS, r"^nanobind: |^ - leaked (?:instance|type|function)"),
    _p(Kind.HARMLESS, r"resource_tracker"),
    _p(Kind.HARMLESS, r"Found ulimit of \d+ and failed to automatically increase"),
    _p(Kind.HARMLESS, r"is not found in LD_PRELOAD"),
    _p(Kind.HARMLESS, r"Failed to create oneDNN linear, fallback"),
    _p(Kind.HARMLESS, r"No available shared memory broadcast block found"),
    _p(Kind.HARMLESS, r"Found duplicate keys"),
    _p(Kind.HARMLESS, r"^INFO:     \S+ - \"[A-Z]+ ", note="uvicorn access lines"),
    _p(Kind.HARMLESS, r"Error with model error=ErrorInfo", note="a client's bad request"),
    # Shutdown has begun.
    _p(Kind.SHUTDOWN, r"\[shutdown\]"),
    _p(Kind.SHUTDOWN, r"^INFO:     (?:Shutting down|Waiting for application shutdown)"),
    _p(Kind.SHUTDOWN, r"received signal=SIG(?:TERM|INT)"),
    # Fatal: root causes.
    _p(Kind.FATAL, r"To serve at least one request with the model's max seq len", ROOT_CAUSE),
    _p(Kind.FATAL, r"No available memory for the cache blocks", ROOT_CAUSE),
    _p(Kind.FATAL, r"CUDA out of memory|(?:torch|torch\.cuda)\.OutOfMemoryError", ROOT_CAUSE),
    _p(
        Kind.FATAL,
        r"\bHFValidationError\b|\bRepositoryNotFoundError\b|\bGatedRepoError\b",
        ROOT_CAUSE,
    ),
    _p(
        Kind.FATAL,
        r"^[\w./ -]+: error: (?:unrecognized arguments|argument |the following "
        r"arguments are required|invalid choice)",
        ROOT_CAUSE,
        "argparse rejected the command",
    ),
    _p(Kind.FATAL, r"libgomp: Thread creation failed", ROOT_CAUSE),
    _p(
        Kind.FATAL,
        r"\b(?:vllm|sglang|python3?|apptainer|singularity): command not found$",
        ROOT_CAUSE,
        "the engine (or its container runtime) is not on PATH in the job",
    ),
    _p(Kind.FATAL, r"Address already in use", ROOT_CAUSE),
    # Fatal: consequences.
    _p(
        Kind.FATAL,
        r"ValidationError: \d+ validation errors? for \w+",
        CONSEQUENCE,
        "pydantic config error; its 'Value error,' line is promoted to a root cause",
    ),
    _p(Kind.FATAL, r"WorkerProc initialization failed", CONSEQUENCE),
    _p(Kind.FATAL, r"\bEngineDeadError\b", CONSEQUENCE),
    _p(Kind.FATAL, r"Timed out waiting for engine core processes to start", CONSEQUENCE),
    # Fatal: generic wrappers.
    _p(Kind.FATAL, r"Engine core initialization failed", GENERIC),
    _p(Kind.FATAL, r"EngineCore failed to start", GENERIC),
)

# "(EngineCore pid=7547) ERROR 11-27 05:16:37 [core.py:1510] " (also EngineCore_DP0, Worker ...)
_LOGGER_PREFIX = re.compile(
    r"^\((?:[\w:.-]+) pid=\d+\)\s+[A-Z]+\s+\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[[^\]]*\]\s?"
)
_TRACEBACK = "Traceback (most recent call last):"
# The line that ends a traceback: "ValueError: ...", "vllm.v1.engine.exceptions.EngineDeadError: x"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$")
_NOT_A_FAILURE = re.compile(r"^(?:KeyboardInterrupt|SystemExit|[\w.]*CancelledError)\b")
_TRACEBACK_CONTINUATION = re.compile(
    r"^(?:\s|During handling of the above exception|The above exception was the direct cause)"
)
_VALUE_ERROR = re.compile(r"^\s*Value error, ")
_PYDANTIC_TAIL = re.compile(r"\s*\[type=\w+, input_value=.*$")


@dataclass(frozen=True)
class LogVerdict:
    """What the logs say about a server. ``fatal_line`` is the best failure reason found."""

    ready: bool = False
    fatal_line: str | None = None
    time_limit_hit: bool = False
    cancelled: bool = False
    shutdown_seen: bool = False  # an orderly shutdown began (teardown lines follow)
    job_failure: str | None = None  # the job side's own verdict (first ``vec-inf:`` line)


def strip_prefix(line: str) -> str:
    """Drop vLLM's ``(Proc pid=N) LEVEL MM-DD HH:MM:SS [file:L]`` prefix."""
    return _LOGGER_PREFIX.sub("", line.rstrip("\r\n"), count=1)


def classify(line: str) -> LinePattern | None:
    """The table entry a (prefix-stripped) line matches, or None for an ordinary line."""
    for pattern in PATTERNS:
        if pattern.regex.search(line):
            return pattern
    return None


def _clean_reason(line: str) -> str:
    text = _PYDANTIC_TAIL.sub("", line.strip())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


class _FileScan:
    """Reads one file's lines in order and keeps the state the rules above need."""

    def __init__(self) -> None:
        self.ready = False
        self.time_limit_hit = False
        self.cancelled = False
        self.shutdown_seen = False
        self.fatal: tuple[int, str] | None = None  # (priority, reason)
        self.job_failure: str | None = None
        self._in_traceback = False
        self._after_validation_error = False

    def _record_fatal(self, priority: int, line: str) -> None:
        if self.shutdown_seen:
            return  # teardown noise
        if self.fatal is None or priority > self.fatal[0]:
            self.fatal = (priority, _clean_reason(line))

    def feed(self, raw: str) -> None:
        line = strip_prefix(raw)
        if not line.strip():
            return
        if self._after_validation_error and _VALUE_ERROR.match(line):
            self._after_validation_error = False
            self._record_fatal(ROOT_CAUSE, line)
            return
        self._after_validation_error = False
        match = classify(line)
        if match is not None:
            self._apply(match, line)
        if line.startswith(_TRACEBACK):
            self._in_traceback = True
        elif self._in_traceback and not _TRACEBACK_CONTINUATION.match(line):
            self._in_traceback = False
            ends_traceback = _EXCEPTION_LINE.match(line) and not _NOT_A_FAILURE.match(line)
            if ends_traceback and (match is None or match.kind is Kind.FATAL):
                self._record_fatal(GENERIC, line)

    def _apply(self, match: LinePattern, line: str) -> None:
        if match.kind is Kind.READY:
            self.ready = True
            self.fatal = None  # the server came up after those lines
        elif match.kind is Kind.TIME_LIMIT:
            self.time_limit_hit = True
            self.shutdown_seen = True
        elif match.kind is Kind.CANCELLED:
            self.cancelled = True
            self.shutdown_seen = True
        elif match.kind is Kind.SHUTDOWN:
            self.shutdown_seen = True
        elif match.kind is Kind.FATAL:
            self._record_fatal(match.priority, line)
            self._after_validation_error = "ValidationError" in line
        elif match.kind is Kind.JOB_FAILED and not self.shutdown_seen:
            reason = line.removeprefix("vec-inf: ")
            self._record_fatal(match.priority, reason)
            self.job_failure = self.job_failure or _clean_reason(reason)


def scan_lines(lines: Iterable[str]) -> LogVerdict:
    """Verdict for one stream of lines (one file)."""
    return merge([_scan(lines)])


def _scan(lines: Iterable[str]) -> _FileScan:
    state = _FileScan()
    for line in lines:
        state.feed(line)
    return state


def merge(scans: Sequence[_FileScan]) -> LogVerdict:
    best: tuple[int, str] | None = None
    for scan in scans:
        if scan.fatal is not None and (best is None or scan.fatal[0] > best[0]):
            best = scan.fatal
    return LogVerdict(
        ready=any(s.ready for s in scans),
        fatal_line=best[1] if best else None,
        time_limit_hit=any(s.time_limit_hit for s in scans),
        cancelled=any(s.cancelled for s in scans),
        shutdown_seen=any(s.shutdown_seen for s in scans),
        job_failure=next((s.job_failure for s in scans if s.job_failure), None),
    )


def read_bounded_lines(
    path: Path, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES
) -> list[str]:
    """The file's lines, or only its head and tail when it is large (a missing file: none).

    A partial line at either cut is dropped, so no pattern sees half a line.
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            if size <= head_bytes + tail_bytes:
                return handle.read().decode("utf-8", "replace").splitlines()
            head = handle.read(head_bytes).decode("utf-8", "replace").splitlines()[:-1]
            handle.seek(size - tail_bytes)
            tail = handle.read(tail_bytes).decode("utf-8", "replace").splitlines()[1:]
    except OSError:
        return []
    return head + tail


def scan_files(paths: Sequence[Path]) -> LogVerdict:
    """Verdict over a job's log files (``.err`` and ``.out``); missing files count as empty."""
    return merge([_scan(read_bounded_lines(path)) for path in paths])
