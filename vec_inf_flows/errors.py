"""The error hierarchy: every error carries the one line a user should read.

The CLI prints ``str(error)`` and exits non-zero; nothing else is shown, so messages must stand
alone (what went wrong, and where).
"""

from __future__ import annotations

QUOTE_LIMIT = 60  # characters of a user's value an error message may repeat


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a user's value, cut to a short prefix: a 10 MB value must not fill the line."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class VecInfError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigWarning(UserWarning):
    """Something in a config file was ignored or read differently; the file still loads."""


class ConfigError(VecInfError):
    """Bad configuration or options: a file, a value, an unknown model."""


class ModelNotFoundError(ConfigError):
    """The model is in neither the built-in catalog nor the user's file."""

    def __init__(self, name: str, suggestions: list[str] | None = None) -> None:
        self.name = name
        self.suggestions = suggestions or []
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"Unknown model '{name}'.{hint}")


class InvalidJobIdError(ConfigError):
    """A job id that is not ``N`` or ``N+M``."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"Invalid job id {quote(value)}: expected digits, or MAIN+OFFSET such as 1234+1."
        )


class SlurmError(VecInfError):
    """A Slurm command failed. ``transient`` says whether retrying can help."""

    transient: bool = False


class SlurmTransientError(SlurmError):
    """The controller did not answer (timeout, unreachable): retry with backoff."""

    transient = True


class SlurmPermanentError(SlurmError):
    """Slurm refused the request (bad qos, partition, gres ...): retrying cannot help."""


class SlurmNotInstalledError(SlurmPermanentError):
    """The Slurm commands are not on PATH."""


class JobNotFoundError(VecInfError):
    """Neither Slurm nor our job records know this job id."""


class ShutdownRefusedError(VecInfError):
    """The job is not a server this tool (or vec-inf) launched; ``--force`` overrides."""


class ServerError(VecInfError):
    """A server failed, shut down, or did not become ready in time."""


class ShutdownPending(ServerError):
    """The cancel succeeded, but the scheduler still ends part of the job at the deadline
    (Slurm's KillWait, a COMPLETING epilog): it is stopping, not failing to stop."""

    def __init__(self, message: str, running: list[str]) -> None:
        super().__init__(message)
        self.running = running
