"""vLLM's log line shape, ``(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:L] msg``, on stdout.

Our log classifier and users grep these lines, so the prefix, the source locations and the streams
must match what vLLM 0.32 prints (see the recordings in tests/fixtures/vllm_http/).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

API_SERVER = "APIServer"
ENGINE_CORE = "EngineCore"
WORKER = "Worker"


class VllmLog:
    """Writes vLLM-formatted lines; the engine and worker get their own (fake) pids, as in vLLM."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        api_pid = os.getpid()
        self.pids = {API_SERVER: api_pid, ENGINE_CORE: api_pid + 1, WORKER: api_pid + 2}

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def line(self, proc: str, level: str, source: str, message: str) -> None:
        stamp = time.strftime("%m-%d %H:%M:%S")
        text = f"({proc} pid={self.pids[proc]}) {level} {stamp} [{source}] {message}\n"
        self.stream.write(text)
        self.stream.flush()

    def info(self, source: str, message: str, proc: str = API_SERVER) -> None:
        self.line(proc, "INFO", source, message)

    def warning(self, source: str, message: str, proc: str = API_SERVER) -> None:
        self.line(proc, "WARNING", source, message)

    def error(self, source: str, message: str, proc: str = API_SERVER) -> None:
        self.line(proc, "ERROR", source, message)

    def error_block(self, source: str, lines: list[str], proc: str = API_SERVER) -> None:
        """vLLM logs tracebacks line by line, each with the full prefix."""
        for text in lines:
            self.error(source, text, proc)


def write_stderr(text: str) -> None:
    """Uvicorn lifecycle lines, warnings and uncaught tracebacks: stderr, flushed at once."""
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()
